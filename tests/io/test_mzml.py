"""mzML reader: precursor, charge, RT in seconds and activation from a psims-written MS2 fixture."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from deepms.errors import DataFormatError
from deepms.io import read_mzml

MIRROR = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))
LCMS = MIRROR / "deepiso" / "openms_LCMS-centroided.mzML"


def write_mzml(path: Path, ms2_peaks: tuple[list[float], list[float]]) -> Path:
    from psims.mzml.writer import MzMLWriter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with MzMLWriter(open(path, "wb"), close=True) as out:
            out.controlled_vocabularies()
            with out.run(id="run1"), out.spectrum_list(count=2):
                out.write_spectrum(
                    np.array([100.0, 200.0]),
                    np.array([1.0, 2.0]),
                    id="scan=1",
                    params=["MS1 spectrum", {"ms level": 1}, "centroid spectrum"],
                    scan_start_time=1.5,
                )
                out.write_spectrum(
                    np.array(ms2_peaks[0]),
                    np.array(ms2_peaks[1]),
                    id="scan=2",
                    params=["MSn spectrum", {"ms level": 2}, "centroid spectrum"],
                    scan_start_time=1.6,
                    scan_params=[{"filter string": "FTMS + c NSI d Full ms2 500.25@hcd28.00"}],
                    precursor_information={
                        "mz": 500.25,
                        "charge": 2,
                        "intensity": 1e5,
                        "activation": [
                            "beam-type collision-induced dissociation",
                            {"collision energy": 28.0},
                        ],
                        "scan_id": "scan=1",
                    },
                )
    return path


def test_ms2_fields(tmp_path: Path) -> None:
    path = write_mzml(tmp_path / "a.mzML", ([150.0, 120.0, 300.0], [5.0, 3.0, 7.0]))
    (spectrum,) = read_mzml(path)
    assert spectrum.identifier == "scan=2"
    assert spectrum.precursor_mz == 500.25 and spectrum.precursor_charge == 2
    assert spectrum.retention_time == pytest.approx(96.0)  # 1.6 min
    assert spectrum.collision_energy == 28.0
    assert spectrum.fragmentation == "HCD" and spectrum.analyzer == "FTMS"
    np.testing.assert_array_equal(spectrum.mz, [120.0, 150.0, 300.0])
    np.testing.assert_array_equal(spectrum.intensity, [3.0, 5.0, 7.0])


def test_all_levels(tmp_path: Path) -> None:
    path = write_mzml(tmp_path / "a.mzML", ([150.0], [5.0]))
    levels = [s.metadata["ms_level"] for s in read_mzml(path, ms_level=None)]
    assert levels == [1, 2]


def test_empty_ms2_raises(tmp_path: Path) -> None:
    path = write_mzml(tmp_path / "a.mzML", ([], []))
    with pytest.raises(DataFormatError, match="empty spectrum") as info:
        list(read_mzml(path))
    assert info.value.record == "scan=2"
    assert list(read_mzml(path, on_error="skip")) == []


@pytest.mark.skipif(not LCMS.exists(), reason="data mirror not available")
def test_real_lcms_ms1() -> None:
    spectra = list(read_mzml(LCMS, ms_level=1))
    assert len(spectra) == 112
    assert spectra[0].retention_time == pytest.approx(4114.53)  # stored in seconds
    assert spectra[0].precursor_mz is None
    assert list(read_mzml(LCMS)) == []  # the file holds no MS2
