"""Match observed peaks to theoretical fragments: the bridge from raw spectra to training targets.

Tolerance is inclusive (|observed - theoretical| <= tol); ppm is relative to the *theoretical* m/z.
Among several peaks in the window the most intense wins (the usual choice of MS2PIP/Prosit tooling).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepms.chem.fragments import ION_TYPES, Loss, fragment_mz
from deepms.chem.peptide import Peptide

# Absolute slack (Da) so a peak computed as exactly theo * (1 + tol) is not lost to rounding.
_EPS = 1e-9


def _half_width(theoretical: np.ndarray, tolerance: float, unit: str) -> np.ndarray:
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    unit_l = unit.lower()
    if unit_l == "ppm":
        return theoretical * (tolerance * 1e-6) + _EPS
    if unit_l in ("da", "th"):
        return np.full_like(theoretical, tolerance + _EPS)
    raise ValueError(f"tolerance unit must be 'ppm' or 'Da', got {unit!r}")


def match_peaks(
    theoretical: np.ndarray,
    mz: np.ndarray,
    intensity: np.ndarray,
    tolerance: float = 20.0,
    unit: str = "ppm",
) -> tuple[np.ndarray, np.ndarray]:
    """For each theoretical m/z: (intensity of the most intense peak in tolerance, its index or -1).

    Both outputs have the shape of ``theoretical``; indices refer to the caller's ``mz`` order.
    Vectorised: two ``searchsorted`` calls, then one pass per peak-in-window (usually 0-2).
    """
    theo = np.asarray(theoretical, dtype=np.float64)
    flat = theo.ravel()
    mz = np.asarray(mz, dtype=np.float64)
    inten = np.asarray(intensity, dtype=np.float32)
    if mz.shape != inten.shape or mz.ndim != 1:
        raise ValueError(
            f"mz and intensity must be 1-D of equal length, got {mz.shape}, {inten.shape}"
        )
    order = None
    if mz.size > 1 and np.any(mz[1:] < mz[:-1]):
        order = np.argsort(mz, kind="stable")
        mz, inten = mz[order], inten[order]
    half = _half_width(flat, tolerance, unit)
    lo = np.searchsorted(mz, flat - half, side="left")
    hi = np.searchsorted(mz, flat + half, side="right")
    best = np.full(flat.shape, -np.inf, dtype=np.float32)
    index = np.full(flat.shape, -1, dtype=np.int64)
    widest = int((hi - lo).max(initial=0))
    for k in range(widest):
        j = lo + k
        inside = j < hi
        j_safe = np.where(inside, j, 0)
        better = inside & (inten[j_safe] > best)
        best = np.where(better, inten[j_safe], best)
        index = np.where(better, j_safe, index)
    best[index < 0] = 0.0
    if order is not None:
        index = np.where(index >= 0, order[np.maximum(index, 0)], -1)
    return best.reshape(theo.shape), index.reshape(theo.shape)


def annotate(
    peptide: Peptide | str,
    mz: np.ndarray,
    intensity: np.ndarray,
    tolerance: float = 20.0,
    unit: str = "ppm",
    charges: Sequence[int] = (1, 2),
    ion_types: Sequence[str] = ION_TYPES,
    losses: Sequence[Loss] = (None,),
) -> np.ndarray:
    """Observed intensity per theoretical ion (float32, shaped like ``fragment_mz``, 0 = none)."""
    theoretical = fragment_mz(peptide, charges, ion_types, losses)
    matched, _ = match_peaks(theoretical, mz, intensity, tolerance, unit)
    return matched.astype(np.float32, copy=False)
