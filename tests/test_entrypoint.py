"""The Hydra entry point: composition, fast --help, and a tiny tracked end-to-end run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def test_help_does_not_import_lightning_or_mlflow() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "train.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    task_line = next(line for line in result.stdout.splitlines() if line.startswith("task:"))
    assert "pdeep" in task_line
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert "lightning" not in imported and "mlflow" not in imported and "torch" not in imported


def test_task_config_picks_data_model_and_monitor(compose_config) -> None:
    cfg = compose_config("task=pdeep")
    assert cfg.data._target_.endswith("PDeepDataModule")
    assert cfg.model._target_.endswith("PDeepModel")
    assert cfg.task.monitor == "val_median_pcc" and cfg.task.mode == "max"
    assert cfg.callbacks.model_checkpoint.monitor == "val_median_pcc"
    assert cfg.model.num_layers == 2 and cfg.model.hidden_size == 256  # pDeep's defaults


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "debug"])
def test_trainer_options_compose(compose_config, trainer: str) -> None:
    cfg = compose_config(f"trainer={trainer}")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"


@pytest.mark.slow
def test_tiny_run_is_tracked_in_mlflow(compose_config, tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from deepms.training.runner import run

    cfg = compose_config("experiment=pdeep_tiny", "run_name=tiny-e2e")
    result = run(cfg)
    assert result.monitored is not None and -1.0 <= result.monitored <= 1.0
    assert math.isfinite(result.metrics["test_median_pcc"])
    assert result.best_checkpoint and result.best_checkpoint.endswith(".ckpt")

    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name("pdeep")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run_info = runs[0]
    assert run_info.info.run_id == result.run_id
    assert run_info.info.run_name == "tiny-e2e" and run_info.info.status == "FINISHED"
    for key in ("test_median_pcc", "test_median_sa", "test_pcc90", "val_median_pcc"):
        assert key in run_info.data.metrics
    tags = run_info.data.tags
    assert tags["task"] == "pdeep" and tags["split"] == "peptide_grouped_80_10_10_seed42"
    assert len(tags["git_commit"]) in (7, 40) or tags["git_commit"] == "unknown"
    assert run_info.data.params["model.hidden_size"] == "16"
    assert int(run_info.data.params["n_parameters"]) > 0

    def listing(path: str = "") -> set[str]:
        found = set()
        for item in client.list_artifacts(run_info.info.run_id, path):
            found |= listing(item.path) if item.is_dir else {item.path}
        return found

    artifacts = listing()
    assert "config/config.yaml" in artifacts and "data/lineage.json" in artifacts
    assert any(p.startswith("plots/mirror_") for p in artifacts)
    assert any(p.endswith(".ckpt") for p in artifacts)
    lineage = client.download_artifacts(run_info.info.run_id, "data/lineage.json", str(tmp_path))
    text = Path(lineage).read_text()
    assert "a02b2cc74bfac83324cfae3d9e152defc963ecb5c7fd873c62a53f9088f1112b" in text  # MGF sha256
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    inputs = run_info.inputs.dataset_inputs  # one MLflow dataset per source, sha256 as digest
    assert inputs and all(len(d.dataset.digest) == 36 for d in inputs)
    assert {d.dataset.name for d in inputs} == set(json.loads(text)["datasets"])


@pytest.mark.slow
def test_compiled_model_trains_and_tests(compose_config) -> None:
    from deepms.training.runner import run

    result = run(compose_config("experiment=pdeep_tiny", "compile=true", "trainer.max_epochs=1"))
    assert math.isfinite(result.metrics["test_median_pcc"])
