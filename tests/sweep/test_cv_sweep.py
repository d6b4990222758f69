"""A sweep over a cross-validated run optimises the mean over folds (``-m sweep=... cv=...``).

The toy task of ``test_runner`` (data and model configs written into a search-path folder), two
trials of two folds each: each trial's MLflow run is the parent of its folds, and the value the
study records is the parent's ``cv_best_val_mae_mean``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.training.test_runner import ROOT, write_toy

pytestmark = pytest.mark.slow


def _configs(folder: Path, data_file: Path) -> None:
    for group, text in {
        "data/toy.yaml": (
            "_target_: tests.training.test_runner.ToyDataModule\n"
            f"sources: [{{path: {data_file}, format: toy_xy}}]\n"
            "split: {fractions: [0.6, 0.2, 0.2], seed: '${seed}'}\n"
            "batch_size: 16\n"
        ),
        "model/toy.yaml": "_target_: tests.training.test_runner.ToyModel\nlr: 0.05\n",
        "sweep/toy.yaml": (
            "# @package _global_\n"
            "defaults:\n  - override /hydra/sweeper: deepms_optuna\n"
            "hydra:\n  sweeper:\n    pruner: {type: none}\n"
            "    params:\n      model:\n"
            "        lr: {type: float, low: 0.01, high: 0.1, log: true}\n"
        ),
    }.items():
        path = folder / group
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_sweep_over_cv_optimises_the_mean_over_folds(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    _configs(tmp_path / "conf", write_toy(tmp_path / "toy.toy"))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "task=deeprt",
        "data=toy",
        "model=toy",
        "sweep=toy",
        "cv=kfold",
        "cv.n_splits=2",
        "cv.val_fraction=0.25",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "threads=1",
        "logger.mlflow.log_model=false",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        f"paths.mlruns_dir={tmp_path / 'mlruns'}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage={storage}",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    study = optuna.load_study(study_name="deeprt", storage=storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("deeprt")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    children: dict[str, list] = {}
    for run in runs:
        children.setdefault(run.data.tags.get("mlflow.parentRunId"), []).append(run)
    for trial in trials:
        trial_run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert trial_run.info.status == "FINISHED"
        assert trial.value == pytest.approx(trial_run.data.metrics["cv_best_val_mae_mean"])
        folds = children[trial_run.info.run_id]
        assert sorted(r.data.tags["cv.fold"] for r in folds) == ["0", "1"]
        assert all(r.info.status == "FINISHED" for r in folds)
        assert trial_run.data.params["model.lr"] == folds[0].data.params["model.lr"]
