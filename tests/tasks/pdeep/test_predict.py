"""The pdeep predictor: library rows from the model, checkpoints alone, clear load errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deepms.chem import fragment_mz, parse_proforma
from deepms.cli import main
from deepms.errors import UnknownModificationError
from deepms.io.library import LIBRARY_COLUMNS, RT_COLUMN
from deepms.registry import ModelLoadError, Predictor, load_predictor
from deepms.tasks.pdeep.data import N_META, meta_features
from deepms.tasks.pdeep.model import PDeepModel
from deepms.tasks.pdeep.predict import PDeepPredictor

PREDICTOR = "deepms.tasks.pdeep.predict.PDeepPredictor"
INPUT = pd.DataFrame(
    {
        "peptide": ["LGEYGFQNALIVR", "PEPTIDEK", "AC[Carbamidomethyl]DEM[Oxidation]K"],
        "charge": [3, 2, 1],
        "collision_energy": [28.0, np.nan, 30.0],
    }
)


def tiny_model(hidden: int = 8) -> PDeepModel:
    torch.manual_seed(0)
    encoder = {"modifications": ["Carbamidomethyl@C", "Oxidation@M"]}
    return PDeepModel(21, N_META, [1, 2], encoder, hidden_size=hidden, num_layers=1).eval()


def save_checkpoint(model: PDeepModel, path: Path, **changes) -> Path:
    state = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    state["hyper_parameters"].update(changes)
    torch.save(state, path)
    return path


def expected_relative(model: PDeepModel, peptide: str, charge: int, ce: float | None):
    """One precursor through the bare model: clamp, mask z > charge, divide by the max."""
    p = parse_proforma(peptide)
    meta = meta_features(charge, ce, None, None)
    with torch.no_grad():
        out = model(
            torch.from_numpy(model.encoder.encode_residues(p))[None],
            torch.from_numpy(model.encoder.encode_modifications(p))[None],
            torch.from_numpy(meta)[None],
            torch.tensor([len(p.sequence)]),
        )[0].clamp(min=0)
    out[:, [z > charge for z in (1, 2, 1, 2)]] = 0.0
    return (out / out.max()).numpy()  # [bonds, b1 b2 y1 y2]


def test_rows_equal_the_model_with_known_masses() -> None:
    model = tiny_model()
    table = PDeepPredictor(model, batch_size=2, min_intensity=0.0).predict(INPUT)
    assert list(table.columns) == LIBRARY_COLUMNS
    assert list(dict.fromkeys(table["ModifiedPeptide"])) == [
        "LGEYGFQNALIVR",
        "PEPTIDEK",
        "AC(UniMod:4)DEM(UniMod:35)K",
    ]  # input order, although predicted in length order
    for peptide, charge, ce in INPUT.itertuples(index=False):
        rows = table[table["PrecursorCharge"] == charge]
        n_bonds = len(parse_proforma(peptide).sequence) - 1
        expected = expected_relative(model, peptide, charge, None if np.isnan(ce) else ce)
        mz = fragment_mz(peptide)[..., 0]  # [bonds, ion, z]
        for row in rows.itertuples(index=False):
            ion = "by".index(row.FragmentType)
            bond = row.FragmentNumber - 1 if ion == 0 else n_bonds - row.FragmentNumber
            channel = 2 * ion + row.FragmentCharge - 1
            assert row.RelativeIntensity == pytest.approx(expected[bond, channel], abs=1e-6)
            assert row.FragmentMz == pytest.approx(mz[bond, ion, row.FragmentCharge - 1])
        assert len(rows) == int(np.count_nonzero(expected > 0))
        assert rows["RelativeIntensity"].max() == pytest.approx(1.0)
    assert table["FragmentCharge"].le(table["PrecursorCharge"]).all()
    pep = table[table["ModifiedPeptide"] == "PEPTIDEK"]
    assert pep["PrecursorMz"].iloc[0] == pytest.approx(464.73474, abs=1e-5)
    y7 = pep[(pep["FragmentType"] == "y") & (pep["FragmentNumber"] == 7)]
    assert y7["FragmentMz"].iloc[0] == pytest.approx(831.40944, abs=1e-5)  # y7+ of PEPTIDEK


def test_threshold_batching_and_params() -> None:
    predictor = PDeepPredictor(tiny_model(), batch_size=1)
    one = predictor.predict(INPUT)
    predictor.configure(batch_size=64)
    pd.testing.assert_frame_equal(one, predictor.predict(INPUT))
    predictor.configure(batch_size=1, workers=2)  # batches in threads: same rows, same order
    pd.testing.assert_frame_equal(one, predictor.predict(INPUT))
    assert one["RelativeIntensity"].min() >= 0.01
    strict = predictor.predict(INPUT, min_intensity=0.9)
    assert 0 < len(strict) < len(one) and strict["RelativeIntensity"].min() >= 0.9
    with pytest.raises(UnknownModificationError, match="Phospho@S"):
        predictor.predict(pd.DataFrame({"peptide": ["PES[Phospho]K"], "charge": [2]}))
    with pytest.raises(ValueError, match="charge"):
        predictor.predict(pd.DataFrame({"peptide": ["PEPTIDEK"]}))


def test_checkpoint_alone_rebuilds_the_model(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_checkpoint(model, tmp_path / "m.ckpt")
    loaded = PDeepPredictor.from_checkpoint(path)
    pd.testing.assert_frame_equal(loaded.predict(INPUT), PDeepPredictor(model).predict(INPUT))
    description = loaded.describe()
    assert description["hyperparameters"]["encoder"]["modifications"] == [
        "Carbamidomethyl@C",
        "Oxidation@M",
    ]
    assert description["modifications"]["Oxidation@M"] == {
        "accession": "UNIMOD:35",
        "mass": pytest.approx(15.994915),
    }
    stale = {"modifications": {"Oxidation@M": {"accession": "UNIMOD:35", "mass": 16.5}}}
    with pytest.raises(ModelLoadError, match=r"trained with mass 16\.5"):
        loaded.check_description(stale)


def test_corrupt_and_incompatible_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    model = tiny_model()
    good = save_checkpoint(model, tmp_path / "good.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ModelLoadError, match=r"truncated\.ckpt: not a readable checkpoint"):
        PDeepPredictor.from_checkpoint(truncated)
    (tmp_path / "text.ckpt").write_text("not a model")
    with pytest.raises(ModelLoadError, match="not a readable checkpoint"):
        PDeepPredictor.from_checkpoint(tmp_path / "text.ckpt")
    torch.save({"weights": model.state_dict()}, tmp_path / "bare.ckpt")
    with pytest.raises(ModelLoadError, match="needs 'state_dict' and 'hyper_parameters'"):
        PDeepPredictor.from_checkpoint(tmp_path / "bare.ckpt")
    wider = save_checkpoint(model, tmp_path / "wider.ckpt", hidden_size=16)
    with pytest.raises(ModelLoadError, match=r"weights do not fit PDeepModel: size mismatch"):
        PDeepPredictor.from_checkpoint(wider)
    other = save_checkpoint(model, tmp_path / "other.ckpt", n_meta=N_META + 2)
    with pytest.raises(ModelLoadError, match="weights do not fit"):
        PDeepPredictor.from_checkpoint(other)
    unknown = save_checkpoint(model, tmp_path / "unknown.ckpt", n_heads=4)
    with pytest.raises(ModelLoadError, match=r"hyperparameters do not fit.*n_heads"):
        PDeepPredictor.from_checkpoint(unknown)
    with pytest.raises(ModelLoadError, match="no such checkpoint"):
        PDeepPredictor.from_checkpoint(tmp_path / "missing.ckpt")


class ConstantRT(Predictor):
    """A stand-in RT model: one NormalizedRetentionTime per input row (peptide length)."""

    @classmethod
    def from_checkpoint(cls, path, **options):
        return cls()

    def predict(self, frame: pd.DataFrame, **params) -> pd.DataFrame:
        return pd.DataFrame({RT_COLUMN: frame["peptide"].str.len().astype(float) * 2.0})

    def input_example(self) -> pd.DataFrame:
        return pd.DataFrame({"peptide": ["PEPTIDEK", "PEPK"]})


def test_predict_file_streams_chunks_with_an_rt_model(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    INPUT.to_csv(source, index=False)
    predictor = PDeepPredictor(tiny_model())
    counts = predictor.predict_file(
        source, tmp_path / "lib.tsv", chunk_size=2, auxiliary=[ConstantRT()], progress=False
    )
    table = pd.read_csv(tmp_path / "lib.tsv", sep="\t")
    assert counts == {"inputs": 3, "precursors": 3, "fragments": len(table)}
    assert list(table.columns) == [*LIBRARY_COLUMNS, RT_COLUMN]
    rt = table.groupby("StrippedPeptide")[RT_COLUMN].unique()  # 2 x len(input string)
    assert rt.to_dict() == {"LGEYGFQNALIVR": [26.0], "PEPTIDEK": [16.0], "ACDEMK": [68.0]}
    # the base class streams any predictor's table to CSV (here the stand-in RT model itself)
    counts = ConstantRT().predict_file(source, tmp_path / "rt.csv", progress=False)
    assert counts == {"inputs": 3, "rows": 3}
    assert pd.read_csv(tmp_path / "rt.csv")[RT_COLUMN].tolist() == [26.0, 16.0, 68.0]


def test_cli_predict_from_a_checkpoint(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    ckpt = save_checkpoint(tiny_model(), run_dir / "checkpoints" / "best.ckpt")
    source = tmp_path / "in.csv"
    INPUT.to_csv(source, index=False)
    out = tmp_path / "lib.tsv"
    args = ["predict", str(ckpt), "--input", str(source), "--output", str(out), "--no-progress"]
    assert main(args) == 2
    assert "cannot tell which predictor" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--predictor", PREDICTOR, "--min-intensity", "0.2"]) == 0
    assert "3 inputs, 3 precursors" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="2"):  # a de novo option
        main([*args, "--predictor", PREDICTOR, "--beam-size", "5"])
    assert "unrecognized arguments: --beam-size 5 (PDeepPredictor takes" in capsys.readouterr().err
    with pytest.raises(ModelLoadError, match=r"does not take option\(s\) beam_size"):
        load_predictor(str(ckpt), predictor=PREDICTOR, beam_size=5)
    expected = PDeepPredictor.from_checkpoint(ckpt, min_intensity=0.2).predict(INPUT)
    got = pd.read_csv(out, sep="\t")
    np.testing.assert_allclose(got["RelativeIntensity"], expected["RelativeIntensity"], rtol=1e-6)
    (run_dir / ".hydra").mkdir()  # a Hydra run folder names its task's predictor
    (run_dir / ".hydra" / "config.yaml").write_text(f"task:\n  predictor: {PREDICTOR}\n")
    assert isinstance(load_predictor(str(ckpt)), PDeepPredictor)
    assert main(["predict", "no/such/model", "--input", str(source), "--output", str(out)]) == 2
    assert "not a model reference" in capsys.readouterr().err


def test_a_composition_encoded_model_predicts_a_modification_it_never_saw() -> None:
    torch.manual_seed(0)
    encoder = {"modifications": ["Oxidation@M"], "mod_encoding": "both"}
    model = PDeepModel(21, N_META, [1, 2], encoder, hidden_size=8, num_layers=1).eval()
    unseen = pd.DataFrame({"peptide": ["PES[Phospho]TIDEK", "PESTIDEK"], "charge": [2, 2]})
    table = PDeepPredictor(model, min_intensity=0.0).predict(unseen)
    by_peptide = dict(list(table.groupby("ModifiedPeptide")))
    assert set(by_peptide) == {"PES(UniMod:21)TIDEK", "PESTIDEK"}
    phospho = by_peptide["PES(UniMod:21)TIDEK"]["RelativeIntensity"].to_numpy()
    plain = by_peptide["PESTIDEK"]["RelativeIntensity"].to_numpy()
    assert np.isfinite(phospho).all() and not np.allclose(phospho, plain)  # it sees the HPO3
    vocabulary_only = tiny_model()
    with pytest.raises(Exception, match="Phospho@S"):
        PDeepPredictor(vocabulary_only).predict(unseen)
