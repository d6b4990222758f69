"""``deepms predict`` of a pdeep model into OpenSWATH/DIA-NN/PQP libraries, with decoys."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from deepms.cli import main
from deepms.io.dia_library import read_dia_library
from deepms.tasks.pdeep.predict import PDeepPredictor
from tests.tasks.pdeep.test_predict import (
    INPUT,
    PREDICTOR,
    ConstantRT,
    save_checkpoint,
    tiny_model,
)


def predict(tmp_path: Path, output: str, **options) -> tuple[dict, pd.DataFrame]:
    source = tmp_path / "in.csv"
    INPUT.assign(protein=["P1", "P2;P3", "P4"]).to_csv(source, index=False)
    predictor = PDeepPredictor(tiny_model(), **options)
    counts = predictor.predict_file(
        source, tmp_path / output, chunk_size=2, auxiliary=[ConstantRT()], progress=False
    )
    return counts, read_dia_library(tmp_path / output)


@pytest.mark.parametrize(
    "output,fmt", [("os.tsv", "openswath"), ("nn.tsv", "diann"), ("l.pqp", None)]
)
def test_library_formats_with_decoys(tmp_path: Path, output: str, fmt: str | None) -> None:
    counts, library = predict(tmp_path, output, library_format=fmt, decoys="pseudo_reverse")
    plain = PDeepPredictor(tiny_model()).predict(INPUT)
    targets = library[library["Decoy"] == 0].reset_index(drop=True)
    decoys = library[library["Decoy"] == 1].reset_index(drop=True)
    assert counts["precursors"] == 3 and counts["fragments"] == len(plain) == len(targets)
    assert counts["decoy_precursors"] == 3 and counts["decoy_fragments"] == len(decoys)
    assert counts["decoys_skipped"] == 0 and len(decoys) == len(targets)
    for column in ("ModifiedPeptide", "FragmentType", "FragmentNumber", "FragmentCharge"):
        assert targets[column].tolist() == plain[column].tolist()
    pd.testing.assert_series_equal(
        targets["RelativeIntensity"], plain["RelativeIntensity"].astype(float), check_names=False
    )
    rt = targets.groupby("StrippedPeptide")["NormalizedRetentionTime"].first().to_dict()
    assert rt == {"ACDEMK": 68.0, "LGEYGFQNALIVR": 26.0, "PEPTIDEK": 16.0}  # ConstantRT
    assert set(targets["ProteinId"]) == {"P1", "P2;P3", "P4"}
    assert set(decoys["ModifiedPeptide"]) == {
        "VILANQFGYEGLR",
        "EDITPEPK",
        "M(UniMod:35)EDC(UniMod:4)AK",
    }
    assert decoys["PrecursorId"].str.startswith("DECOY_").all()


def test_default_output_is_unchanged_and_options_are_checked(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    INPUT.assign(protein="P").to_csv(source, index=False)
    for name, options in (("a.tsv", {}), ("b.tsv", {"decoys": "none"})):
        PDeepPredictor(tiny_model(), **options).predict_file(
            source, tmp_path / name, auxiliary=[ConstantRT()], progress=False
        )
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    assert "ProteinId" not in (tmp_path / "a.tsv").read_text().splitlines()[0]
    with pytest.raises(ValueError, match="decoys need --library-format"):
        PDeepPredictor(tiny_model(), decoys="pseudo_reverse").predict_file(
            source, tmp_path / "c.tsv", progress=False
        )
    with pytest.raises(ValueError, match="library_format 'skyline'"):
        PDeepPredictor(tiny_model(), library_format="skyline")
    with pytest.raises(ValueError, match="needs retention times"):
        PDeepPredictor(tiny_model()).predict_file(source, tmp_path / "d.pqp", progress=False)
    assert not (tmp_path / "d.pqp").exists()


def test_cli_library_options(tmp_path: Path, capsys) -> None:
    ckpt = save_checkpoint(tiny_model(), tmp_path / "m.ckpt")
    source = tmp_path / "in.csv"
    INPUT.to_csv(source, index=False)
    out = tmp_path / "lib.tsv"
    args = ["predict", str(ckpt), "--predictor", PREDICTOR, "--input", str(source)]
    args += ["--output", str(out), "--no-progress", "--library-format", "diann"]
    assert main([*args, "--decoys", "pseudo_reverse"]) == 2  # no --rt-model: no RT
    assert "needs retention times" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit, match="2"):
        main([*args, "--decoys", "shuffle"])
    assert "invalid choice: 'shuffle'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="0"):
        main(["predict", str(ckpt), "--predictor", PREDICTOR, "--help"])
    help_text = capsys.readouterr().out
    assert "--library-format {openswath,diann}" in help_text and "--decoys" in help_text
