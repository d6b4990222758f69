"""Registry end to end: train a tiny model, register, promote, predict, serve over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from deepms.cli import main
from deepms.registry import ModelLoadError, load_predictor, resolve_checkpoint
from deepms.tracking.client import using_tracking_uri
from tests.conftest import ROOT
from tests.tasks.pdeep.test_predict import INPUT, expected_relative

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> SimpleNamespace:
    """One tiny run that the end-of-run hook registers (version 1) and promotes to @champion."""
    from hydra import compose, initialize_config_dir

    from deepms.training.runner import run

    tmp = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}"
    overrides = [
        f"paths.root_dir={ROOT}",
        f"paths.output_dir={tmp / 'out'}",
        f"paths.mlruns_dir={tmp / 'mlruns'}",
        f"paths.data_mirror={mirror}",
        f"paths.cache_dir={tmp / 'cache'}",
        f"logger.mlflow.tracking_uri={uri}",
        "experiment=pdeep_tiny",
        "registry.register=true",
        "registry.promote_if='test_median_pcc>=-1'",
    ]
    os.environ.setdefault("DEEPMS_ROOT", str(ROOT))
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    result = run(cfg)
    source = tmp / "precursors.csv"
    INPUT.to_csv(source, index=False)
    return SimpleNamespace(result=result, uri=uri, tmp=tmp, source=source)


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_train_py_registers_and_promotes_at_the_end_of_a_run(trained) -> None:
    version = client(trained.uri).get_model_version_by_alias("pdeep", "champion")
    assert version.version in ("1", 1) and version.run_id == trained.result.run_id
    why = version.tags["deepms.promoted.champion.why"]
    pcc = trained.result.metrics["test_median_pcc"]
    assert why == f"test_median_pcc = {pcc:.6g} satisfies test_median_pcc>=-1"
    assert version.tags["deepms.predictor"] == "deepms.tasks.pdeep.predict.PDeepPredictor"
    from deepms.registry.reference import (
        DESCRIPTION_KEY,
        MODEL_CLASS_KEY,
        PREDICTOR_KEY,
        load_checkpoint,
    )

    state = load_checkpoint(trained.result.best_checkpoint)  # weights only: no pickles inside
    assert state[MODEL_CLASS_KEY] == "deepms.tasks.pdeep.model.PDeepModel"
    assert state[PREDICTOR_KEY] == "deepms.tasks.pdeep.predict.PDeepPredictor"
    assert state[DESCRIPTION_KEY]["modifications"]["Carbamidomethyl@C"]["accession"] == "UNIMOD:4"


def test_register_promote_and_predict_through_the_alias(trained, capsys) -> None:
    uri, run_id = trained.uri, trained.result.run_id
    assert main(["register", run_id, "--tracking-uri", uri]) == 0
    assert f"registered pdeep version 2 from run {run_id}" in capsys.readouterr().out
    assert (
        main(["promote", "pdeep", "--require", "test_median_pcc>=-1", "--tracking-uri", uri]) == 0
    )
    assert "pdeep version 2 is now @champion" in capsys.readouterr().out
    tags = client(uri).get_model_version("pdeep", "2").tags
    promoted = datetime.fromisoformat(tags["deepms.promoted.champion.at"])
    assert abs((datetime.now(UTC) - promoted).total_seconds()) < 600
    assert tags["deepms.promoted.champion.previous"] == "1"
    out = trained.tmp / "champion.tsv"
    args = ["predict", "models:/pdeep@champion", "--input", str(trained.source)]
    assert main([*args, "--output", str(out), "--min-intensity", "0", "--tracking-uri", uri]) == 0
    table = pd.read_csv(out, sep="\t")
    from deepms.tasks.pdeep.model import PDeepModel  # Lightning's own loader, as in training

    model = PDeepModel.load_from_checkpoint(trained.result.best_checkpoint, map_location="cpu")
    model.eval()
    for peptide, charge, ce in INPUT.itertuples(index=False):
        expected = expected_relative(model, peptide, charge, None if np.isnan(ce) else ce)
        rows = table[table["PrecursorCharge"] == charge]
        n_bonds = expected.shape[0]
        ion = (rows["FragmentType"] == "y").to_numpy()
        bond = np.where(ion, n_bonds - rows["FragmentNumber"], rows["FragmentNumber"] - 1)
        channel = 2 * ion + rows["FragmentCharge"].to_numpy() - 1
        np.testing.assert_allclose(rows["RelativeIntensity"], expected[bond, channel], atol=1e-6)
        assert len(rows) == np.count_nonzero(expected)
    same = load_predictor(f"runs:/{run_id}", tracking_uri=uri).predict(INPUT, min_intensity=0)
    np.testing.assert_allclose(same["RelativeIntensity"], table["RelativeIntensity"], atol=1e-6)
    checkpoint = resolve_checkpoint("models:/pdeep@champion", tracking_uri=uri)  # for finetune
    assert checkpoint.read_bytes() == Path(trained.result.best_checkpoint).read_bytes()


def alias_version(uri: str) -> str:
    return str(client(uri).get_registered_model("pdeep").aliases["champion"])


def test_promote_refuses_and_leaves_the_alias(trained, capsys) -> None:
    uri = trained.uri
    before = alias_version(uri)
    tags_before = client(uri).get_model_version("pdeep", "1").tags
    base = ["promote", "pdeep", "--alias", "champion", "--version", "1", "--tracking-uri", uri]
    pcc = trained.result.metrics["test_median_pcc"]
    assert main([*base, "--require", "test_median_pcc>=1.01"]) == 2
    err = capsys.readouterr().err
    assert f"test_median_pcc = {pcc:.6g} does not satisfy test_median_pcc>=1.01" in err
    assert f"alias 'champion' unchanged (version {before})" in err
    assert main([*base, "--require", "test_rt_mae<=2"]) == 2
    assert "has no metric 'test_rt_mae'" in capsys.readouterr().err
    mlflow_client = client(uri)
    with using_tracking_uri(uri):  # a version that existed, then was deleted
        source = mlflow_client.get_model_version("pdeep", "1").source
        extra = mlflow_client.create_model_version("pdeep", source)
    mlflow_client.delete_model_version("pdeep", extra.version)
    missing = ["promote", "pdeep", "--version", str(extra.version), "--tracking-uri", uri]
    assert main(missing) == 2
    assert f"version {extra.version} does not exist" in capsys.readouterr().err
    assert alias_version(uri) == before
    assert mlflow_client.get_model_version("pdeep", "1").tags == tags_before  # nothing written
    for alias, version in mlflow_client.get_registered_model("pdeep").aliases.items():
        assert mlflow_client.get_model_version_by_alias("pdeep", alias).version == version
    with pytest.raises(ModelLoadError, match="nobody"):
        load_predictor("models:/pdeep@nobody", tracking_uri=uri)


def test_models_table_lists_versions_aliases_metrics(trained, capsys) -> None:
    assert main(["models", "--tracking-uri", trained.uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["name", "version", "aliases", "status", "run"]
    pcc = trained.result.metrics["test_median_pcc"]
    champion = next(line for line in lines if "champion" in line)
    assert f"test_median_pcc={pcc:.4f}" in champion and trained.result.run_id[:12] in champion


def test_registered_model_is_self_contained_and_checked(trained, tmp_path: Path) -> None:
    from mlflow.artifacts import download_artifacts

    local = Path(
        download_artifacts("models:/pdeep/1", dst_path=str(tmp_path), tracking_uri=trained.uri)
    )
    mlmodel = (local / "MLmodel").read_text()
    assert "Carbamidomethyl@C" in mlmodel and "UNIMOD:4" in mlmodel and "hidden_size: 16" in mlmodel
    example = pd.read_json(local / "input_example.json", orient="split")
    assert len(example) >= 2
    predicted = load_predictor(str(local)).predict(INPUT)  # no run, no config, no registry
    reference = load_predictor("models:/pdeep/1", tracking_uri=trained.uri).predict(INPUT)
    pd.testing.assert_frame_equal(predicted, reference)
    (checkpoint,) = (local / "artifacts").glob("*.ckpt")
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="not a readable checkpoint"):
        load_predictor(str(local))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mlflow_serve_answers_like_deepms_predict(trained) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained.uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/pdeep@champion"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "mlflow models serve did not start in 120 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        payload = {"dataframe_split": json.loads(INPUT.to_json(orient="split", index=False))}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            served = pd.DataFrame(json.loads(response.read())["predictions"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
    out = trained.tmp / "cli.tsv"
    args = ["predict", "models:/pdeep@champion", "--input", str(trained.source)]
    assert main([*args, "--output", str(out), "--tracking-uri", trained.uri, "--no-progress"]) == 0
    cli = pd.read_csv(out, sep="\t")
    assert served["ModifiedPeptide"].tolist() == cli["ModifiedPeptide"].tolist()
    assert served["FragmentType"].tolist() == cli["FragmentType"].tolist()
    np.testing.assert_allclose(served["RelativeIntensity"], cli["RelativeIntensity"], rtol=1e-6)
    np.testing.assert_allclose(served["FragmentMz"], cli["FragmentMz"], rtol=1e-12)
