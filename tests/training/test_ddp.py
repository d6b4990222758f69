"""Two-process DDP on CPU (gloo) makes one MLflow run whose test metric matches one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

#: Same global batches and steps (batch_size is global); only the float summation order of the
#: gradient all-reduce differs (dropout is off), so metrics agree closely, not bit-exactly.
TOLERANCE = 0.02


def _train(tmp_path: Path, name: str, mirror: Path, *extra: str) -> None:
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "experiment=pdeep_tiny",
        "data.limit_per_source=150",
        "trainer.max_epochs=3",
        "model.dropout=0.0",
        f"run_name={name}",
        f"logger.mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"paths.mlruns_dir={tmp_path / 'mlruns'}",
        f"hydra.run.dir={tmp_path / name}",
        *extra,
    ]
    env = {**os.environ, "DEEPMS_DATA_MIRROR": str(mirror)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_ddp_two_cpu_processes_match_single_process(tmp_path: Path, mirror: Path) -> None:
    from mlflow.tracking import MlflowClient

    _train(tmp_path, "single", mirror)
    _train(
        tmp_path,
        "ddp",
        mirror,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
    )
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pdeep").experiment_id
    runs = client.search_runs([experiment])
    names = sorted(r.info.run_name for r in runs)
    assert names == ["ddp", "single"]  # one run per training, not one per rank
    by_name = {r.info.run_name: r for r in runs}
    ddp, single = by_name["ddp"], by_name["single"]
    assert ddp.info.status == "FINISHED"
    assert ddp.data.params["trainer.devices"] == "2"
    for key in ("test_median_pcc", "test_median_sa", "test_median_pcc_pdeep_massivekb"):
        assert ddp.data.metrics[key] == pytest.approx(single.data.metrics[key], abs=TOLERANCE)
    # every test spectrum counted once across the two ranks
    for key in [k for k in single.data.metrics if k.startswith("test_n_spectra_")]:
        assert ddp.data.metrics[key] == single.data.metrics[key]
