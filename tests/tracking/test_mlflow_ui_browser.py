"""The MLflow UI in a real headless Chromium shows our runs and their metrics.

Needs Debian's chromium (``.ci/run`` installs it) and the ``playwright`` Python package (driver
only; its own browser download is never used). Skipped with the reason where either is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt chromium)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DATASET = "pdeep_massivekb"
DATASET_SHA256 = "a02b2cc74bfac83324cfae3d9e152defc963ecb5c7fd873c62a53f9088f1112b"


def _store_with_two_runs(tmp_path: Path) -> tuple[str, str]:
    """Two finished runs in an experiment made the way the runner makes it (model-training kind),
    each with its data set logged as an MLflow dataset input (name, sha256 digest, context)."""
    from mlflow.tracking import MlflowClient

    from deepms.tracking.lineage import DatasetInput
    from deepms.tracking.mlflow_setup import ensure_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = ensure_experiment(client, "pdeep", (tmp_path / "artifacts").as_uri())
    data = DatasetInput(DATASET, {"pdeep/x.mgf": DATASET_SHA256}, "/mirror/pdeep/x.mgf", "train")
    for name, value in (("pdeep-lstm-a", 0.912), ("pdeep-lstm-b", 0.874)):
        run = client.create_run(experiment, run_name=name, tags={"task": "pdeep"})
        client.log_metric(run.info.run_id, "test_median_pcc", value)
        client.log_param(run.info.run_id, "model.hidden_size", "256")
        client.log_inputs(run.info.run_id, datasets=[data.to_mlflow()])
        client.set_terminated(run.info.run_id)
    return uri, experiment


def test_experiment_page_lists_runs_metric_and_datasets(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    uri, experiment = _store_with_two_runs(tmp_path)
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(mlflow), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    screenshot = tmp_path / "mlflow_ui.png"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None, "mlflow ui exited"
                assert time.monotonic() < deadline, "mlflow ui did not answer in 90 s"
                time.sleep(0.5)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 2400, "height": 900})
            # sorted by the metric, best first, as a user comparing models would look at it
            # MLflow 3.17 opens the GenAI workspace unless asked for model training
            query = "workflowType=machine_learning"
            query += "&orderByKey=metrics.%60test_median_pcc%60&orderByAsc=false"
            page.goto(f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs?{query}")
            for name in ("pdeep-lstm-a", "pdeep-lstm-b"):
                page.get_by_text(name).first.wait_for(timeout=60_000)
            page.get_by_role("button", name="Columns").click()  # MLflow 3 hides metric columns
            page.get_by_text("test_median_pcc").last.click()
            page.keyboard.press("Escape")
            page.get_by_text("Metrics", exact=True).first.wait_for(timeout=30_000)
            for value in ("0.912", "0.874"):
                page.get_by_text(value, exact=True).first.wait_for(timeout=30_000)
            names = page.get_by_text("pdeep-lstm-").all_inner_texts()
            assert names[:2] == ["pdeep-lstm-a", "pdeep-lstm-b"]  # best test_median_pcc first
            # the Dataset column names the data set and its digest (the sha256's first digits)
            page.get_by_text(f"{DATASET} ({DATASET_SHA256[:12]}", exact=False).first.wait_for(
                timeout=30_000
            )
            page.screenshot(path=str(screenshot), full_page=True)
            page.get_by_text("pdeep-lstm-a").first.click()  # the run page: its Datasets panel
            page.get_by_text("Datasets", exact=True).first.wait_for(timeout=30_000)
            page.get_by_text(DATASET, exact=False).first.wait_for(timeout=30_000)
            panel = page.inner_text("body").rsplit("\nDatasets\n", 1)[-1][:300]
            assert f"{DATASET} ({DATASET_SHA256[:36]})" in panel, panel  # 36: MLflow's digest
            assert "\nTrain\n" in panel, panel  # the part of the data it fed
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert screenshot.stat().st_size > 10_000
    keep = ROOT / "outputs" / "screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, keep / "mlflow_ui_runs.png")
