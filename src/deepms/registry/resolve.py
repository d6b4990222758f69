"""Load a predictor from any model reference a user may hold.

``models:/NAME@ALIAS`` and ``models:/NAME/VERSION`` (the checkpoint inside the registered model,
read directly: no pyfunc detour; ``mlflow models serve`` keeps the pyfunc flavour),
``runs:/RUN_ID[/PATH]`` (a run's best checkpoint, a checkpoint it logged, or a model it logged), or
a local path (a checkpoint file or folder, or an MLflow model folder); see
:mod:`deepms.registry.reference`. The predictor class comes from ``predictor`` when given, else
the registered model, the checkpoint itself (``deepms_predictor``), the run's config or the Hydra
config beside a local checkpoint. The stored description is checked on every path.
"""

from __future__ import annotations

import tempfile
from typing import Any

from deepms.registry.predictor import ModelLoadError, Predictor, load_class
from deepms.registry.reference import PREDICTOR_KEY, ResolvedModel, load_checkpoint, resolve_model


def predictor_class(resolved: ResolvedModel, predictor: str | None = None) -> type[Predictor]:
    """The predictor serving ``resolved``: ``predictor``, else what the reference names, else
    what the checkpoint records."""
    name = predictor or resolved.predictor
    if not name:
        name = load_checkpoint(resolved.checkpoint).get(PREDICTOR_KEY)
    if not name:
        raise ModelLoadError(
            f"{resolved.source}: cannot tell which predictor serves this checkpoint (it records "
            "none and no .hydra/config.yaml or run config names one); pass --predictor with the "
            "task config's task.predictor"
        )
    return load_class(name)


def load_resolved(
    resolved: ResolvedModel, predictor: str | None = None, **options: Any
) -> Predictor:
    """The predictor of an already resolved reference, configured with ``options``."""
    cls = predictor_class(resolved, predictor)
    loaded = cls.from_checkpoint(resolved.checkpoint)
    if resolved.description:
        try:
            loaded.check_description(resolved.description)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{resolved.source}: {exc}") from exc
    given = {k: v for k, v in options.items() if v is not None}
    accepted = [o.name for o in cls.options if o.kind == "run"]
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ModelLoadError(
            f"{resolved.source}: {cls.__name__} does not take option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(accepted) or 'none'}"
        )
    loaded.configure(**given)
    return loaded


def load_predictor(
    uri: str,
    *,
    tracking_uri: str | None = None,
    predictor: str | None = None,
    **options: Any,
) -> Predictor:
    """The predictor behind ``uri``, configured with ``options`` (batch size, precision, ...)."""
    with tempfile.TemporaryDirectory(prefix="deepms-model-") as tmp:
        resolved = resolve_model(str(uri), tmp, tracking_uri)
        return load_resolved(resolved, predictor, **options)
