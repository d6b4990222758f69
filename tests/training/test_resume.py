"""A run killed with SIGKILL resumes into the same MLflow run and ends as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _command(tmp_path: Path, run_dir: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        "experiment=pdeep_tiny",
        "data.limit_per_source=150",
        "trainer.max_epochs=6",
        "trainer.deterministic=true",
        "callbacks.early_stopping.patience=100",
        f"logger.mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"paths.mlruns_dir={tmp_path / 'mlruns'}",
        f"hydra.run.dir={tmp_path / run_dir}",
        *extra,
    ]


def _env(mirror: Path) -> dict[str, str]:
    return {**os.environ, "DEEPMS_DATA_MIRROR": str(mirror), "PYTHONHASHSEED": "0"}


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path, mirror: Path) -> None:
    from mlflow.tracking import MlflowClient

    env = _env(mirror)
    victim = subprocess.Popen(
        _command(tmp_path, "killed", "run_name=victim"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # into the next epoch
    assert victim.poll() is None, "training ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (killed,) = client.search_runs([client.get_experiment_by_name("pdeep").experiment_id])
    assert killed.info.status == "RUNNING" and "test_median_pcc" not in killed.data.metrics

    resume = _command(tmp_path, "ignored", "resume=last")
    subprocess.run(resume, env=env, check=True, capture_output=True, timeout=300)
    subprocess.run(
        _command(tmp_path, "reference", "run_name=reference"),
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    experiment = client.get_experiment_by_name("pdeep").experiment_id
    runs = {r.info.run_name: r for r in client.search_runs([experiment])}
    assert set(runs) == {"victim", "reference"}  # resumed into the same run, not a new one
    resumed, reference = runs["victim"], runs["reference"]
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"
    for key in ("test_median_pcc", "test_median_sa", "val_median_pcc"):
        assert resumed.data.metrics[key] == pytest.approx(reference.data.metrics[key], abs=1e-6)
    history = client.get_metric_history(resumed.info.run_id, "val_median_pcc")
    assert len({m.step for m in history}) == 6  # every epoch's validation, none lost


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path, mirror: Path) -> None:
    result = subprocess.run(
        _command(tmp_path, "x", "resume=0123456789abcdef"),
        env=_env(mirror),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "resume=0123456789abcdef: no such run" in result.stderr
