"""MGF reader/writer: known values from the real MassIVE-KB file, clear errors for bad records."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from deepms.errors import DataFormatError, InvalidResidueError
from deepms.io import Spectrum, read_mgf, write_mgf

MIRROR = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))
MASSIVEKB_MGF = MIRROR / "pdeep" / "ms2pip_massivekb_selected_500.mgf"
CASANOVO_MGF = MIRROR / "deepnovo" / "casanovo_sample_preprocessed_spectra.mgf"

GOOD = (
    "BEGIN IONS\nTITLE=good\nPEPMASS=500.25 1000\nCHARGE=2+\nRTINSECONDS=12.5\n"
    "200.1 10\n100.5 20\nEND IONS\n"
)
NO_CHARGE = "BEGIN IONS\nTITLE=nocharge\nPEPMASS=400.2\n150.0 5\nEND IONS\n"
EMPTY = "BEGIN IONS\nTITLE=empty\nPEPMASS=400.2\nCHARGE=3+\nEND IONS\n"
BAD_NUMBER = "BEGIN IONS\nTITLE=badnum\nPEPMASS=400.2\nCHARGE=2+\n150.0 abc\nEND IONS\n"


def write(tmp_path: Path, *blocks: str) -> Path:
    path = tmp_path / "test.mgf"
    path.write_text("".join(blocks))
    return path


def test_good_record_fields(tmp_path: Path) -> None:
    (spectrum,) = read_mgf(write(tmp_path, GOOD))
    assert spectrum.identifier == "good"
    assert spectrum.precursor_mz == 500.25
    assert spectrum.precursor_charge == 2
    assert spectrum.retention_time == 12.5
    # peaks come back sorted by m/z, intensities follow their peak
    np.testing.assert_array_equal(spectrum.mz, [100.5, 200.1])
    np.testing.assert_array_equal(spectrum.intensity, [20.0, 10.0])
    assert spectrum.mz.dtype == np.float64 and spectrum.intensity.dtype == np.float32


def test_missing_charge_raises_with_title_and_cause(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, NO_CHARGE)
    with pytest.raises(DataFormatError) as info:
        list(read_mgf(path))
    err = info.value
    assert err.path == str(path) and err.record == "nocharge"
    assert "CHARGE" in str(err) and str(path) in str(err)


def test_missing_charge_allowed_when_not_required(tmp_path: Path) -> None:
    spectra = list(read_mgf(write(tmp_path, NO_CHARGE), require_charge=False))
    assert spectra[0].precursor_charge is None


def test_empty_spectrum_raises(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="empty spectrum: no peaks") as info:
        list(read_mgf(write(tmp_path, EMPTY)))
    assert info.value.record == "empty"


def test_unparsable_number_raises(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="abc") as info:
        list(read_mgf(write(tmp_path, BAD_NUMBER)))
    assert info.value.record == "badnum"


def test_unterminated_record_raises(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="END IONS"):
        list(read_mgf(write(tmp_path, GOOD, "BEGIN IONS\nTITLE=cut\n100 1\n")))


def test_skip_keeps_good_records_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, NO_CHARGE, GOOD, EMPTY, BAD_NUMBER, GOOD.replace("good", "good2"))
    with caplog.at_level(logging.WARNING, logger="deepms.io"):
        spectra = list(read_mgf(path, on_error="skip"))
    assert [s.identifier for s in spectra] == ["good", "good2"]
    skipped = [r.getMessage() for r in caplog.records if "skipped bad record" in r.getMessage()]
    assert len(skipped) == 3
    assert all(str(path) in m for m in skipped)
    assert any("nocharge" in m and "CHARGE" in m for m in skipped)
    assert any("skipped 3 of 5 records" in r.getMessage() for r in caplog.records)


def test_invalid_on_error_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        list(read_mgf(write(tmp_path, GOOD), on_error="ignore"))  # type: ignore[arg-type]


def test_file_level_defaults_apply(tmp_path: Path) -> None:
    (spectrum,) = read_mgf(write(tmp_path, "CHARGE=3+\n", NO_CHARGE))
    assert spectrum.precursor_charge == 3


def test_seq_parsed_and_bad_residue_reported(tmp_path: Path) -> None:
    seq = GOOD.replace("RTINSECONDS", "SEQ=PEPM[Oxidation]K\nRTINSECONDS")
    (spectrum,) = read_mgf(write(tmp_path, seq))
    assert spectrum.peptide is not None and spectrum.peptide.to_proforma() == "PEPM[Oxidation]K"
    bad = GOOD.replace("RTINSECONDS", "SEQ=PEPXK\nRTINSECONDS")
    with pytest.raises(DataFormatError) as info:
        list(read_mgf(write(tmp_path, bad)))
    assert isinstance(info.value.cause, InvalidResidueError)


def test_write_read_round_trip(tmp_path: Path) -> None:
    from deepms.chem import parse_proforma

    original = Spectrum(
        identifier="scan 7",
        mz=np.array([101.07133483886719, 250.5, 999.123456789]),
        intensity=np.array([1.5, 0.1, 3e6], dtype=np.float32),
        precursor_mz=529.7935187324,
        precursor_charge=3,
        retention_time=1234.5,
        peptide=parse_proforma("[Acetyl]-PEPC[Carbamidomethyl]K"),
        collision_energy=28.0,
    )
    path = tmp_path / "out.mgf"
    assert write_mgf([original], path) == 1
    (back,) = read_mgf(path)
    assert back.identifier == original.identifier
    assert back.precursor_mz == original.precursor_mz
    assert back.precursor_charge == 3 and back.retention_time == 1234.5
    assert back.collision_energy == 28.0 and back.peptide == original.peptide
    np.testing.assert_array_equal(back.mz, original.mz)
    np.testing.assert_array_equal(back.intensity, original.intensity)


@pytest.mark.skipif(not MASSIVEKB_MGF.exists(), reason="data mirror not available")
def test_real_massivekb_mgf() -> None:
    spectra = list(read_mgf(MASSIVEKB_MGF))
    assert len(spectra) == 500
    first = spectra[0]
    assert first.identifier == "massive_hcd_167"
    assert first.precursor_charge == 4
    assert first.precursor_mz == pytest.approx(529.7935187324, abs=1e-9)
    assert first.n_peaks == 87
    assert first.mz[0] == pytest.approx(101.07133483886719)
    assert first.intensity[0] == pytest.approx(886.3815901589251, rel=1e-6)
    assert len({s.identifier for s in spectra}) == 500


@pytest.mark.skipif(not CASANOVO_MGF.exists(), reason="data mirror not available")
def test_real_casanovo_mgf_has_peptides() -> None:
    spectra = list(read_mgf(CASANOVO_MGF))
    assert len(spectra) == 128
    first = spectra[0]
    assert first.peptide is not None and first.peptide.sequence == "IAHYNKR"
    assert first.precursor_charge == 2 and first.retention_time == pytest.approx(824.574)
    assert first.metadata["scans"] == "F1:2478"
    assert all(s.peptide is not None for s in spectra)
