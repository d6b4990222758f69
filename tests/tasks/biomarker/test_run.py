"""``experiment=biomarker_tiny`` end to end on the Bader 2020 CSF cohort through the runner: the
DBN and its baselines are scored on the same two folds with intervals, and a fold's checkpoint,
through the predictor and the raw matrix, reproduces that fold's out-of-fold predictions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

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

    # the parent's summary (summary.py): pooled out-of-fold AUROC with its bootstrap interval,
    # the DBN against the better of its two baselines on the same samples, plots and tables
    assert {"p_omiclearn", "p_logreg_l2", "site", "repeat", "panel"} <= set(oof.columns)
    assert set(oof["site"]) == {"Berlin", "Sweden", "Magdeburg", "Kiel"} and set(oof["repeat"]) == {
        0
    }
    assert oof.groupby("fold")["panel"].nunique().tolist() == [1, 1]
    metrics = client.get_run(result.run_id).data.metrics
    low, point, high = (metrics[f"oof_auroc{s}"] for s in ("_ci95_low", "", "_ci95_high"))
    assert low < point < high and point == pytest.approx(
        roc_auc_score(oof["label"], oof[probability])
    )
    best = max(("omiclearn", "logreg_l2"), key=lambda b: roc_auc_score(oof["label"], oof[f"p_{b}"]))
    diff = metrics[f"oof_auroc_diff_{best}"]
    assert diff == pytest.approx(point - metrics[f"oof_auroc_{best}"])
    assert (
        metrics[f"oof_auroc_diff_{best}_ci95_low"]
        < diff
        < metrics[f"oof_auroc_diff_{best}_ci95_high"]
    )
    assert 0 < metrics["oof_auroc_diff_p"] <= 1
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert plots == {f"plots/{n}.png" for n in ("roc", "calibration", "panel_selection")}
    sites = pd.read_csv(client.download_artifacts(result.run_id, "cv/site_performance.csv"))
    assert (
        sites["n"].sum() == 210 and sites.set_index("site").loc["Kiel", "auroc"] == "one class only"
    )
    panels = pd.read_csv(client.download_artifacts(result.run_id, "cv/panel_frequency.csv"))
    assert panels["n_folds"].sum() == 20 and panels["n_folds"].max() <= 2
