"""PEPREC + MGF pairs: labels joined on TITLE, clear errors for bad rows and missing pairs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from deepms.errors import DataFormatError, InvalidResidueError, UnknownModificationError
from deepms.io import read_peprec, read_peprec_mgf

MIRROR = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))
PEPREC = MIRROR / "pdeep" / "ms2pip_massivekb_selected_500.peprec"
MGF = MIRROR / "pdeep" / "ms2pip_massivekb_selected_500.mgf"


def block(title: str, charge: str = "CHARGE=2\n") -> str:
    return f"BEGIN IONS\nTITLE={title}\nPEPMASS=500.0\n{charge}100.0 1\n200.0 2\nEND IONS\n"


def write_pair(tmp_path: Path, rows: list[str], titles: list[str]) -> tuple[Path, Path]:
    peprec = tmp_path / "a.peprec"
    peprec.write_text("spec_id modifications peptide charge\n" + "\n".join(rows) + "\n")
    mgf = tmp_path / "a.mgf"
    mgf.write_text("".join(block(t) for t in titles))
    return peprec, mgf


def test_read_peprec_keeps_modifications_text(tmp_path: Path) -> None:
    peprec, _ = write_pair(tmp_path, ["s1 - PEPTIDE 2", "s2 2|Oxidation PMEK 3"], [])
    frame = read_peprec(peprec)
    assert list(frame["modifications"]) == ["-", "2|Oxidation"]
    assert list(frame["charge"]) == [2, 3]


def test_read_peprec_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.peprec"
    path.write_text("spec_id peptide charge\ns1 PEPTIDE 2\n")
    with pytest.raises(DataFormatError, match="modifications"):
        read_peprec(path)


def test_join_sets_peptide_and_charge(tmp_path: Path) -> None:
    peprec, mgf = write_pair(tmp_path, ["s1 2|Oxidation PMEK 2", "s2 - PEPTIDE 2"], ["s2", "s1"])
    spectra = list(read_peprec_mgf(peprec, mgf))
    assert [s.identifier for s in spectra] == ["s2", "s1"]
    assert spectra[1].peptide is not None
    assert spectra[1].peptide.to_proforma() == "PM[Oxidation]EK"
    assert spectra[0].precursor_charge == 2


def test_unknown_modification(tmp_path: Path) -> None:
    peprec, mgf = write_pair(tmp_path, ["s1 2|NotAMod PMEK 2"], ["s1"])
    with pytest.raises(DataFormatError) as info:
        list(read_peprec_mgf(peprec, mgf))
    err = info.value
    assert err.path == str(peprec) and err.record == "s1"
    assert isinstance(err.cause, UnknownModificationError)
    assert "NotAMod" in str(err)


def test_non_standard_residue(tmp_path: Path) -> None:
    peprec, mgf = write_pair(tmp_path, ["s1 - PEPXIDE 2"], ["s1"])
    with pytest.raises(DataFormatError) as info:
        list(read_peprec_mgf(peprec, mgf))
    assert isinstance(info.value.cause, InvalidResidueError)
    assert "X" in str(info.value)


def test_spectrum_without_row(tmp_path: Path) -> None:
    peprec, mgf = write_pair(tmp_path, ["s1 - PEPTIDE 2"], ["s1", "orphan"])
    with pytest.raises(DataFormatError, match="no PEPREC row") as info:
        list(read_peprec_mgf(peprec, mgf))
    assert info.value.path == str(mgf) and info.value.record == "orphan"


def test_row_without_spectrum(tmp_path: Path) -> None:
    peprec, mgf = write_pair(tmp_path, ["s1 - PEPTIDE 2", "lonely - PEPTIDE 2"], ["s1"])
    with pytest.raises(DataFormatError, match="no spectrum"):
        list(read_peprec_mgf(peprec, mgf))


def test_charge_mismatch(tmp_path: Path) -> None:
    peprec, mgf = write_pair(tmp_path, ["s1 - PEPTIDE 3"], ["s1"])
    with pytest.raises(DataFormatError, match="CHARGE 2 != PEPREC charge 3"):
        list(read_peprec_mgf(peprec, mgf))


def test_skip_bad_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = ["s1 - PEPTIDE 2", "s2 2|NotAMod PMEK 2", "s3 - PEPXIDE 2"]
    peprec, mgf = write_pair(tmp_path, rows, ["s1", "s2", "s3"])
    with caplog.at_level(logging.WARNING, logger="deepms.io"):
        spectra = list(read_peprec_mgf(peprec, mgf, on_error="skip"))
    assert [s.identifier for s in spectra] == ["s1"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "s2" in messages and "NotAMod" in messages and "s3" in messages


@pytest.mark.skipif(not PEPREC.exists(), reason="data mirror not available")
def test_real_massivekb_pair() -> None:
    frame = read_peprec(PEPREC)
    assert len(frame) == 500
    spectra = list(read_peprec_mgf(PEPREC, MGF))
    assert len(spectra) == 500
    first = spectra[0]  # MGF order: massive_hcd_167 = "0|Acetyl FMKVDGAKELPDVLERVK 4"
    assert first.identifier == "massive_hcd_167"
    assert first.peptide is not None
    assert first.peptide.sequence == "FMKVDGAKELPDVLERVK"
    assert first.peptide.mods[0] is not None and first.peptide.mods[0].name == "Acetyl"
    assert first.precursor_charge == 4
    # labels and peaks belong together: every PEPMASS matches the PEPREC peptide's m/z
    for s in spectra:
        assert s.precursor_mz == pytest.approx(s.peptide.precursor_mz(s.precursor_charge), abs=0.02)
