"""Spectrum preprocessing for de novo sequencing, and peak lists rebuilt from ion annotations.

The steps and their order follow Casanovo (depthcharge/spectrum_utils), each one configurable:

1. keep peaks with ``min_mz <= m/z <= max_mz``;
2. remove the precursor: peaks within ``remove_precursor_tol`` Da of the precursor m/z at every
   charge from the precursor charge down to 1 (unfragmented and charge-reduced precursor);
3. drop peaks below ``min_intensity`` x the most intense peak, then keep the ``max_peaks`` most
   intense;
4. scale intensities (``sqrt``, ``log`` = log1p, or ``none``) and normalise (``max`` -> the top
   peak is 1, ``l2`` -> unit norm as Casanovo, or ``none``).

A spectrum left with fewer than ``min_peaks`` peaks returns None (counted by the data module).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepms.chem import PROTON, Peptide, fragment_mz
from deepms.io.spectrum import ANNOTATED_CHARGES, AnnotatedSpectrum

SCALINGS = ("sqrt", "log", "none")
NORMALISATIONS = ("max", "l2", "none")
#: neutral losses whose annotated intensities (pDeep2 ``b-NH3`` ...) become peaks too
REBUILT_LOSSES = ("NH3", "H2O")


@dataclass(frozen=True)
class Preprocessor:
    """The configured preprocessing; one instance per data module, also saved with the model."""

    min_mz: float = 50.0
    max_mz: float = 2500.0
    remove_precursor_tol: float | None = 2.0
    min_intensity: float = 0.01
    max_peaks: int | None = 150
    scaling: str = "sqrt"
    normalise: str = "max"
    min_peaks: int = 1

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise ValueError(f"preprocessing scaling {self.scaling!r}: use one of {SCALINGS}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"preprocessing normalise {self.normalise!r}: use {NORMALISATIONS}")

    def __call__(
        self,
        mz: np.ndarray,
        intensity: np.ndarray,
        precursor_mz: float | None = None,
        charge: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Preprocessed (m/z float32, intensity float32), sorted by m/z; None if too few peaks."""
        mz = np.asarray(mz, dtype=np.float64)
        intensity = np.asarray(intensity, dtype=np.float64)
        keep = (mz >= self.min_mz) & (mz <= self.max_mz) & (intensity > 0)
        if self.remove_precursor_tol is not None and precursor_mz is not None and charge:
            neutral = (precursor_mz - PROTON) * charge
            for z in range(int(charge), 0, -1):
                keep &= np.abs(mz - (neutral / z + PROTON)) > self.remove_precursor_tol
        mz, intensity = mz[keep], intensity[keep]
        if intensity.size:
            intensity_keep = intensity >= self.min_intensity * intensity.max()
            mz, intensity = mz[intensity_keep], intensity[intensity_keep]
        if self.max_peaks is not None and intensity.size > self.max_peaks:
            top = np.argsort(-intensity, kind="stable")[: self.max_peaks]
            mz, intensity = mz[top], intensity[top]
        if intensity.size < max(1, self.min_peaks):
            return None
        order = np.argsort(mz, kind="stable")
        mz, intensity = mz[order], intensity[order]
        if self.scaling == "sqrt":
            intensity = np.sqrt(intensity)
        elif self.scaling == "log":
            intensity = np.log1p(intensity)
        if self.normalise == "max":
            intensity = intensity / intensity.max()
        elif self.normalise == "l2":
            intensity = intensity / np.linalg.norm(intensity)
        return mz.astype(np.float32), intensity.astype(np.float32)


def rebuild_peaks(
    record: AnnotatedSpectrum, losses: Sequence[str] = REBUILT_LOSSES
) -> tuple[np.ndarray, np.ndarray]:
    """A peak list from annotated fragment intensities (pDeep2 plabel, DLOmix/Prosit parquet).

    Each annotated ion with intensity > 0 and a fragment charge not above the precursor charge
    becomes a peak at its theoretical m/z (:func:`deepms.chem.fragment_mz`); intact b/y ions and,
    where the source annotates them (pDeep2 ``metadata["losses"]``), NH3/H2O losses. Coinciding
    ions add up. Sorted by m/z.
    """
    charges = ANNOTATED_CHARGES
    allowed = np.array([z <= max(1, record.precursor_charge) for z in charges])
    stored = (record.metadata or {}).get("losses") or {}
    layers = [(None, record.intensities)]
    layers += [(loss, stored[loss]) for loss in losses if loss in stored]
    table = fragment_mz(record.peptide, charges=charges, losses=[name for name, _ in layers])
    mz_parts, int_parts = [], []
    for j, (_, values) in enumerate(layers):
        values = np.asarray(values, dtype=np.float64)
        present = (values > 0) & allowed[None, None, :]
        mz_parts.append(table[..., j][present])
        int_parts.append(values[present])
    mz = np.concatenate(mz_parts)
    intensity = np.concatenate(int_parts)
    mz, inverse = np.unique(np.round(mz, 6), return_inverse=True)
    summed = np.zeros(mz.size, dtype=np.float64)
    np.add.at(summed, inverse, intensity)
    return mz, summed


def precursor_mass(precursor_mz: float, charge: int) -> float:
    """Neutral peptide mass from the precursor m/z and charge."""
    return (float(precursor_mz) - PROTON) * int(charge)


def mass_error_ppm(peptide: Peptide, precursor_mz: float, charge: int) -> float:
    """Label's mass against the observed precursor, in ppm of the observed neutral mass."""
    observed = precursor_mass(precursor_mz, charge)
    return (peptide.monoisotopic_mass - observed) / observed * 1e6
