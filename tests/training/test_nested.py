"""Nested CV (``cv.inner``): tuning happens on each outer fold's training rows only, and the outer
fold is refitted with the inner study's best values."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from omegaconf import OmegaConf

from deepms.training.nested import inner_fit_config, inner_settings

SPACE = "{model: {dropout: {type: float, low: 0.0, high: 0.5}}}"


def _cfg(inner: str):
    return OmegaConf.create(
        {
            "seed": 1,
            "cv": {"scheme": "stratified_kfold", "fold": 2, "inner": OmegaConf.create(inner)},
            "data": {
                "cv": {
                    "scheme": "stratified_kfold",
                    "n_splits": 5,
                    "fold": 2,
                    "val_fraction": 0.1,
                    "seed": 1,
                    "inner": {"n_trials": 1},
                }
            },
            "logger": {"mlflow": {"_target_": "x"}},
            "callbacks": {"lr_monitor": {"_target_": "y"}, "early_stopping": {"_target_": "z"}},
            "paths": {"output_dir": "/tmp/out/fold2"},
            "model": {"dropout": 0.5, "baselines": ["svm"]},
        }
    )


def test_inner_fit_config_cuts_inside_the_outer_fold_without_logging() -> None:
    cfg = _cfg(f"{{n_splits: 3, params: {SPACE}, overrides: {{model.baselines: []}}}}")
    settings = inner_settings(cfg)
    inner = inner_fit_config(cfg, settings, 1, {"model.dropout": 0.25})
    assert inner.data.cv.fold == 1 and inner.data.cv.n_splits == 3
    assert inner.data.cv.within.fold == 2 and "inner" not in inner.data.cv.within
    assert inner.logger is None and inner.callbacks.lr_monitor is None
    assert inner.callbacks.early_stopping is not None
    assert inner.model.dropout == 0.25 and list(inner.model.baselines) == []
    assert inner.paths.output_dir == "/tmp/out/fold2/inner/fold1"
    assert cfg.model.dropout == 0.5  # the outer config is untouched


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        ("{n_trials: 2}", "params is empty"),
        (f"{{trials: 2, params: {SPACE}}}", "unknown keys"),
        (f"{{n_trials: 0, params: {SPACE}}}", "at least 1"),
    ],
)
def test_bad_inner_settings_are_clear_errors(inner: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        inner_settings(_cfg(inner))


@pytest.mark.slow
def test_nested_biomarker_run_refits_each_fold_with_its_inner_best(compose_config) -> None:
    from mlflow.tracking import MlflowClient

    from deepms.training.runner import run

    inner = f"cv.inner={{n_splits: 2, n_trials: 2, params: {SPACE}}}"
    cfg = compose_config("task=biomarker", "experiment=biomarker_tiny", "threads=1", inner)
    result = run(cfg)
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    trials = pd.read_csv(client.download_artifacts(result.run_id, "cv/inner_trials.csv"))
    folds = pd.read_csv(client.download_artifacts(result.run_id, "cv/folds.csv"))
    assert len(trials) == 2 * 2 and set(trials["state"]) == {"COMPLETE"}
    for fold, rows in trials.groupby("fold"):
        best = rows.loc[rows["inner_test_auroc_mean"].idxmax(), "tuned.model.dropout"]
        chosen = folds.set_index("fold").loc[fold, "tuned.model.dropout"]
        assert chosen == pytest.approx(best)
        run_params = client.get_run(folds.set_index("fold").loc[fold, "run_id"]).data.params
        assert float(run_params["model.dropout"]) == pytest.approx(best)
    assert math.isfinite(result.metrics["cv_test_auroc_mean"])


def test_configured_values_become_trial_zero_when_the_space_can_express_them() -> None:
    from deepms.sweep.space import parse_space
    from deepms.training.nested import configured_values

    cfg = OmegaConf.create({"model": {"hidden": [128, 32], "dropout": 0.5, "lr": 1.0}})
    space = parse_space(
        {
            "model": {
                "hidden": {"type": "categorical", "choices": ["64", "128-32"]},
                "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            }
        }
    )
    assert configured_values(cfg, space) == {"model.hidden": "128-32", "model.dropout": 0.5}
    outside = parse_space({"model": {"lr": {"type": "float", "low": 1e-4, "high": 1e-1}}})
    assert configured_values(cfg, outside) == {}  # 1.0 is outside the space: nothing enqueued
