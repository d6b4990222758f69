"""Cross-validation as a run (``cv=<scheme>``): a parent MLflow run with one child per fold, the
parent's mean / sd / 95 % t-interval over folds, out-of-fold predictions, a failed fold.

On the toy task of ``test_runner`` (seconds); ``test_deeprt_cv_end_to_end`` runs the deeprt tiny
experiment the same way.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from scipy import stats

from deepms.datasets.folds import CVConfig
from deepms.training.cv import aggregate, interval
from tests.training.test_runner import ROOT, ToyModel, toy_config  # noqa: F401 - the fixture

SCHEMES = ["kfold", "stratified_kfold", "repeated_stratified_kfold", "group_kfold"]


def test_interval_is_the_t_interval_of_the_mean() -> None:
    out = interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n), sd = 1
    assert out == pytest.approx(
        {"mean": 2.0, "sd": 1.0, "ci95_low": 2 - half, "ci95_high": 2 + half}
    )
    assert math.isnan(interval([5.0])["sd"])
    rows = [{"test_mae": 1.0, "val_mae": 2.0}, {"test_mae": 3.0, "val_mae": math.nan}]
    assert set(aggregate(rows, ["test_mae", "val_mae"])) == {
        "cv_test_mae_mean",
        "cv_test_mae_sd",
        "cv_test_mae_ci95_low",
        "cv_test_mae_ci95_high",
    }  # a metric missing or NaN in a fold is not summarised


@pytest.mark.parametrize("scheme", [*SCHEMES, "leave_one_group_out"])
def test_cv_group_composes_into_a_cv_config(scheme: str) -> None:
    extra = ["cv.group_by=site"] if scheme in ("group_kfold", "leave_one_group_out") else []
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["task=deeprt", f"cv={scheme}", "seed=7", *extra])
        plain = compose("config", overrides=["task=deeprt"])
    assert plain.get("cv") is None
    assert cfg.cv.fold is None and cfg.cv.seed == 7
    config = CVConfig.from_config({**cfg.cv, "fold": 0})
    assert config.scheme == scheme and config.seed == 7
    assert config.n_repeats == (3 if scheme == "repeated_stratified_kfold" else 1)


def _children(client, parent_id: str) -> list:
    experiment = client.get_run(parent_id).info.experiment_id
    query = f"tags.mlflow.parentRunId = '{parent_id}'"
    runs = client.search_runs([experiment], filter_string=query)
    return sorted(runs, key=lambda r: int(r.data.tags["cv.fold"]))


def _check_parent(client, result, n_folds: int, monitor: str, n_samples: int, tmp_path: Path):
    """Parent and children as a user sees them in MLflow; returns the out-of-fold table."""
    import pandas as pd

    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["cv.n_folds"] == str(n_folds)
    children = _children(client, result.run_id)
    assert len(children) == n_folds == len(result.folds)
    for fold, child in enumerate(children):
        assert child.info.status == "FINISHED"
        assert f"_fold{fold}" in child.data.tags["split"]  # the lineage names the fold
        assert child.info.run_id == result.folds[fold].run_id
    metrics = parent.data.metrics
    test = [c.data.metrics["test_mae"] for c in children]
    assert metrics["cv_test_mae_mean"] == pytest.approx(np.mean(test))
    assert metrics["cv_test_mae_sd"] == pytest.approx(np.std(test, ddof=1))
    half = stats.t.ppf(0.975, n_folds - 1) * np.std(test, ddof=1) / math.sqrt(n_folds)
    assert metrics["cv_test_mae_ci95_low"] == pytest.approx(np.mean(test) - half)
    assert metrics["cv_test_mae_ci95_high"] == pytest.approx(np.mean(test) + half)
    assert f"cv_best_{monitor}_sd" in metrics
    best = [f.monitored for f in result.folds]
    assert result.monitored == pytest.approx(np.mean(best))
    assert metrics[f"cv_best_{monitor}_mean"] == pytest.approx(np.mean(best))
    folds = pd.read_csv(client.download_artifacts(result.run_id, "cv/folds.csv", str(tmp_path)))
    assert folds["run_id"].tolist() == [c.info.run_id for c in children]
    oof_path = client.download_artifacts(result.run_id, "cv/oof_predictions.csv", str(tmp_path))
    oof = pd.read_csv(oof_path)
    assert len(oof) == folds["n_test"].sum() == n_samples
    assert sorted(oof["fold"].unique()) == list(range(n_folds))
    return oof


def test_kfold_run_is_a_parent_with_one_child_per_fold(toy_config, tmp_path: Path) -> None:  # noqa: F811
    from mlflow.tracking import MlflowClient

    from deepms.training.runner import run

    cfg = toy_config("cv=kfold", "cv.n_splits=3", "cv.val_fraction=0.25", "run_name=toy-cv")
    result = run(cfg)
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    oof = _check_parent(client, result, 3, "val_mae", 60, tmp_path)
    peptides = oof.groupby("peptide")["fold"].nunique()
    assert len(peptides) == 40 and (peptides == 1).all()  # a peptide's rows sit in one fold
    assert np.abs(oof["predicted"] - oof["y"]).mean() == pytest.approx(
        result.metrics["cv_test_mae_mean"], rel=0.2
    )
    assert {f.lineage.n_samples["test"] for f in result.folds} <= {19, 20, 21}
    assert (Path(cfg.paths.output_dir) / "fold2" / "checkpoints").is_dir()
    parent = client.get_run(result.run_id)
    assert parent.data.tags["split"] == result.lineage.split == "peptide_grouped_kfold3_seed42"
    (dataset,) = parent.inputs.dataset_inputs  # the parent's Datasets panel: the toy file
    sha256 = hashlib.sha256(toy_config.data_file.read_bytes()).hexdigest()
    assert dataset.dataset.digest == sha256[:36]
    assert "cv.summary" not in parent.data.tags  # ToyModel has no summarize_folds: nothing added
    assert _artifacts(client, result.run_id, "plots") == set()


def test_a_failed_fold_fails_the_parent(toy_config) -> None:  # noqa: F811
    from mlflow.tracking import MlflowClient

    from deepms.training.runner import run

    cfg = toy_config("cv=kfold", "cv.n_splits=3", "cv.val_fraction=0.25", fail_on_fold=1)
    with pytest.raises(RuntimeError, match="fold 1 fails on purpose"):
        run(cfg)
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name("deeprt").experiment_id
    runs = client.search_runs([experiment])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"
    status = {r.data.tags["cv.fold"]: r.info.status for r in _children(client, parent.info.run_id)}
    assert status == {"0": "FINISHED", "1": "FAILED"}


@pytest.mark.slow
def test_deeprt_cv_end_to_end(tmp_path: Path, compose_config) -> None:
    """deeprt's tiny experiment under 3-fold CV: each peptide predicted exactly once."""
    from mlflow.tracking import MlflowClient

    from deepms.training.runner import run

    cfg = compose_config(
        "task=deeprt",
        "experiment=deeprt_tiny",
        "cv=kfold",
        "cv.n_splits=3",
        "threads=1",
        "run_name=rt-cv",
    )
    result = run(cfg)
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    n_samples = sum(result.folds[0].lineage.n_samples.values())
    oof = _check_parent(client, result, 3, "val_mae", n_samples, tmp_path)
    assert oof["peptide"].is_unique
    assert {"rt", "predicted_rt"} <= set(oof.columns)


def test_fold_config_names_the_fold_for_data_outputs_run_and_pruning(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from deepms.training.cv import fold_config

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "task=deeprt",
                "cv=kfold",
                "trainer.max_epochs=7",
                f"paths.output_dir={tmp_path}",
                "++callbacks.optuna_pruning._target_=deepms.sweep.pruning.OptunaPruning",
                "++callbacks.optuna_pruning.trial_number=0",
                "++callbacks.optuna_pruning.monitor=val_mae",
            ],
        )
    fold = fold_config(cfg, 2, str(tmp_path), "child-run")
    assert cfg.cv.fold is None and "cv" not in cfg.data  # the parent's config is left alone
    assert fold.cv.fold == 2
    assert OmegaConf.to_container(fold.data.cv) == {
        "scheme": "kfold",
        "n_splits": 5,
        "n_repeats": 1,
        "fold": 2,
        "val_fraction": 0.1,
        "seed": 42,
    }
    assert fold.callbacks.model_checkpoint.dirpath == str(tmp_path / "fold2" / "checkpoints")
    assert fold.logger.mlflow.run_id == "child-run"
    assert fold.callbacks.optuna_pruning.step_offset == 14


class SummarizingToyModel(ToyModel):
    """The toy model with a cv summary: the pooled out-of-fold MAE, a figure and a table."""

    @staticmethod
    def summarize_folds(oof, folds):
        from deepms.plots import histogram

        residuals = oof["predicted"] - oof["y"]
        table = folds[["fold", "n_test"]].assign(oof_rows=oof.groupby("fold").size().to_numpy())
        metrics = {"oof_mae": float(residuals.abs().mean()), "oof_nan": math.nan}
        return metrics, {"residuals": histogram(residuals.to_numpy(), "residual"), "sizes": table}


class FailingSummaryToyModel(ToyModel):
    @classmethod
    def summarize_folds(cls, oof, folds):
        raise ValueError("no summary on purpose")


def _artifacts(client, run_id: str, path: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, path)}


def test_a_models_summarize_folds_lands_on_the_parent(toy_config, tmp_path: Path) -> None:  # noqa: F811
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from deepms.training.runner import run

    cfg = toy_config("cv=kfold", "cv.n_splits=2", "cv.val_fraction=0.25")
    cfg.model._target_ = f"{__name__}.SummarizingToyModel"
    result = run(cfg)
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    oof = pd.read_csv(client.download_artifacts(result.run_id, "cv/oof_predictions.csv"))
    expected = (oof["predicted"] - oof["y"]).abs().mean()
    parent = client.get_run(result.run_id)
    assert parent.data.metrics["oof_mae"] == pytest.approx(expected, rel=1e-6)
    assert result.metrics["oof_mae"] == pytest.approx(expected, rel=1e-6)
    assert "oof_nan" not in parent.data.metrics  # a NaN metric is not logged
    assert parent.data.tags["cv.summary"] == "SummarizingToyModel.summarize_folds"
    assert _artifacts(client, result.run_id, "plots") == {"plots/residuals.png"}
    sizes = pd.read_csv(client.download_artifacts(result.run_id, "cv/sizes.csv"))
    assert sizes["oof_rows"].tolist() == sizes["n_test"].tolist() and sizes["oof_rows"].sum() == 60
    for child in _children(client, result.run_id):  # the folds get nothing of it
        assert "oof_mae" not in child.data.metrics


def test_a_failing_summary_is_a_tag_and_the_parent_finishes(toy_config) -> None:  # noqa: F811
    from mlflow.tracking import MlflowClient

    from deepms.training.runner import run

    cfg = toy_config("cv=kfold", "cv.n_splits=2", "cv.val_fraction=0.25")
    cfg.model._target_ = f"{__name__}.FailingSummaryToyModel"
    result = run(cfg)
    parent = MlflowClient(cfg.logger.mlflow.tracking_uri).get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["cv.summary"] == "failed: ValueError: no summary on purpose"
    assert not any(k.startswith("oof_") for k in parent.data.metrics)


def test_cv_fold_alone_runs_that_fold_as_an_ordinary_run(toy_config) -> None:  # noqa: F811
    from deepms.training.runner import run

    cfg = toy_config("cv=kfold", "cv.n_splits=3", "cv.val_fraction=0.25", "cv.fold=1")
    result = run(cfg)
    assert result.folds in (None, [])  # no parent, no fold list: one run
    assert result.lineage.split == "peptide_grouped_kfold3_seed42_fold1"  # the fold, not data.split
    assert result.lineage.n_samples["test"] in (19, 20, 21)
