"""``experiment=biomarker_tiny`` end to end on the Bader 2020 CSF cohort through the runner: the
DBN and its baselines are scored on the same two folds with intervals, and a fold's checkpoint,
through the predictor and the raw matrix, reproduces that fold's out-of-fold predictions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.tasks.biomarker.baselines import METRICS

pytestmark = pytest.mark.slow


def test_tiny_run_scores_dbn_and_baselines_on_the_same_folds(compose_config, mirror: Path) -> None:
    from mlflow.tracking import MlflowClient

    from deepms.tasks.biomarker.predict import BiomarkerPredictor
    from deepms.training.runner import run

    cfg = compose_config("task=biomarker", "experiment=biomarker_tiny", "threads=1")
    result = run(cfg)
    assert len(result.folds) == 2
    for name in ("", "omiclearn_", "logreg_l2_", "panel_"):
        for metric in METRICS:
            for stat in ("mean", "ci95_low", "ci95_high"):
                value = result.metrics[f"cv_test_{name}{metric}_{stat}"]
                assert math.isfinite(value), f"{name}{metric}_{stat}"
    assert "cv_test_svm_auroc_mean" not in result.metrics  # the tiny run asks for two baselines
    assert 0.75 < result.metrics["cv_test_logreg_l2_auroc_mean"] <= 1.0
    for fold in result.folds:  # samples are split 50/50 per fold; 10 % of the rest validate
        assert sum(fold.lineage.n_samples.values()) == 210

    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    oof = pd.read_csv(client.download_artifacts(result.run_id, "cv/oof_predictions.csv"))
    assert len(oof) == 210 and set(oof["fold"]) == {0, 1}
    fold0 = oof[oof["fold"] == 0].set_index("id")
    probability = next(c for c in oof.columns if c.startswith("p_"))

    matrix = pd.read_csv(mirror / "biomarker" / "bader2020_csf_alzheimer_proteome.csv")
    test_rows = matrix[matrix["Sample ID"].isin(fold0.index)]
    predictor = BiomarkerPredictor.from_checkpoint(result.folds[0].best_checkpoint)
    out = predictor.predict(test_rows).set_index("sample_id")
    assert np.allclose(out[probability], fold0.loc[out.index, probability], atol=1e-5)
    panel = [c for c in out.columns if c not in ("p_1", probability, "predicted_class")]
    assert len(panel) == 1 + 10 and panel[0] == "imputed_proteins"  # panel_size 10
