"""Train against a real MLflow tracking server backed by PostgreSQL, both on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from deepms.tracking import postgres
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres.bin_dir() is None, reason="no PostgreSQL (apt postgresql)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return
        except OSError:
            assert server.poll() is None, "mlflow server exited"
            assert time.monotonic() < deadline, f"mlflow server did not answer in {seconds} s"
            time.sleep(0.5)


def test_training_is_tracked_on_postgres_backed_server(tmp_path: Path, mirror: Path) -> None:
    from mlflow.tracking import MlflowClient

    state = Path(
        tempfile.mkdtemp(prefix="deepms-pg-")
    )  # pytest's tmp is 0700: postgres can't enter
    pg_port = _free_port()
    postgres.start(state, pg_port)
    http_port = _free_port()
    url = f"http://127.0.0.1:{http_port}"
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(http_port),
            "--backend-store-uri",
            postgres.url(pg_port, "mlflow"),
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(url, server)
        env = {**os.environ, "MLFLOW_TRACKING_URI": url, "DEEPMS_DATA_MIRROR": str(mirror)}
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "train.py"),
                "experiment=pdeep_tiny",
                "run_name=on-server",
                f"hydra.run.dir={tmp_path / 'run'}",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        client = MlflowClient(url)
        (run,) = client.search_runs([client.get_experiment_by_name("pdeep").experiment_id])
        assert run.info.run_name == "on-server" and run.info.status == "FINISHED"
        assert {"test_median_pcc", "val_median_pcc"} <= set(run.data.metrics)
        files = [a.path for a in client.list_artifacts(run.info.run_id)]
        checkpoints = [
            f.path
            for folder in files
            for f in client.list_artifacts(run.info.run_id, folder)
            if f.path.endswith(".ckpt")
        ]
        assert checkpoints, files
        local = client.download_artifacts(run.info.run_id, checkpoints[0], str(tmp_path / "dl"))
        assert Path(local).stat().st_size > 1000
        assert (tmp_path / "artifacts").exists()  # stored by the server, not the client
    finally:
        server.terminate()
        server.wait(timeout=30)
        postgres.stop(state, mode="immediate")
        shutil.rmtree(state, ignore_errors=True)
