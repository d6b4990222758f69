"""One error policy for prediction input (issue 19): a file with one bad row of each kind predicts
every good row and names every bad one with its line and cause; whole-file problems stay one
error naming the file; ``--on-error raise`` stops at the first bad record."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.cli import main
from deepms.registry.record_errors import RecordError
from deepms.tasks.pdeep.predict import PDeepPredictor
from tests.tasks.pdeep.test_predict import PREDICTOR, save_checkpoint, tiny_model

# line 1 is the header; the good rows are lines 2, 6, 9 and 10
BAD_TABLE = """peptide,charge,collision_energy
PEPTIDEK,2,30
LGEYGFQNALIVR,0,30
ACDEK,2,-5

AC[Carbamidomethyl]DEK,2,28
ACDEK,2,abc
PEPTJDEK,2,30
AM[Oxidation]DEK,1,
LGEYGFQNALIVR,3,25
PEPS[Phospho]TIDEK,2,30
"""
EXPECTED = {
    "line 3": "charge 0",
    "line 4": "collision_energy -5",
    "line 5": "empty line",
    "line 7": "collision_energy 'abc'",
    "line 8": "J",
    "line 11": "Phospho",
}


def _rejected(path: Path) -> dict[str, str]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return {row["record"]: row["cause"] for row in rows}


def test_each_bad_row_is_named_and_every_good_row_is_predicted(tmp_path: Path, capsys) -> None:
    source = tmp_path / "precursors.csv"
    source.write_text(BAD_TABLE)
    out = tmp_path / "library.tsv"
    predictor = PDeepPredictor(tiny_model(), min_intensity=0.0)
    counts = predictor.predict_file(source, out, chunk_size=20, progress=False)
    assert counts["rejected"] == len(EXPECTED)
    library = pd.read_csv(out, sep="\t")
    kept = library[["StrippedPeptide", "PrecursorCharge"]].drop_duplicates()
    assert sorted(map(tuple, kept.to_numpy().tolist())) == [
        ("ACDEK", 2),
        ("AMDEK", 1),
        ("LGEYGFQNALIVR", 3),
        ("PEPTIDEK", 2),
    ]
    rejected = _rejected(Path(f"{out}.rejected.tsv"))
    assert set(rejected) == set(EXPECTED)
    for record, words in EXPECTED.items():
        assert words in rejected[record], (record, rejected[record])
    with open(f"{out}.rejected.tsv") as handle:
        assert {row.split("\t")[0] for row in handle.read().splitlines()[1:]} == {str(source)}
    assert f"rejected {len(EXPECTED)} record(s)" in capsys.readouterr().err


def test_chunks_do_not_change_what_is_kept(tmp_path: Path) -> None:
    source = tmp_path / "precursors.csv"
    source.write_text(BAD_TABLE)
    predictor = PDeepPredictor(tiny_model(), min_intensity=0.0)
    whole = tmp_path / "whole.tsv"
    small = tmp_path / "small.tsv"
    predictor.predict_file(source, whole, chunk_size=100, progress=False)
    predictor.predict_file(source, small, chunk_size=3, progress=False)
    a, b = pd.read_csv(whole, sep="\t"), pd.read_csv(small, sep="\t")
    keys = ["ModifiedPeptide", "PrecursorCharge", "FragmentType", "FragmentNumber"]
    assert a[keys].equals(b[keys])  # intensities: float noise of other batch layouts only
    assert np.allclose(a["RelativeIntensity"], b["RelativeIntensity"], atol=1e-5)
    assert _rejected(Path(f"{whole}.rejected.tsv")) == _rejected(Path(f"{small}.rejected.tsv"))


def test_raise_stops_at_the_first_bad_record_naming_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "precursors.csv"
    source.write_text(BAD_TABLE)
    predictor = PDeepPredictor(tiny_model(), min_intensity=0.0)
    with pytest.raises(RecordError, match=r"precursors\.csv: line 3: charge 0"):
        predictor.predict_file(source, tmp_path / "o.tsv", on_error="raise", progress=False)


def test_a_clean_file_leaves_no_report_and_a_stale_one_is_removed(tmp_path: Path) -> None:
    source = tmp_path / "ok.csv"
    source.write_text("peptide,charge\nPEPTIDEK,2\nACDEK,1\n")
    out = tmp_path / "lib.tsv"
    Path(f"{out}.rejected.tsv").write_text("stale\n")
    counts = PDeepPredictor(tiny_model()).predict_file(source, out, progress=False)
    assert "rejected" not in counts
    assert not Path(f"{out}.rejected.tsv").exists()


def test_whole_file_problems_are_one_error_naming_the_file(tmp_path: Path) -> None:
    predictor = PDeepPredictor(tiny_model())
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("peptide,charge\nPEPTIDEK,2\nPEPT\xd1DEK,2\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.csv: not UTF-8 text \(byte 0xd1"):
        predictor.predict_file(latin, tmp_path / "a.tsv", progress=False)
    columns = tmp_path / "columns.csv"
    columns.write_text("sequence,z\nPEPTIDEK,2\n")
    with pytest.raises(
        ValueError, match=r"columns\.csv: missing column\(s\) \['charge', 'peptide'\]"
    ):
        predictor.predict_file(columns, tmp_path / "b.tsv", progress=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: empty file"):
        predictor.predict_file(empty, tmp_path / "c.tsv", progress=False)


def test_a_fasta_record_with_non_standard_characters_is_rejected(tmp_path: Path) -> None:
    fasta = tmp_path / "proteins.fasta"
    fasta.write_text(
        ">sp|P1|GOOD\nMSPEPTIDEKLGEYGFQNALIVR\n>sp|P2|BAD\nMK*&^%123EK\n>sp|P3|STOP\nACDEKR*\n"
    )
    out = tmp_path / "lib.tsv"
    predictor = PDeepPredictor(tiny_model(), min_intensity=0.0)
    counts = predictor.predict_file(
        fasta, out, progress=False, input_options={"min_length": 5, "charges": (2,)}
    )
    assert counts["rejected"] == 1
    rejected = _rejected(Path(f"{out}.rejected.tsv"))
    assert list(rejected) == ["record #2 (sp|P2|BAD)"]
    assert rejected["record #2 (sp|P2|BAD)"] == "non-standard characters '%&*123^' in its sequence"
    peptides = set(pd.read_csv(out, sep="\t")["StrippedPeptide"])
    assert {"MSPEPTIDEK", "LGEYGFQNALIVR", "ACDEK"} <= peptides


def test_cli_on_error_flag(tmp_path: Path, capsys) -> None:
    checkpoint = save_checkpoint(tiny_model(), tmp_path / "pdeep.ckpt")
    source = tmp_path / "precursors.csv"
    source.write_text(BAD_TABLE)
    out = tmp_path / "lib.tsv"
    args = ["predict", str(checkpoint), "--predictor", PREDICTOR, "--input", str(source)]
    assert main([*args, "--output", str(out), "--no-progress"]) == 0
    assert f"{len(EXPECTED)} rejected" in capsys.readouterr().out
    assert main(
        [*args, "--output", str(tmp_path / "x.tsv"), "--no-progress", "--on-error", "raise"]
    )
    assert "precursors.csv: line 3: charge 0" in capsys.readouterr().err
