"""BiomarkerPredictor: the saved in-fold preprocessing is applied, a missing protein is a named
error (nothing written), ``on_missing=impute`` fills it with the training value and says so."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch

from deepms.tasks.biomarker.model import BiomarkerModel
from deepms.tasks.biomarker.predict import BiomarkerPredictor, MissingProteinError
from deepms.tasks.biomarker.preprocess import Preprocessor

PROTEINS = ["P1", "P2", "P3", "P4"]


def raw_cohort(n: int = 30, seed: int = 0) -> pd.DataFrame:
    """Positive intensities (log2 around 20), a few missing; P4 missing in most rows."""
    rng = np.random.default_rng(seed)
    x = 2.0 ** rng.normal(20, 1, size=(n, 4))
    x[rng.random((n, 4)) < 0.1] = np.nan
    x[: int(0.8 * n), 3] = np.nan  # dropped by the 50 % missing filter
    frame = pd.DataFrame(x, columns=PROTEINS)
    frame.insert(0, "sample_id", [f"S{i}" for i in range(n)])
    return frame


@pytest.fixture
def predictor() -> BiomarkerPredictor:
    frame = raw_cohort()
    labels = (np.nan_to_num(np.log2(frame["P1"].to_numpy()), nan=20) > 20).astype(int)
    pre = Preprocessor(max_missing=0.5, impute="min_half").fit(
        frame[PROTEINS].to_numpy(), labels, PROTEINS
    )
    assert pre.output_names == ["P1", "P2", "P3"]
    torch.manual_seed(0)
    model = BiomarkerModel(3, pre.output_names, pre.to_dict(), ["control", "AD"], "AD",
                           hidden_sizes=[4], panel_size=2)  # fmt: skip
    with torch.no_grad():  # P1 dominates the weight ranking, then P3
        model.dbn.rbms[0].weight.copy_(torch.tensor([[3.0] * 4, [0.1] * 4, [-1.0] * 4]))
    return BiomarkerPredictor(model)


def expected(predictor: BiomarkerPredictor, raw: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(predictor.preprocessor.transform(raw))
        return torch.sigmoid(predictor.model(x)).numpy()


def test_prediction_applies_the_saved_preprocessing_and_writes_the_panel(predictor) -> None:
    frame = raw_cohort(6, seed=1)
    out = predictor.predict(frame)
    assert list(out.columns) == [
        "sample_id", "p_AD", "predicted_class", "imputed_proteins", "P1", "P3"
    ]  # fmt: skip
    assert out["sample_id"].tolist() == [f"S{i}" for i in range(6)]
    p = expected(predictor, frame[PROTEINS].to_numpy())
    assert np.allclose(out["p_AD"], p, atol=1e-6)
    with torch.no_grad():  # the raw intensities (~1e6) would saturate the network
        unprocessed = torch.sigmoid(predictor.model(torch.from_numpy(
            np.nan_to_num(frame[PROTEINS[:3]].to_numpy(np.float32))))).numpy()  # fmt: skip
    assert not np.allclose(out["p_AD"], unprocessed, atol=1e-3)
    assert (out["predicted_class"] == np.where(p >= 0.5, "AD", "control")).all()
    assert (
        np.allclose(out["P1"], frame["P1"], equal_nan=True)
        and (out["imputed_proteins"] == "").all()
    )
    # P4, dropped by the missing filter, may be absent: the model does not use it
    assert np.allclose(predictor.predict(frame.drop(columns="P4"))["p_AD"], p, atol=1e-6)


def test_a_missing_protein_is_a_named_error_and_nothing_is_written(
    predictor, tmp_path: Path
) -> None:
    source = tmp_path / "cohort.csv"
    raw_cohort(5).drop(columns="P2").to_csv(source, index=False)
    target = tmp_path / "probs.csv"
    with pytest.raises(MissingProteinError, match=r"lacks 1 protein.*'P2'.*--on-missing impute"):
        predictor.predict_file(source, target, progress=False)
    assert not target.exists()


def test_on_missing_impute_fills_the_training_value_and_records_it(
    predictor, tmp_path: Path
) -> None:
    frame = raw_cohort(5, seed=2)
    predictor.configure(on_missing="impute")
    out = predictor.predict(frame.drop(columns="P2"))
    assert (out["imputed_proteins"] == "P2").all()
    raw = frame[PROTEINS].to_numpy(copy=True)
    raw[:, 1] = np.nan  # what the imputation sees: P2 unobserved in every sample
    assert np.allclose(out["p_AD"], expected(predictor, raw), atol=1e-6)
    with pytest.raises(ValueError, match="on_missing='drop'"):
        predictor.configure(on_missing="drop")


def test_bad_id_column_and_non_numeric_cells_are_named(predictor) -> None:
    frame = raw_cohort(3)
    predictor.configure(id_column="patient")
    with pytest.raises(ValueError, match="id column 'patient' not in the input"):
        predictor.predict(frame)
    predictor.configure(id_column="sample_id")
    frame["P3"] = frame["P3"].astype(object)
    frame.loc[1, "P3"] = "n/a"
    with pytest.raises(ValueError, match="column 'P3' has a non-numeric cell"):
        predictor.predict(frame)


def test_checkpoint_round_trip_loads_the_predictor_with_its_description(
    predictor, tmp_path: Path
) -> None:
    model = predictor.model
    model.deepms_predictor = "deepms.tasks.biomarker.predict.BiomarkerPredictor"
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = BiomarkerPredictor.from_checkpoint(path, on_missing="impute")
    frame = raw_cohort(4, seed=3)
    assert loaded.on_missing == "impute" and loaded.panel == ["P1", "P3"]
    assert np.allclose(loaded.predict(frame)["p_AD"], predictor.predict(frame)["p_AD"])
    assert len(loaded.predict(loaded.input_example())) == 2


def test_deepms_predict_offers_on_missing_and_writes_what_it_imputed(
    predictor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deepms.cli import main

    model = predictor.model
    model.deepms_predictor = "deepms.tasks.biomarker.predict.BiomarkerPredictor"
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    source, target = tmp_path / "cohort.csv", tmp_path / "probs.csv"
    raw_cohort(4).drop(columns="P2").to_csv(source, index=False)
    argv = ["predict", str(tmp_path / "model.ckpt"), "--input", str(source), "--output"]
    assert main([*argv, str(target), "--no-progress"]) != 0  # the CLI prints the error
    assert "lacks 1 protein(s) the model uses: 'P2'" in capsys.readouterr().err
    assert not target.exists()
    assert main([*argv, str(target), "--on-missing", "impute", "--no-progress"]) == 0
    written = pd.read_csv(target)
    assert len(written) == 4 and (written["imputed_proteins"] == "P2").all()
