"""How the msi task puts pixels on columns: the prostate's unsorted m/z, and prediction binning
that matches training (the t-SNE model's column copy; the classifier's per-bin means)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deepms.io.imzml import PixelChunk, file_axis
from deepms.io.imzml_write import write_imzml
from deepms.io.msi_axis import MzAxis
from deepms.tasks.msi.reading import (
    bin_spectra,
    iter_pixel_means,
    iter_pixels,
    model_axis,
    read_section,
    spectra_axis,
)

from .conftest import MSI, need


def test_prostate_columns_follow_the_sorted_centres() -> None:
    """SCiLS stores the prostate's m/z unsorted (one value twice): each column holds the file's
    intensity at that column's m/z, and a model's axis reads the same columns back."""
    pyimzml = pytest.importorskip("pyimzml.ImzMLParser")
    path = need(MSI / "msight_mouse_prostate.imzML")
    axis = file_axis(path)
    raw_mz = axis.source_mz
    assert raw_mz is not None and np.any(np.diff(raw_mz) < 0)  # the case this guards
    x, y, block = next(iter_pixels(path, axis, chunk_size=64))
    assert np.all(np.diff(axis.centres) >= 0)
    parser = pyimzml.ImzMLParser(str(path))
    for row in (0, 63):
        mz, values = parser.getspectrum(row)
        assert (x[row], y[row]) == parser.coordinates[row][:2]
        for m, v in zip(mz, values, strict=True):
            columns = np.flatnonzero(axis.centres == m)
            assert np.isclose(block[row, columns], v).any()
    again = model_axis(path, np.array(axis.centres))  # a trained model's mz, as saved
    assert again.source_mz is not None and np.array_equal(again.source_mz, raw_mz)
    assert np.array_equal(next(iter_pixels(path, again, chunk_size=64))[2], block)


def test_read_section_mz_is_the_axis_centres(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "s.imzML", np.array([300.0, 100.0, 200.0]), np.eye(3, dtype=np.float32)
    )
    section = read_section(path)
    assert section.mz.tolist() == [100.0, 200.0, 300.0]
    # pixel i holds 1 at raw position i: m/z 300, then 100, then 200
    assert section.mz[section.intensities.argmax(1)].tolist() == [300.0, 100.0, 200.0]


def _profile(n_pixels: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """TOF-like profile spectra: points spaced as sqrt(m/z), so bins hold unequal counts."""
    mass = np.linspace(np.sqrt(1000.0), np.sqrt(1100.0), 700) ** 2
    rng = np.random.default_rng(0)
    return mass, rng.gamma(2.0, size=(n_pixels, len(mass))).astype(np.float32)


def _write(path: Path, mz: np.ndarray, rows: np.ndarray, mode: str = "continuous") -> Path:
    n = len(rows)
    chunk = PixelChunk(np.arange(1, n + 1), np.ones(n, np.int64), np.arange(n), rows)
    # write_imzml stores axis.centres: a sorted axis; the unsorted case goes through source_mz
    axis = MzAxis.from_continuous(mz)
    if np.any(np.diff(mz) < 0):
        axis = MzAxis(axis.edges, np.asarray(mz, dtype=np.float64), "file")
    return write_imzml(path, [chunk], axis, mode=mode, mz_dtype=np.float64)  # type: ignore[arg-type]


def test_pixel_means_match_training_binning(tmp_path: Path) -> None:
    mass, rows = _profile()
    centres, expected = bin_spectra(mass, rows, 5.0, 1000, 1100)
    path = _write(tmp_path / "p.imzML", mass, rows)
    got = np.concatenate([b for _, _, b in iter_pixel_means(path, spectra_axis(centres, 5.0))])
    assert np.allclose(got, expected, rtol=1e-5)
    sums = np.concatenate([b for _, _, b in iter_pixels(path, spectra_axis(centres, 5.0))])
    assert not np.allclose(sums, expected, rtol=1e-2)  # the reader's sums are not the means
    processed = _write(tmp_path / "q.imzML", mass, rows, mode="processed")
    with pytest.raises(ValueError, match="processed"):
        next(iter_pixel_means(processed, spectra_axis(centres, 5.0)))


def test_classifier_predictor_on_an_imzml_matches_the_training_features(tmp_path: Path) -> None:
    """The same spectra as an imzML (predict_file) and as training binned them (predict)."""
    from deepms.tasks.msi.classify import SpectrumClassifier
    from deepms.tasks.msi.predict import MsiPredictor

    mass, rows = _profile()
    centres, binned = bin_spectra(mass, rows, 5.0, 1000, 1100)
    torch.manual_seed(0)
    featurize = {"bin_width": 5.0, "normalize": "tic", "transform": "sqrt", "baseline_window": 3}
    model = SpectrumClassifier(len(centres), centres.tolist(), ["control", "tumor"], featurize,
                               channels=[4, 4])  # fmt: skip
    predictor = MsiPredictor(model)
    path = _write(tmp_path / "p.imzML", mass, rows)
    out = tmp_path / "pixels.parquet"
    predictor.predict_file(path, out, chunk_size=2, progress=False)
    table = pd.read_parquet(out).sort_values("x")
    frame = pd.DataFrame({"x": np.arange(1, 6), "y": 1, "spectrum": list(binned)})
    expected = predictor.predict(frame)
    assert np.allclose(table["p_tumor"].to_numpy(), expected["p_tumor"].to_numpy(), atol=1e-6)
