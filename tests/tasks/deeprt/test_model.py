"""deeprt models: calibration map, weight transfer across vocabularies, tracked tiny runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from deepms.chem import parse_proforma
from deepms.chem.encoding import N_RESIDUE_TOKENS
from deepms.tasks.deeprt.model import RTModel
from deepms.tasks.deeprt.transfer import fit_piecewise_linear, piecewise_linear
from deepms.training.finetune import FinetuneError, freeze, resolve_checkpoint


def _model(vocabulary: list[str]) -> RTModel:
    return RTModel(
        N_RESIDUE_TOKENS,
        {"modifications": vocabulary},
        "min",
        rt_mean=30.0,
        rt_std=10.0,
        embed_dim=4,
        conv_channels=4,
        n_conv=1,
        lstm_hidden=4,
    )


def test_piecewise_linear_recovers_a_kinked_line_and_extrapolates() -> None:
    x = np.linspace(0.0, 10.0, 101)  # the median (a knot with 3 knots) is exactly the kink, 5
    y = np.where(x < 5, 2 * x, 10 + 0.5 * (x - 5))
    knots, values = fit_piecewise_linear(x, y, n_knots=3)
    at = piecewise_linear(
        torch.tensor([-2.0, 2.5, 7.5, 12.0]), torch.tensor(knots), torch.tensor(values)
    )
    assert at.tolist() == pytest.approx([-4.0, 5.0, 11.25, 13.5], abs=1e-4)


def test_pretrained_modification_columns_are_matched_by_name() -> None:
    old = _model(["Oxidation@M"])
    with torch.no_grad():
        old.net.mod_proj.weight.copy_(torch.arange(8.0).reshape(4, 2))  # columns: Ox, mass
    new = _model(["Acetyl@K", "Oxidation@M"])
    checkpoint = {"state_dict": old.state_dict(), "hyper_parameters": dict(old.hparams)}
    loaded, _ = new.load_pretrained(checkpoint)
    weight = new.net.mod_proj.weight
    assert weight[:, 1].tolist() == [0.0, 2.0, 4.0, 6.0]  # Oxidation@M from its old column
    assert weight[:, 2].tolist() == [1.0, 3.0, 5.0, 7.0]  # the mass-shift channel
    assert weight[:, 0].abs().sum() == 0  # Acetyl@K is new: zero, so it changes nothing yet
    assert "net.lstm.weight_ih_l0" in loaded
    assert torch.equal(new.net.lstm.weight_ih_l0, old.net.lstm.weight_ih_l0)
    wider = RTModel(N_RESIDUE_TOKENS, {}, "min", 30.0, 10.0, embed_dim=4, lstm_hidden=6)
    with pytest.raises(FinetuneError, match="differ in shape"):
        wider.load_pretrained(checkpoint)
    assert freeze(new, ["net.embed"]) == ["net.embed.weight"]
    with pytest.raises(FinetuneError, match="matches no parameter"):
        freeze(new, ["encoder"])
    with pytest.raises(FinetuneError, match="no such checkpoint"):
        resolve_checkpoint("/nonexistent/model.ckpt")


@pytest.mark.slow
def test_tiny_run_logs_rt_metrics_then_transfers(compose_config, tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from deepms.training.runner import run

    cfg = compose_config("task=deeprt", "experiment=deeprt_tiny", "run_name=rt-tiny")
    result = run(cfg)
    for key in ("test_mae", "test_r", "test_r2", "test_delta_t95", "test_median_ae"):
        assert math.isfinite(result.metrics[key]), key
    assert result.lineage["rt_unit"] == "min" and result.best_checkpoint
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    logged = client.get_run(result.run_id)
    assert {"test_mae", "test_r", "test_delta_t95", "val_mae"} <= set(logged.data.metrics)
    assert logged.data.tags["task"] == "deeprt"
    assert logged.data.params["model.embed_dim"] == "8"
    checkpoint = torch.load(result.best_checkpoint, map_location="cpu", weights_only=False)
    assert checkpoint["hyper_parameters"]["rt_unit"] == "min"

    # `deepms predict`: ProForma in, peptide,predicted_rt,rt_unit out, in input order.
    from deepms.cli import main as deepms
    from deepms.tasks.deeprt.predict import RTPredictor

    peptides = ["PEPTIDEK", "ACDEFGHIK", "LGEYGFQNALIVR"]
    (tmp_path / "in.csv").write_text("peptide\n" + "\n".join(peptides) + "\n")
    predictor_class = "deepms.tasks.deeprt.predict.RTPredictor"
    args = ["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "rt.csv")]
    assert deepms(["predict", result.best_checkpoint, *args, "--predictor", predictor_class]) == 0
    lines = (tmp_path / "rt.csv").read_text().splitlines()
    assert lines[0] == "peptide,predicted_rt,rt_unit" and len(lines) == 4
    assert lines[3].startswith("LGEYGFQNALIVR,") and lines[3].endswith(",min")
    predictor = RTPredictor.from_checkpoint(result.best_checkpoint)
    assert predictor.describe()["rt_unit"] == "min"
    alone = predictor.predict_peptides([parse_proforma(peptides[2])])[0]
    assert float(lines[3].split(",")[1]) == pytest.approx(alone, rel=1e-5)
    # The files write alkylated cysteine as plain C; a library's C[Carbamidomethyl] reads alike.
    both = predictor.predict(pd.DataFrame({"peptide": ["AC[Carbamidomethyl]DK", "ACDK"]}))
    assert both["predicted_rt"][0] == pytest.approx(both["predicted_rt"][1])
    assert both["peptide"][0] == "AC[Carbamidomethyl]DK"

    # Calibration-only transfer to the phosphopeptides: one pass, no gradient step.
    calibrated = run(
        compose_config(
            "task=deeprt",
            "experiment=deeprt_tiny",
            "data=deeprt_hela_phospho",
            f"finetune.from={result.best_checkpoint}",
            "finetune.mode=calibrate",
            "finetune.fraction=0.5",
            "run_name=rt-calibrate",
        )
    )
    assert math.isfinite(calibrated.metrics["test_mae"])
    state = torch.load(calibrated.best_checkpoint, map_location="cpu", weights_only=False)
    assert bool(state["state_dict"]["calibrated"])
    assert torch.equal(
        state["state_dict"]["net.head.1.weight"], checkpoint["state_dict"]["net.head.1.weight"]
    )


@pytest.mark.slow
def test_ensemble_fits_the_sklearn_stack_into_the_best_checkpoint(compose_config) -> None:
    from deepms.tasks.deeprt.model import RTEnsembleModel
    from deepms.training.runner import run

    result = run(
        compose_config(
            "task=deeprt",
            "experiment=deeprt_tiny",
            "model=deeprt_ensemble",
            "model.random_forest.n_estimators=10",
            "model.gradient_boosting.n_estimators=10",
        )
    )
    assert math.isfinite(result.metrics["test_mae"])
    restored = RTEnsembleModel.load_from_checkpoint(result.best_checkpoint, map_location="cpu")
    assert set(restored.stack.members) == {"svr", "random_forest", "gradient_boosting"}
    from deepms.tasks.deeprt.predict import RTPredictor

    predictor = RTPredictor.from_checkpoint(result.best_checkpoint)
    assert predictor.model.stack is not None
    out = predictor.predict(pd.DataFrame({"peptide": ["PEPTIDEK", "LGEYGFQNALIVR"]}))
    assert list(out.columns[:3]) == ["peptide", "predicted_rt", "rt_unit"]
