"""Peers as the run itself scored them (dia: PyProphet, mokapot; deepiso: OpenMS, Biosaur2).

The dia run scores its peers inside the model's test step, on the same peak groups with the same
entrapment labels and the same FDR code (``deepms.tasks.dia.model.DiaModel.on_test_epoch_end``),
and logs them as ``test_<peer>_*``. Running them again here would cost minutes and could differ
(their own random draws), so this reads the tested run's own figures back from the trainer the
datamodule was attached to and renames ``test_<peer>_<metric>`` to ``test_<metric>``: the bench's
``baselines:`` hook then puts each peer beside deepms under the model's own metric names, and the
README's "best baseline" column shows the best peer on the primary metric.
"""

from __future__ import annotations

from typing import Any


def in_run(
    datamodule: Any, name: str, as_prefix: str = "", exclude: tuple[str, ...] = ()
) -> dict[str, float]:
    """``test_*`` of peer ``name`` as logged by the run that just tested on ``datamodule``.

    ``test_<name>_<metric>`` becomes ``test_<as_prefix><metric>`` (deepiso logs its own figures
    as ``test_deepms_<metric>``); ``exclude`` names peers whose names extend ``name``
    (``openms_centroided_test`` beside ``openms_centroided``)."""
    trainer = getattr(datamodule, "trainer", None)
    if trainer is None:
        raise RuntimeError("the datamodule is not attached to a trainer: no in-run peer figures")
    prefix = f"test_{name}_"
    others = tuple(f"test_{other}_" for other in exclude)
    metrics = {
        f"test_{as_prefix}" + key[len(prefix) :]: float(value)
        for key, value in trainer.callback_metrics.items()
        if key.startswith(prefix) and not key.startswith(others)
    }
    if not metrics:
        raise RuntimeError(f"the run logged no {prefix}* metrics (is {name} in model.peers?)")
    return metrics
