"""MS1 map reader: each bad input names file and spectrum; windows; real maps' spectrum counts."""

from __future__ import annotations

import base64
import gzip
import time
from pathlib import Path

import numpy as np
import pytest

from deepms.errors import DataFormatError
from deepms.io.ms1map import Ms1Map, iter_ms1_spectra, read_ms1_map, write_ms1_mzml

_ARRAY = (
    '<binaryDataArray encodedLength="{n}">'
    '<cvParam cvRef="MS" accession="MS:1000523" name="64-bit float"/>'
    '<cvParam cvRef="MS" accession="MS:1000576" name="no compression"/>'
    '<cvParam cvRef="MS" accession="{acc}" name="{name}"/>'
    "<binary>{data}</binary></binaryDataArray>"
)


def _spectrum(index: int, rt: float | None, mz: list[float], level: int = 1) -> str:
    arrays = ""
    for acc, name, values in (
        ("MS:1000514", "m/z array", mz),
        ("MS:1000515", "intensity array", [100.0 * (i + 1) for i in range(len(mz))]),
    ):
        data = base64.b64encode(np.asarray(values, "<f8").tobytes()).decode()
        arrays += _ARRAY.format(n=len(data), acc=acc, name=name, data=data)
    time_param = (
        ""
        if rt is None
        else '<cvParam cvRef="MS" accession="MS:1000016" name="scan start time" '
        f'value="{rt}" unitCvRef="UO" unitAccession="UO:0000010" unitName="second"/>'
    )
    return (
        f'<spectrum index="{index}" id="scan={index + 1}" defaultArrayLength="{len(mz)}">'
        f'<cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="{level}"/>'
        '<cvParam cvRef="MS" accession="MS:1000127" name="centroid spectrum"/>'
        f'<scanList count="1"><scan>{time_param}</scan></scanList>'
        f'<binaryDataArrayList count="2">{arrays}</binaryDataArrayList></spectrum>'
    )


def _mzml(path: Path, spectra: list[tuple[float | None, list[float], int]]) -> Path:
    """A minimal non-indexed mzML; each spectrum is (RT seconds or None, m/z list, MS level)."""
    body = "".join(_spectrum(i, rt, mz, level) for i, (rt, mz, level) in enumerate(spectra))
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<mzML xmlns="http://psi.hupo.org/ms/mzml" version="1.1.0">'
        '<cvList count="2"><cv id="MS" fullName="PSI-MS" URI="https://psi.hupo.org/ms.obo"/>'
        '<cv id="UO" fullName="Unit Ontology" URI="https://uo.obo"/></cvList>'
        f'<run id="r"><spectrumList count="{len(spectra)}">{body}</spectrumList></run></mzML>\n'
    )
    return path


GOOD = [(1.0, [400.0, 500.0, 600.0], 1), (2.0, [410.0, 510.0], 1), (3.0, [420.0], 1)]


def test_reads_tiny_map_and_windows(tmp_path: Path) -> None:
    ms1 = read_ms1_map(_mzml(tmp_path / "a.mzML", [*GOOD, (3.5, [450.0], 2)]))
    assert len(ms1) == 3 and ms1.n_peaks == 6 and ms1.centroided is True
    np.testing.assert_array_equal(ms1.rt, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ms1.offsets, [0, 3, 5, 6])
    window = ms1.window(1.5, 3.0, 405.0, 515.0)
    assert window.spectrum_ids == ["scan=2", "scan=3"]
    np.testing.assert_array_equal(window.mz, [410.0, 510.0, 420.0])
    grid = window.grid(400.0, 520.0, 10.0)
    assert grid.shape == (2, 12) and grid[0, 1] == 100.0 and grid[1, 2] == 100.0
    streamed = list(iter_ms1_spectra(tmp_path / "a.mzML"))
    assert [s.identifier for s in streamed] == ["scan=1", "scan=2", "scan=3"]


def test_gzipped_and_written_maps_read_back(tmp_path: Path) -> None:
    plain = _mzml(tmp_path / "a.mzML", GOOD)
    packed = tmp_path / "a.mzML.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    ms1 = read_ms1_map(packed)
    assert len(ms1) == 3 and ms1.n_peaks == 6
    again = read_ms1_map(write_ms1_mzml(ms1, tmp_path / "b.mzML"))
    np.testing.assert_allclose(again.rt, ms1.rt)
    np.testing.assert_allclose(again.mz, ms1.mz)
    np.testing.assert_allclose(again.intensity, ms1.intensity)


def test_no_ms1_spectra_is_an_error(tmp_path: Path) -> None:
    path = _mzml(tmp_path / "ms2.mzML", [(1.0, [400.0], 2), (2.0, [500.0], 2)])
    with pytest.raises(DataFormatError, match="no MS1 spectra") as info:
        read_ms1_map(path)
    assert info.value.path == str(path) and info.value.record == "file"


def test_spectrum_without_rt_names_file_and_spectrum(tmp_path: Path) -> None:
    path = _mzml(tmp_path / "nort.mzML", [GOOD[0], (None, [410.0], 1), GOOD[2]])
    with pytest.raises(DataFormatError, match="scan start time") as info:
        read_ms1_map(path)
    assert info.value.path == str(path) and info.value.record == "scan=2"
    assert len(read_ms1_map(path, on_error="skip")) == 2


def test_unsorted_spectrum_raises_or_is_sorted_and_counted(tmp_path: Path) -> None:
    path = _mzml(tmp_path / "unsorted.mzML", [GOOD[0], (2.0, [510.0, 410.0], 1), GOOD[2]])
    with pytest.raises(DataFormatError, match="not ascending") as info:
        read_ms1_map(path, unsorted="raise")
    assert info.value.path == str(path) and info.value.record == "scan=2"
    ms1 = read_ms1_map(path)  # default: sort and count
    assert ms1.n_sorted == 1
    mz, intensity = ms1.spectrum(1)
    np.testing.assert_array_equal(mz, [410.0, 510.0])
    np.testing.assert_array_equal(intensity, [200.0, 100.0])  # intensities follow their peaks


def test_empty_spectrum_raises_skips_or_keeps(tmp_path: Path) -> None:
    path = _mzml(tmp_path / "empty.mzML", [GOOD[0], (2.0, [], 1), GOOD[2]])
    with pytest.raises(DataFormatError, match="empty spectrum") as info:
        read_ms1_map(path)
    assert info.value.path == str(path) and info.value.record == "scan=2"
    assert len(read_ms1_map(path, empty="skip")) == 2
    kept = read_ms1_map(path, empty="keep")
    assert len(kept) == 3 and len(kept.spectrum(1)[0]) == 0


def test_rt_going_backwards_is_an_error(tmp_path: Path) -> None:
    path = _mzml(tmp_path / "back.mzML", [GOOD[1], GOOD[0]])
    with pytest.raises(DataFormatError, match="RT order") as info:
        read_ms1_map(path)
    assert info.value.record == "scan=2"


def test_not_an_mzml_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.mzML"
    path.write_text("this is not xml")
    with pytest.raises(DataFormatError, match=r"junk\.mzML"):
        read_ms1_map(path)


def test_map_rejects_inconsistent_offsets() -> None:
    with pytest.raises(ValueError, match="offsets"):
        Ms1Map(rt=np.array([1.0]), offsets=np.array([0, 3]), mz=np.ones(2), intensity=np.ones(2))


@pytest.mark.parametrize(
    ("name", "count", "centroided"),
    [
        ("openms_LCMS-centroided.mzML", 112, None),
        ("openms_FeatureFinderMultiplex_5_input_profile.mzML", 56, False),
        ("openms_MapAlignmentAlgorithmPoseClustering_in1.mzML.gz", 2035, True),
        ("openms_MapAlignmentAlgorithmPoseClustering_in2.mzML.gz", 2085, True),
    ],
)
def test_real_maps_have_their_spectrum_counts(
    mirror: Path, name: str, count: int, centroided: bool | None
) -> None:
    start = time.perf_counter()
    ms1 = read_ms1_map(mirror / "deepiso" / name)
    elapsed = time.perf_counter() - start
    assert len(ms1) == count and ms1.centroided is centroided
    assert np.all(np.diff(ms1.rt) >= 0) and ms1.n_peaks > count
    for i in range(0, len(ms1), max(1, len(ms1) // 20)):
        assert np.all(np.diff(ms1.spectrum(i)[0]) >= 0)
    assert elapsed < 30, f"{name}: {count / elapsed:.0f} spectra/s is too slow"


def test_registered_as_a_format(tmp_path: Path) -> None:
    from deepms.io.formats import get_format

    fmt = get_format("mzml_ms1")
    spectra = list(fmt.open([_mzml(tmp_path / "a.mzML", GOOD)]))
    assert [s.retention_time for s in spectra] == [1.0, 2.0, 3.0]
