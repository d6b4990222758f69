"""A model's own summary of a cross-validated run, logged on the parent run.

Fold means say little about one cohort's out-of-fold predictions: a task that wants pooled
figures (a bootstrap interval, a paired comparison, plots) defines ``summarize_folds(oof, folds)``
on its model class (classmethod or staticmethod). :func:`run_cv` calls it once after every fold
with the parent's ``cv/oof_predictions.csv`` and ``cv/folds.csv`` tables; it returns metrics and
artifacts, which land on the parent: figures as ``plots/<name>.png``, tables as ``cv/<name>.csv``.
A model without it changes nothing; a summary that fails is a warning and a tag, not a failed
parent (the folds, already logged, stay usable).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HOOK = "summarize_folds"


def summary_hook(model_class: type | None) -> Callable[..., Any] | None:
    """The class's ``summarize_folds`` if it defines one (None otherwise)."""
    hook = getattr(model_class, HOOK, None) if model_class is not None else None
    return hook if callable(hook) else None


def log_fold_summary(
    model_class: type | None, oof: Any, folds: Any, client: Any, run_id: str
) -> dict[str, float]:
    """Call the model's summary on the parent's tables and log what it returns on ``run_id``;
    returns the finite metrics (empty without a hook or when it fails)."""
    import pandas as pd

    hook = summary_hook(model_class)
    if hook is None:
        return {}
    try:
        metrics, artifacts = hook(oof, folds)
    except Exception as error:  # the folds are logged already; say why the summary is missing
        log.exception("%s.%s failed", model_class.__name__, HOOK)
        client.set_tag(run_id, "cv.summary", f"failed: {type(error).__name__}: {error}"[:500])
        return {}
    finite = {str(k): float(v) for k, v in metrics.items() if math.isfinite(float(v))}
    for key, value in finite.items():
        client.log_metric(run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        for name, artifact in artifacts.items():
            if isinstance(artifact, pd.DataFrame):
                client.log_text(run_id, artifact.to_csv(index=False), f"cv/{name}.csv")
            elif hasattr(artifact, "savefig"):
                path = Path(tmp) / f"{name}.png"
                artifact.savefig(path, dpi=120)
                client.log_artifact(run_id, str(path), "plots")
                _close(artifact)
            else:
                raise TypeError(
                    f"{HOOK} artifact {name!r}: a Figure or DataFrame, not {artifact!r}"
                )
    client.set_tag(run_id, "cv.summary", f"{model_class.__name__}.{HOOK}")
    return finite


def _close(figure: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)
