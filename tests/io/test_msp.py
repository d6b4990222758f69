"""NIST MSP read/write: annotated peaks and modifications survive a round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepms.chem import parse_proforma
from deepms.errors import DataFormatError, UnknownModificationError
from deepms.io import Spectrum, read_msp, write_msp

NIST_STYLE = """Name: AAMCK/2
MW: 580.23
Comment: Spec=Consensus Parent=291.1196 Mods=2(2,M,Oxidation)(3,C,Carbamidomethyl) \
Protein="sp|P1|X a b" Nreps=3/4
Num peaks: 3
72.04\t1000.0\t"b1/0.00"
143.08\t250.5\t"b2/0.01 2/3 0.5"
147.11\t800\t"y1/0.00"

"""


def test_read_nist_style(tmp_path: Path) -> None:
    path = tmp_path / "a.msp"
    path.write_text(NIST_STYLE)
    (spectrum,) = read_msp(path)
    assert spectrum.peptide == parse_proforma("AAM[Oxidation]C[Carbamidomethyl]K")
    assert spectrum.precursor_charge == 2 and spectrum.precursor_mz == 291.1196
    np.testing.assert_array_equal(spectrum.mz, [72.04, 143.08, 147.11])
    assert spectrum.metadata["annotations"] == ["b1/0.00", "b2/0.01 2/3 0.5", "y1/0.00"]
    assert spectrum.metadata["comment"]["Protein"] == "sp|P1|X a b"
    assert spectrum.metadata["comment"]["Nreps"] == "3/4"
    path.write_text(NIST_STYLE.replace("Num peaks", "Num Peaks") * 2)  # both spellings occur
    assert len(list(read_msp(path))) == 2


def test_round_trip(tmp_path: Path) -> None:
    spectra = [
        Spectrum(
            identifier="run1 scan 5",
            mz=np.array([300.5, 101.25, 500.125]),  # unsorted: annotations must follow
            intensity=np.array([3.0, 1.0, 5.0], dtype=np.float32),
            precursor_mz=412.2,
            precursor_charge=2,
            retention_time=1800.25,
            peptide=parse_proforma("[Acetyl]-PEM[Oxidation]K"),
            collision_energy=28.0,
            fragmentation="HCD",
            analyzer="FTMS",
            metadata={"annotations": ["y2", "b1", "y3"], "comment": {"Source": "unit test"}},
        ),
        Spectrum(
            identifier="two",
            mz=np.array([110.0]),
            intensity=np.array([7.0], dtype=np.float32),
            precursor_charge=3,
            peptide=parse_proforma("PEPTIDE"),
        ),
    ]
    assert spectra[0].metadata["annotations"] == ["b1", "y2", "y3"]
    path = tmp_path / "out.msp"
    assert write_msp(spectra, path) == 2
    back = list(read_msp(path))
    assert len(back) == 2
    for a, b in zip(spectra, back, strict=True):
        assert b.identifier == a.identifier and b.peptide == a.peptide
        for field in ("precursor_mz", "precursor_charge", "retention_time", "collision_energy"):
            assert getattr(b, field) == getattr(a, field)
        assert (b.fragmentation, b.analyzer) == (a.fragmentation, a.analyzer)
        np.testing.assert_array_equal(b.mz, a.mz)
        np.testing.assert_array_equal(b.intensity, a.intensity)
        assert b.metadata["annotations"] == a.metadata.get("annotations", [""] * a.n_peaks)
    assert back[0].metadata["comment"] == {"Source": "unit test"}


def test_c_terminal_mod_round_trip(tmp_path: Path) -> None:
    peptide = parse_proforma("PEPTIDE-[Amidated]")
    spectrum = Spectrum(
        "c", np.array([100.0]), np.array([1.0]), precursor_charge=1, peptide=peptide
    )
    write_msp([spectrum], tmp_path / "c.msp")
    (back,) = read_msp(tmp_path / "c.msp")
    assert back.peptide == peptide


def test_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.msp"
    path.write_text(NIST_STYLE.replace("Num peaks: 3", "Num peaks: 4"))
    with pytest.raises(DataFormatError, match="Num peaks: 4 but 3 peak lines") as info:
        list(read_msp(path))
    assert info.value.record == "AAMCK/2"
    path.write_text(NIST_STYLE.replace("Oxidation", "Oxidised"))
    with pytest.raises(DataFormatError) as info:
        list(read_msp(path))
    assert isinstance(info.value.cause, UnknownModificationError)
    path.write_text("Name: PEPTIDE/2\nNum peaks: 0\n\n" + NIST_STYLE)
    with pytest.raises(DataFormatError, match="empty spectrum"):
        list(read_msp(path))
    assert len(list(read_msp(path, on_error="skip"))) == 1
    path.write_text(NIST_STYLE.replace("72.04\t1000.0", "72.04\tlots"))
    with pytest.raises(DataFormatError, match="lots"):
        list(read_msp(path))


def test_write_needs_peptide(tmp_path: Path) -> None:
    spectrum = Spectrum("x", np.array([1.0]), np.array([1.0]), precursor_charge=2)
    with pytest.raises(ValueError, match="peptide"):
        write_msp([spectrum], tmp_path / "x.msp")
