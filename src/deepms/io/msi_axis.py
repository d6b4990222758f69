"""A shared m/z axis for imaging spectra, plus per-pixel normalisation and peak picking.

Why a shared axis: a model sees every pixel as one dense vector, so spectra with their own m/z
arrays (imzML "processed" mode) must be summed into the same bins; "continuous" files already
share one axis and can be read on it unchanged (an identity mapping, no rounding).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Normalize = Literal["tic", "rms"] | None


@dataclass(frozen=True, eq=False)
class MzAxis:
    """Bins of an m/z axis: ``edges`` (n_bins + 1, increasing) and their ``centres``.

    ``source_mz`` is set for an axis taken from a continuous file: spectra whose m/z array is
    exactly that array are copied bin for bin instead of searched.
    """

    edges: np.ndarray
    centres: np.ndarray
    kind: str = "custom"
    source_mz: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        edges = self.edges
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) < 0) or edges[-1] <= edges[0]:
            raise ValueError("MzAxis edges must be an increasing 1-D array of >= 2 values")
        if len(self.centres) != len(self.edges) - 1:
            raise ValueError("MzAxis needs one centre per bin (len(edges) - 1)")

    @property
    def n_bins(self) -> int:
        return len(self.centres)

    @classmethod
    def da(cls, lo: float, hi: float, width: float) -> MzAxis:
        """Bins of constant ``width`` Da from ``lo`` up to at least ``hi``."""
        if width <= 0 or hi <= lo:
            raise ValueError(f"MzAxis.da needs lo < hi and width > 0, got {lo}, {hi}, {width}")
        n = int(np.ceil((hi - lo) / width - 1e-9))
        edges = lo + width * np.arange(n + 1, dtype=np.float64)
        return cls(edges, (edges[:-1] + edges[1:]) / 2, f"da:{width}")

    @classmethod
    def ppm(cls, lo: float, hi: float, ppm: float) -> MzAxis:
        """Bins ``ppm`` parts per million wide (geometric), as TOF/Orbitrap resolution scales."""
        if ppm <= 0 or hi <= lo or lo <= 0:
            raise ValueError(f"MzAxis.ppm needs 0 < lo < hi and ppm > 0, got {lo}, {hi}, {ppm}")
        ratio = 1.0 + ppm * 1e-6
        n = int(np.ceil(np.log(hi / lo) / np.log(ratio) - 1e-9))
        edges = lo * ratio ** np.arange(n + 1, dtype=np.float64)
        return cls(edges, np.sqrt(edges[:-1] * edges[1:]), f"ppm:{ppm}")

    @classmethod
    def from_continuous(cls, mz: np.ndarray) -> MzAxis:
        """The file's own axis: one bin per m/z value, edges half way between neighbours.

        Centres are sorted (some exporters, e.g. SCiLS feature lists, store them unsorted, and
        may repeat a value for two features: both keep a column), so a spectrum on exactly
        ``mz`` is a column permutation, not a search. Other spectra binned onto a repeated
        value go to the second of its columns (the first covers the half-bin below it).
        """
        mz = np.asarray(mz, dtype=np.float64)
        if mz.ndim != 1 or len(mz) == 0 or not np.all(np.isfinite(mz)):
            raise ValueError("a continuous m/z axis must be a non-empty, finite 1-D array")
        centres = np.sort(mz, kind="stable")
        if len(centres) == 1:
            edges = np.array([centres[0] - 0.5, centres[0] + 0.5])
        else:
            mid = (centres[:-1] + centres[1:]) / 2
            edges = np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])
        return cls(edges, centres, "file", source_mz=mz.copy())

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | MzAxis | None) -> MzAxis | None:
        """An axis from a config dict: ``{type: ppm|da, lo, hi, ppm|width}``; ``{type: file}``
        or ``None`` means "the file's own axis" (returned as ``None``)."""
        if spec is None or isinstance(spec, MzAxis):
            return spec
        kind = str(spec.get("type", "file")).lower()
        if kind == "file":
            return None
        if kind == "ppm":
            return cls.ppm(float(spec["lo"]), float(spec["hi"]), float(spec["ppm"]))
        if kind == "da":
            return cls.da(float(spec["lo"]), float(spec["hi"]), float(spec["width"]))
        raise ValueError(f"unknown m/z axis type {kind!r}; use ppm, da or file")

    def identity_order(self, mz: np.ndarray) -> np.ndarray | None:
        """Column order putting spectra on ``mz`` onto this axis when ``mz`` is the axis' own
        source array with distinct values (binning is then a copy); ``None`` otherwise."""
        if self.source_mz is None or len(mz) != self.n_bins:
            return None
        if not np.array_equal(self.source_mz, mz):
            return None
        return np.argsort(self.source_mz, kind="stable")

    def indices(self, mz: np.ndarray) -> np.ndarray:
        """Bin index of each m/z value; -1 for values outside the axis."""
        idx = np.searchsorted(self.edges, mz, side="right") - 1
        idx[(idx < 0) | (idx >= self.n_bins)] = -1
        return idx

    def bin(self, mz: np.ndarray, intensity: np.ndarray) -> np.ndarray:
        """Dense float32 vector of ``intensity`` summed within each bin (outside values drop)."""
        order = self.identity_order(mz)
        if order is not None:
            return np.asarray(intensity, dtype=np.float32)[order]
        idx = self.indices(np.asarray(mz, dtype=np.float64))
        keep = idx >= 0
        out = np.bincount(idx[keep], weights=intensity[keep], minlength=self.n_bins)
        return out.astype(np.float32)

    def bin_rows(self, idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Bin a block of spectra that share one m/z array (precomputed ``idx``): [n, n_bins]."""
        n = rows.shape[0]
        keep = idx >= 0
        flat = (np.arange(n)[:, None] * self.n_bins + idx[keep][None, :]).ravel()
        out = np.bincount(flat, weights=rows[:, keep].ravel(), minlength=n * self.n_bins)
        return out.reshape(n, self.n_bins).astype(np.float32)


def normalize_rows(x: np.ndarray, how: Normalize) -> np.ndarray:
    """TIC (row sums to 1) or RMS (row root-mean-square 1) in place; all-zero rows stay zero.

    Why per pixel: laser and matrix effects change the total signal of a pixel, not its shape.
    """
    if how is None:
        return x
    if how == "tic":
        scale = x.sum(axis=1, dtype=np.float64)
    elif how == "rms":
        scale = np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=1))
    else:
        raise ValueError(f"normalize must be 'tic', 'rms' or None, got {how!r}")
    scale[scale == 0] = 1.0
    x /= scale[:, None].astype(x.dtype)
    return x


def pick_peaks(mz: np.ndarray, intensity: np.ndarray, snr: float = 3.0) -> tuple[np.ndarray, ...]:
    """Local maxima more than ``snr`` x MAD noise above the median (profile -> centroids).

    Deliberately simple (no smoothing or baseline): enough to drop noise points before binning.
    """
    if len(intensity) < 3:
        return mz, intensity
    median = np.median(intensity)
    noise = np.median(np.abs(intensity - median)) * 1.4826
    mid = intensity[1:-1]
    peak = (mid > intensity[:-2]) & (mid >= intensity[2:]) & (mid > median + snr * noise)
    where = np.flatnonzero(peak) + 1
    return mz[where], intensity[where]
