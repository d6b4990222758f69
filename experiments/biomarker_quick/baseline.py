"""biomarker_quick's peer: one of the task's own baselines, fitted on the seed's fold.

The biomarker run fits its baselines inside the model's test step (``model.baselines``) and logs
them as ``test_<baseline>_*``; the bench's ``baselines:`` mechanism instead wants ``test_*`` under
the model's own names, so this calls the same code (``deepms.tasks.biomarker.baselines``) on the
same fold's preprocessed matrices (``datamodule.matrix``: the fold's training rows, preprocessing
fitted on them only) and scores the test rows with the task's ``binary_scores``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepms.tasks.biomarker.baselines import binary_scores, fit_predict


def in_fold(datamodule: Any, name: str, seed: int | None = None) -> dict[str, float]:
    """``test_*`` of baseline ``name`` trained on the fold's train rows, scored on its test rows."""
    x_train, y_train, _ = datamodule.matrix("train")
    x_test, y_test, _ = datamodule.matrix("test")
    seed = int(datamodule.split_seed if seed is None else seed)
    p = fit_predict(name, np.asarray(x_train), np.asarray(y_train), np.asarray(x_test), seed)
    return {f"test_{k}": float(v) for k, v in binary_scores(p, np.asarray(y_test)).items()}
