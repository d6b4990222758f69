"""imzML reader, m/z axis, writer and MSI formats: real files from the mirror and broken copies."""

from __future__ import annotations

import logging
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.errors import DataFormatError
from deepms.io.formats import get_format
from deepms.io.imzml import (
    ImzmlError,
    PixelChunk,
    inspect_imzml,
    iter_pixel_chunks,
    read_image,
    verify_checksum,
)
from deepms.io.imzml_write import generate_imzml, synthetic_chunks, write_imzml
from deepms.io.msi_axis import MzAxis, normalize_rows, pick_peaks
from deepms.io.msi_formats import SpectraSet, read_spectra_npz

EXAMPLE = "pyimzml_Example_{}.imzML"


def _parser(path: Path):
    from pyimzml.ImzMLParser import ImzMLParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ImzMLParser(str(path), parse_lib="ElementTree")


@pytest.fixture
def msi(mirror: Path) -> Path:
    return mirror / "msi"


def _copy(msi: Path, tmp_path: Path, mode: str = "Continuous", ibd: bool = True) -> Path:
    src = msi / EXAMPLE.format(mode)
    dst = tmp_path / src.name
    shutil.copyfile(src, dst)
    if ibd:
        shutil.copyfile(src.with_suffix(".ibd"), dst.with_suffix(".ibd"))
    return dst


def _all(path: Path, **options) -> PixelChunk:
    chunks = list(iter_pixel_chunks(path, **options))
    fields = ["x", "y", "index", "intensities"]
    return PixelChunk(*(np.concatenate([getattr(c, k) for c in chunks]) for k in fields))


# --- the m/z axis --------------------------------------------------------------------------


def test_da_and_ppm_axes_sum_within_bins() -> None:
    axis = MzAxis.da(100.0, 103.0, 1.0)
    assert axis.n_bins == 3
    np.testing.assert_allclose(axis.centres, [100.5, 101.5, 102.5])
    out = axis.bin(
        np.array([99.0, 100.2, 100.7, 102.9, 104.0]), np.array([5.0, 1.0, 2.0, 3.0, 7.0])
    )
    np.testing.assert_allclose(out, [3.0, 0.0, 3.0])  # values outside the axis are dropped
    ppm = MzAxis.ppm(500.0, 1000.0, 100.0)
    widths = np.diff(ppm.edges) / ppm.edges[:-1]
    np.testing.assert_allclose(widths, 1e-4)
    assert ppm.edges[-1] >= 1000.0
    assert MzAxis.from_spec({"type": "file"}) is None
    assert MzAxis.from_spec({"type": "da", "lo": 1, "hi": 2, "width": 0.5}).n_bins == 2
    with pytest.raises(ValueError, match="unknown m/z axis type"):
        MzAxis.from_spec({"type": "bogus"})


def test_file_axis_is_a_permutation_even_when_unsorted() -> None:
    mz = np.array([300.0, 100.0, 200.0])
    axis = MzAxis.from_continuous(mz)
    np.testing.assert_array_equal(axis.centres, [100.0, 200.0, 300.0])
    np.testing.assert_array_equal(axis.bin(mz, np.array([3.0, 1.0, 2.0])), [1.0, 2.0, 3.0])
    # another array falls into the half-way bins
    np.testing.assert_array_equal(axis.bin(np.array([149.0, 151.0]), np.ones(2)), [1.0, 1.0, 0.0])
    # a repeated m/z (two SCiLS features at one centre) keeps both columns
    dup = np.array([300.0, 200.0, 200.0, 100.0])
    axis = MzAxis.from_continuous(dup)
    assert axis.n_bins == 4
    np.testing.assert_array_equal(axis.bin(dup, np.array([4.0, 3.0, 2.0, 1.0])), [1, 3, 2, 4])


def test_tic_and_rms_normalisation_by_definition() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    tic = normalize_rows(x.copy(), "tic")
    np.testing.assert_allclose(tic[[0, 2]].sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(tic[1], 0.0)  # an empty row stays zero, not NaN
    rms = normalize_rows(x.copy(), "rms")
    np.testing.assert_allclose(rms[0], np.array([3.0, 4.0]) / np.sqrt(12.5), rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.mean(rms[2] ** 2)), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="normalize"):
        normalize_rows(x, "max")  # type: ignore[arg-type]


def test_peak_picking_keeps_local_maxima_above_noise() -> None:
    mz = np.arange(200, dtype=float)
    it = 10.0 + np.random.default_rng(0).normal(0.0, 1.0, 200)
    it[[50, 120]] = [60.0, 40.0]
    pmz, pit = pick_peaks(mz, it, snr=8.0)
    assert pmz.tolist() == [50.0, 120.0] and pit.tolist() == [60.0, 40.0]


# --- real files ------------------------------------------------------------------------------


def test_examples_continuous_and_processed_give_the_same_image(msi: Path) -> None:
    axis = MzAxis.da(100.0, 800.0, 0.5)
    cont, _ = read_image(msi / EXAMPLE.format("Continuous"), axis)
    proc, _ = read_image(msi / EXAMPLE.format("Processed"), axis)
    assert cont.shape == (3, 3, axis.n_bins)
    assert not np.isnan(cont).any()
    np.testing.assert_allclose(cont, proc, rtol=1e-6)
    info = inspect_imzml(msi / EXAMPLE.format("Processed"))
    assert (info.n_pixels, info.grid, info.continuous, info.n_mz) == (9, (3, 3), False, 8399)
    assert info.checksum and info.checksum[0] == "sha1" and info.pixel_size == (100.0, 100.0)
    assert not info.mz_range_exact  # processed: the first spectrum's range unless scanned
    scanned = inspect_imzml(msi / EXAMPLE.format("Processed"), scan=True)
    assert scanned.mz_range_exact and scanned.mz_range == pytest.approx(
        (100.083, 799.917), abs=1e-3
    )


def test_coordinates_and_spectra_match_pyimzml(msi: Path) -> None:
    path = msi / EXAMPLE.format("Processed")
    parser = _parser(path)
    chunk = _all(path, axis=MzAxis.da(100.0, 800.0, 1.0), chunk_size=4)
    assert list(zip(chunk.x, chunk.y, strict=True)) == [c[:2] for c in parser.coordinates]
    np.testing.assert_array_equal(chunk.index, np.arange(9))
    mz, it = parser.getspectrum(4)
    expected = MzAxis.da(100.0, 800.0, 1.0).bin(mz, it.astype(np.float64))
    np.testing.assert_allclose(chunk.intensities[4], expected, rtol=1e-6)


def test_tic_normalised_pixels_sum_to_one(msi: Path) -> None:
    chunk = _all(msi / EXAMPLE.format("Continuous"), normalize="tic")
    np.testing.assert_allclose(chunk.intensities.sum(axis=1), 1.0, rtol=1e-5)
    picked = _all(msi / EXAMPLE.format("Continuous"), peak_picking=3.0)
    assert 0 < np.count_nonzero(picked.intensities) < picked.intensities.size


def test_masspix_cut_has_441_pixels(msi: Path) -> None:
    info = inspect_imzml(msi / "masspix_cut.imzML")
    assert (info.n_pixels, info.grid, info.n_mz, info.continuous) == (441, (21, 21), 629, True)
    cube, axis = read_image(msi / "masspix_cut.imzML")
    assert cube.shape == (21, 21, 629) and axis.kind == "file"
    assert not np.isnan(cube).any()


def test_prostate_inspect_and_first_chunk_match_pyimzml(msi: Path) -> None:
    path = msi / "msight_mouse_prostate.imzML"
    info = inspect_imzml(path)
    assert (info.n_pixels, info.grid, info.n_mz) == (33035, (274, 163), 422)
    assert info.continuous and info.checksum and info.checksum[0] == "md5"
    assert info.mz_range == pytest.approx((631.10, 1979.03), abs=0.01)
    verify_checksum(path)  # the declared MD5 of the real file holds
    chunk = next(iter_pixel_chunks(path, chunk_size=256, check_checksum=False))
    assert chunk.intensities.shape == (256, 422) and chunk.intensities.dtype == np.float32
    parser = _parser(path)
    for i in (0, 1, 255):
        mz, it = parser.getspectrum(i)
        order = np.argsort(mz, kind="stable")  # SCiLS stores this axis unsorted
        np.testing.assert_array_equal(chunk.intensities[i], it[order])
        assert (chunk.x[i], chunk.y[i]) == parser.coordinates[i][:2]
    with pytest.raises(ValueError, match="iter_pixel_chunks"):
        read_image(path, max_values=1_000_000)


# --- each bad input names the file and the pixel --------------------------------------------


def test_missing_ibd_names_the_expected_path(msi: Path, tmp_path: Path) -> None:
    path = _copy(msi, tmp_path, ibd=False)
    with pytest.raises(ImzmlError, match=re.escape(str(path.with_suffix(".ibd")))):
        next(iter_pixel_chunks(path))


def test_uuid_mismatch(msi: Path, tmp_path: Path) -> None:
    path = _copy(msi, tmp_path)
    data = bytearray(path.with_suffix(".ibd").read_bytes())
    data[3] ^= 0xFF
    path.with_suffix(".ibd").write_bytes(bytes(data))
    with pytest.raises(ImzmlError, match="UUID") as err:
        next(iter_pixel_chunks(path))
    assert str(path) in str(err.value)


def test_checksum_mismatch_names_both_digests(msi: Path, tmp_path: Path) -> None:
    path = _copy(msi, tmp_path)
    data = bytearray(path.with_suffix(".ibd").read_bytes())
    data[5000] ^= 0x01
    path.with_suffix(".ibd").write_bytes(bytes(data))
    with pytest.raises(ImzmlError, match=r"sha1 is [0-9a-f]{40}, imzML declares a5be532d"):
        next(iter_pixel_chunks(path))
    assert len(_all(path, check_checksum=False).index) == 9  # skippable for huge files


def test_plain_mzml_is_named_not_imaging(tmp_path: Path) -> None:
    path = tmp_path / "plain.imzML"
    path.write_text(
        '<?xml version="1.0"?><mzML xmlns="http://psi.hupo.org/ms/mzml"><fileDescription>'
        '<fileContent><cvParam cvRef="MS" accession="MS:1000580" name="MSn spectrum"/>'
        '</fileContent></fileDescription><run id="r"><spectrumList count="1">'
        '<spectrum index="0" id="s0" defaultArrayLength="0"/></spectrumList></run></mzML>'
    )
    path.with_suffix(".ibd").write_bytes(b"")
    with pytest.raises(ImzmlError, match="plain mzML without imaging") as err:
        inspect_imzml(path)
    assert str(path) in str(err.value)


def test_pixel_outside_the_declared_grid(msi: Path, tmp_path: Path) -> None:
    path = _copy(msi, tmp_path)
    text = path.read_text(encoding="latin-1")
    marker = 'name="position x" value="2"'  # the second pixel (x=2, y=1)
    path.write_text(text.replace(marker, 'name="position x" value="7"', 1), encoding="latin-1")
    with pytest.raises(ImzmlError, match=r"pixel 1 \(x=7, y=1\).*outside the declared grid"):
        list(iter_pixel_chunks(path, check_checksum=False))


def test_empty_spectrum_raises_or_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    axis, _, chunks = synthetic_chunks(9, 20, seed=3)
    path = write_imzml(tmp_path / "syn.imzML", chunks, axis)
    lines = path.read_text(encoding="ascii").splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if 'index="4"' in line)
    lines[i] = re.sub(r'array length" value="\d+"', 'array length" value="0"', lines[i])
    path.write_text("".join(lines), encoding="ascii")
    with pytest.raises(DataFormatError, match=r"pixel 4 \(x=2, y=2\).*empty spectrum"):
        list(iter_pixel_chunks(path))
    with caplog.at_level(logging.WARNING, logger="deepms.io"):
        kept = _all(path, on_error="skip")
    assert 4 not in kept.index and len(kept.index) == 8
    assert any("skipped 1 of 9" in r.getMessage() for r in caplog.records)


# --- writer, generator and formats ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["continuous", "processed"])
def test_writer_round_trip_is_exact_and_pyimzml_reads_it(
    msi: Path, tmp_path: Path, mode: str
) -> None:
    source = msi / "masspix_cut.imzML"
    cube, axis = read_image(source)
    out = write_imzml(
        tmp_path / "rt.imzML", iter_pixel_chunks(source, chunk_size=100), axis, mode=mode
    )  # type: ignore[arg-type]
    info = inspect_imzml(out)
    assert (info.n_pixels, info.grid, info.continuous) == (441, (21, 21), mode == "continuous")
    back, _ = read_image(out, axis)
    np.testing.assert_array_equal(back, cube)
    parser = _parser(out)
    mz, it = parser.getspectrum(10)
    np.testing.assert_allclose(mz, axis.centres)
    x, y = parser.coordinates[10][:2]
    np.testing.assert_array_equal(it, cube[y - 1, x - 1])


def test_generated_image_is_structured(tmp_path: Path) -> None:
    path = generate_imzml(tmp_path / "gen.imzML", n_pixels=400, n_bins=32, seed=1)
    info = inspect_imzml(path)
    assert (info.n_pixels, info.grid, info.n_mz) == (400, (20, 20), 32)
    chunk = _all(path, normalize="tic")
    # several distinct spectral patterns (regions), not one
    assert len(np.unique(chunk.intensities.argmax(axis=1))) >= 2


def test_imzml_format_yields_chunks_on_the_requested_axis(msi: Path) -> None:
    fmt = get_format("imzml")
    paths = [
        msi / EXAMPLE.format("Processed"),
        msi / EXAMPLE.format("Processed").replace(".imzML", ".ibd"),
    ]
    chunks = list(
        fmt.open(paths, axis={"type": "ppm", "lo": 100, "hi": 800, "ppm": 2000}, normalize="rms")
    )
    assert sum(len(c) for c in chunks) == 9 and chunks[0].source == paths[0].name
    np.testing.assert_allclose(np.sqrt(np.mean(chunks[0].intensities ** 2, axis=1)), 1.0, rtol=1e-5)


def test_fiedler_spectra_reader_and_format(msi: Path, tmp_path: Path) -> None:
    npz = msi / "maldiquant_fiedler2009subset.npz"
    csv = msi / "maldiquant_fiedler2009subset_metadata.csv"
    mass, intensities, meta = read_spectra_npz(npz, csv)
    assert intensities.shape == (16, 42388) and mass.shape == (42388,)
    assert set(meta["label"]) == {"tumor", "control"} and meta["patient"].nunique() == 8
    (spectra,) = get_format("fiedler_spectra").open([npz, csv])
    assert isinstance(spectra, SpectraSet) and "site" in spectra.metadata
    bad = pd.read_csv(csv)
    bad.loc[3, "patient"] = "someone else"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataFormatError, match=r"row 3.*patient"):
        read_spectra_npz(npz, tmp_path / "bad.csv")
    np.savez(tmp_path / "nolabel.npz", intensities=intensities[:2], mass=mass)
    with pytest.raises(DataFormatError, match="missing arrays"):
        read_spectra_npz(tmp_path / "nolabel.npz")
