"""MSI data as arrays for the msi tasks: a section's pixels and a set of labelled spectra.

The readers live in :mod:`deepms.io.imzml` (pixel chunks on a shared m/z axis) and
:mod:`deepms.io.msi_formats` (labelled spectrum sets); this module turns them into what the task
needs in memory (a 33k-pixel x 422-bin section is 56 MB as float32), bins raw profile spectra
(Fiedler: 42,388 points) onto a coarse axis so a 1-D CNN and NMF are cheap, and puts a new
file's pixels on a trained model's m/z columns exactly as the training pixels were put.

Column order: a continuous file's own axis has its centres sorted (SCiLS stores the prostate's
m/z unsorted, with one value twice), and the reader returns the columns in that sorted order, so
a section's ``mz`` is always ``axis.centres``, never the file's raw m/z array.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepms.io.imzml import file_axis, iter_pixel_chunks
from deepms.io.msi_axis import MzAxis
from deepms.io.msi_formats import read_spectra_npz


@dataclass
class Section:
    """One MSI section: 1-based pixel coordinates, raw intensities [n, bins] and the m/z axis."""

    x: np.ndarray
    y: np.ndarray
    intensities: np.ndarray
    mz: np.ndarray

    @property
    def tic(self) -> np.ndarray:
        return self.intensities.sum(1)


def imzml_path(paths: list[Path] | list[str]) -> Path:
    """The .imzML of a source's files (its .ibd sits beside it)."""
    found = [Path(p) for p in paths if str(p).lower().endswith(".imzml")]
    if len(found) != 1:
        raise ValueError(f"one .imzML file expected among {[str(p) for p in paths]}")
    return found[0]


def model_axis(path: Path, mz: np.ndarray) -> MzAxis:
    """The axis that puts ``path``'s pixels on a model's m/z columns ``mz`` (sorted centres).

    When the file is continuous and its own sorted axis is exactly ``mz`` (the training file, or
    one exported alike), that axis is used: a column copy, as in training, which keeps a
    repeated m/z value in two columns. Otherwise spectra are summed into bins around ``mz``
    (edges half way between neighbouring centres).
    """
    mz = np.asarray(mz, dtype=np.float64)
    try:
        own = file_axis(path)
    except ValueError:  # processed: no shared axis of its own
        own = None
    if own is not None and own.n_bins == len(mz) and np.array_equal(own.centres, mz):
        return own
    return MzAxis.from_continuous(mz)


def iter_pixels(
    path: Path, axis: MzAxis | None = None, chunk_size: int = 4096
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(x, y, raw intensities [n, bins]) chunks of an imzML on ``axis`` (default: the file's own
    continuous axis, columns in ``axis.centres`` order). Un-normalised: the task normalises, so
    the TIC image stays available."""
    for chunk in iter_pixel_chunks(path, axis=axis, normalize=None, chunk_size=chunk_size):
        yield chunk.x, chunk.y, chunk.intensities


def read_section(path: Path, axis: MzAxis | None = None) -> Section:
    """A whole section in memory (raw intensities); ``mz`` is the axis' (sorted) centres."""
    axis = axis if axis is not None else file_axis(path)
    xs, ys, blocks = [], [], []
    for x, y, block in iter_pixels(path, axis):
        xs.append(x)
        ys.append(y)
        blocks.append(block)
    if not blocks:
        raise ValueError(f"{path}: no pixels with a spectrum")
    centres = np.asarray(axis.centres, dtype=np.float64)
    return Section(np.concatenate(xs), np.concatenate(ys), np.concatenate(blocks), centres)


def read_spectra(paths: list[Path] | list[str]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(mass [M], intensities [n, M], metadata) of a labelled spectra set (.npz + CSV); the
    shared reader checks the CSV against the npz row by row (a shifted label would leak)."""
    npz = next(Path(p) for p in paths if str(p).endswith(".npz"))
    csv = next((Path(p) for p in paths if str(p).endswith(".csv")), None)
    return read_spectra_npz(npz, csv)


def spectra_edges(width: float, lo: float, hi: float) -> np.ndarray:
    """The bin edges of :func:`bin_spectra`: ``width``-Da steps from ``lo`` to at least ``hi``."""
    return np.arange(lo, hi + width, width)


def bin_spectra(
    mass: np.ndarray,
    intensities: np.ndarray,
    width: float,
    lo: float | None = None,
    hi: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean intensity per ``width``-Da bin on [lo, hi) (profile data: the mean keeps the scale
    whatever the sampling density); returns (bin centres, [n, bins])."""
    lo = float(np.floor(mass.min())) if lo is None else float(lo)
    hi = float(np.ceil(mass.max())) if hi is None else float(hi)
    edges = spectra_edges(width, lo, hi)
    index = np.digitize(mass, edges) - 1
    ok = (index >= 0) & (index < len(edges) - 1)
    n_bins = len(edges) - 1
    counts = np.bincount(index[ok], minlength=n_bins).astype(np.float64)
    out = np.zeros((intensities.shape[0], n_bins), np.float32)
    for row in range(intensities.shape[0]):
        sums = np.bincount(index[ok], weights=intensities[row, ok], minlength=n_bins)
        out[row] = sums / np.maximum(counts, 1)
    return (edges[:-1] + edges[1:]) / 2, out


def spectra_axis(mz: np.ndarray, width: float) -> MzAxis:
    """The classifier's bins (``width`` Da, centred on the model's ``mz``) as an :class:`MzAxis`,
    with the same edges :func:`bin_spectra` used in training (``lo`` = first centre - width/2)."""
    mz = np.asarray(mz, dtype=np.float64)
    lo = float(mz[0]) - width / 2
    edges = spectra_edges(width, lo, float(mz[-1]) + width / 2)[: len(mz) + 1]
    centres = (edges[:-1] + edges[1:]) / 2
    if len(edges) != len(mz) + 1 or not np.allclose(centres, mz, rtol=0, atol=width * 1e-6):
        raise ValueError(f"the model's m/z are not {width}-Da bin centres: cannot rebuild its bins")
    return MzAxis(edges, centres, f"da:{width}")


def iter_pixel_means(
    path: Path, axis: MzAxis, chunk_size: int = 4096
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(x, y, mean intensity per bin) chunks: :func:`bin_spectra`'s aggregation on an imzML.

    The reader sums the points of a bin; the classifier was trained on per-bin means, and
    profile spectra hold a different number of points per bin (TOF sampling thins out with
    m/z), so the sums are divided by the number of the file's m/z points in each bin. That
    count is one vector for a continuous file; a processed file's points differ per pixel,
    which the chunked reader does not expose, so it is refused rather than silently summed.
    """
    try:
        own = file_axis(path)
    except ValueError as exc:
        raise ValueError(
            f"{path}: a processed imzML cannot be binned as the classifier's training spectra "
            "(per-bin means need each pixel's point count); convert it to continuous mode"
        ) from exc
    assert own.source_mz is not None
    idx = axis.indices(own.source_mz)
    counts = np.bincount(idx[idx >= 0], minlength=axis.n_bins).astype(np.float32)
    scale = 1.0 / np.maximum(counts, 1.0)
    for x, y, block in iter_pixels(path, axis, chunk_size):
        yield x, y, block * scale
