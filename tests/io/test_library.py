"""Spectral libraries: FASTA digestion, DIA-NN peptide notation, TSV/parquet/MSP round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.chem import parse_proforma
from deepms.io import read_msp
from deepms.io.library import (
    LIBRARY_COLUMNS,
    library_peptide,
    parse_library_peptide,
    write_library,
    write_tables,
)
from deepms.io.precursors import DigestSettings, digest_fasta, read_precursors

PROTEIN = "MKWVTFISLLLLFSSAYSRGVFRRDTHKPEPTIDECK"
TRYPTIC = [  # trypsin, 1 missed cleavage, length 4-30, no cut before P (K|P), CAM on C
    "MKWVTFISLLLLFSSAYSR",
    "WVTFISLLLLFSSAYSR",
    "WVTFISLLLLFSSAYSRGVFR",
    "GVFR",
    "GVFRR",
    "RDTHKPEPTIDEC[Carbamidomethyl]K",
    "DTHKPEPTIDEC[Carbamidomethyl]K",
]
TABLE = pd.DataFrame(
    {
        "ModifiedPeptide": ["PEPTIDEK"] * 3 + ["AC(UniMod:4)DM(UniMod:35)K"] * 2,
        "StrippedPeptide": ["PEPTIDEK"] * 3 + ["ACDMK"] * 2,
        "PrecursorCharge": np.array([2, 2, 2, 3, 3], dtype=np.int64),
        "PrecursorMz": [464.734739987125] * 3 + [214.08582086808335] * 2,
        "FragmentMz": [831.40943965863, 98.06004031562, 416.20835805, 409.17515, 116.54116],
        "RelativeIntensity": np.array([1.0, 0.25, 0.5, 1.0, 0.125], dtype=np.float32),
        "FragmentType": ["y", "b", "y", "y", "b"],
        "FragmentNumber": np.array([7, 1, 7, 3, 2], dtype=np.int64),
        "FragmentCharge": np.array([1, 1, 2, 1, 2], dtype=np.int64),
        "FragmentLossType": ["noloss"] * 5,
    }
)


def write_fasta(path: Path, *proteins: str) -> Path:
    lines = []
    for i, protein in enumerate(proteins):
        lines += [f">sp|P{i}|TEST_{i} test protein", protein[:20], protein[20:]]  # wrapped
    path.write_text("\n".join(lines) + "\n")
    return path


def test_digest_known_peptides_with_fixed_and_variable_mods(tmp_path: Path) -> None:
    settings = DigestSettings(min_length=4, charges=(2, 3))
    fasta = write_fasta(tmp_path / "p.fasta", PROTEIN, PROTEIN, "PEPTIDEXK")  # repeat, bad X
    (chunk,) = digest_fasta(fasta, settings, chunk_size=1000)
    assert chunk["peptide"].tolist() == [p for p in TRYPTIC for _ in (2, 3)]
    assert chunk["charge"].tolist() == [2, 3] * len(TRYPTIC)
    oxidised = DigestSettings(min_length=4, variable_mods=("Oxidation@M",), charges=(2,))
    first = next(digest_fasta(fasta, oxidised, 1000))["peptide"].tolist()[:3]
    assert first == ["MKWVTFISLLLLFSSAYSR", "M[Oxidation]KWVTFISLLLLFSSAYSR", "WVTFISLLLLFSSAYSR"]
    two = DigestSettings(
        fixed_mods=(), variable_mods=("Oxidation@M", "Acetyl@N-term"), max_variable_mods=2
    )
    assert list(two.peptidoforms("MKWVMR")) == [
        "MKWVMR",
        "M[Oxidation]KWVMR",
        "MKWVM[Oxidation]R",
        "[Acetyl]-MKWVMR",
        "M[Oxidation]KWVM[Oxidation]R",
        "[Acetyl]-M[Oxidation]KWVMR",
        "[Acetyl]-MKWVM[Oxidation]R",
    ]
    with pytest.raises(ValueError, match="Name@sites"):
        DigestSettings(fixed_mods=("Carbamidomethyl",))
    with pytest.raises(ValueError, match="not a known enzyme"):
        DigestSettings(enzyme="([KR")


def test_precursors_stream_in_chunks(tmp_path: Path) -> None:
    fasta = write_fasta(tmp_path / "p.fasta", PROTEIN)
    chunks = list(read_precursors(fasta, 4, DigestSettings(min_length=4), collision_energy=27.0))
    assert [len(c) for c in chunks] == [4, 4, 4, 2]
    assert pd.concat(chunks)["peptide"].tolist()[::2] == TRYPTIC
    assert all((c["collision_energy"] == 27.0).all() for c in chunks)
    table = tmp_path / "in.csv"
    table.write_text("peptide,charge,collision_energy\nPEPTIDEK,2,\nGVFR,3,30\n")
    (chunk,) = read_precursors(table, 10, collision_energy=25.0)
    assert chunk["collision_energy"].tolist() == [25.0, 30.0]
    with pytest.raises(ValueError, match="FASTA input only"):
        next(read_precursors(table, 10, DigestSettings()))
    (tmp_path / "bad.csv").write_text("sequence,charge\nPEPTIDEK,2\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['peptide'\]"):
        next(read_precursors(tmp_path / "bad.csv", 10))


def test_diann_peptide_notation_round_trip() -> None:
    peptide = parse_proforma("[Acetyl]-AC[Carbamidomethyl]DEK-[Amidated]")
    assert library_peptide(peptide) == "(UniMod:1)AC(UniMod:4)DEK-(UniMod:2)"
    assert parse_library_peptide("(UniMod:1)AC(UniMod:4)DEK-(UniMod:2)") == peptide
    assert parse_library_peptide("_PEPC[UniMod:4]K_") == parse_proforma("PEPC[Carbamidomethyl]K")


def halves() -> list[pd.DataFrame]:
    return [TABLE.iloc[:3].reset_index(drop=True), TABLE.iloc[3:].reset_index(drop=True)]


def test_tsv_and_parquet_round_trip(tmp_path: Path) -> None:
    for name in ("lib.tsv", "lib.parquet"):
        counts = write_library(iter(halves()), tmp_path / name)
        assert counts == {"precursors": 2, "fragments": 5}
        if name.endswith(".tsv"):
            text = (tmp_path / name).read_text()
            assert text.splitlines()[0] == "\t".join(LIBRARY_COLUMNS) and '"' not in text
            back = pd.read_csv(tmp_path / name, sep="\t")
        else:
            back = pd.read_parquet(tmp_path / name)
        assert list(back.columns) == LIBRARY_COLUMNS
        np.testing.assert_array_equal(
            back["RelativeIntensity"].astype(np.float32), [1, 0.25, 0.5, 1, 0.125]
        )
        np.testing.assert_allclose(back["FragmentMz"], TABLE["FragmentMz"], rtol=0, atol=1e-9)
        for column in ("ModifiedPeptide", "FragmentType", "FragmentNumber", "FragmentCharge"):
            assert back[column].tolist() == TABLE[column].tolist()
        assert not (tmp_path / f"{name}.part").exists()


def test_msp_round_trip_with_the_project_reader(tmp_path: Path) -> None:
    assert write_library(iter(halves()), tmp_path / "lib.msp")["precursors"] == 2
    first, second = read_msp(tmp_path / "lib.msp")
    assert first.peptide == parse_proforma("PEPTIDEK") and first.precursor_charge == 2
    assert first.precursor_mz == 464.734739987125
    np.testing.assert_array_equal(first.mz, [98.06004031562, 416.20835805, 831.40943965863])
    np.testing.assert_array_equal(first.intensity, np.float32([0.25, 0.5, 1.0]))
    assert first.metadata["annotations"] == ["b1", "y7^2", "y7"]
    assert second.peptide == parse_proforma("AC[Carbamidomethyl]DM[Oxidation]K")
    assert second.metadata["annotations"] == ["b2^2", "y3"]
    assert second.identifier == "AC[Carbamidomethyl]DM[Oxidation]K/3"


def test_failed_stream_leaves_no_file_and_empty_library_is_valid(tmp_path: Path) -> None:
    def broken():
        yield TABLE
        raise RuntimeError("model crashed")

    for name in ("lib.tsv", "lib.parquet", "lib.msp"):
        with pytest.raises(RuntimeError, match="model crashed"):
            write_library(broken(), tmp_path / name)
        assert not list(tmp_path.glob(f"{name}*"))
    assert write_library([], tmp_path / "empty.tsv") == {"precursors": 0, "fragments": 0}
    assert list(pd.read_csv(tmp_path / "empty.tsv", sep="\t").columns) == LIBRARY_COLUMNS
    with pytest.raises(ValueError, match="unsupported file type"):
        write_library([TABLE], tmp_path / "lib.csv")


def test_generic_tables_stream_to_csv(tmp_path: Path) -> None:
    parts = [pd.DataFrame({"name": ["a,b", 'say "hi"'], "x": [1.5, 2.0]})] * 2
    assert write_tables(iter(parts), tmp_path / "t.csv") == 4
    expected = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), expected)
    assert write_tables([], tmp_path / "e.csv", ["name", "x"]) == 0
    assert (tmp_path / "e.csv").read_text() == "name,x\n"
