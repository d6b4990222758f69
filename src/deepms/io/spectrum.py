"""In-memory spectrum records shared by every reader, so models never see file formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from deepms.chem import Peptide

#: Fragment charges held in :attr:`AnnotatedSpectrum.intensities` (axis 2).
ANNOTATED_CHARGES = (1, 2, 3)
#: Ion types held in :attr:`AnnotatedSpectrum.intensities` (axis 1), as in chem.fragments.
ANNOTATED_ION_TYPES = ("b", "y")
#: ``metadata`` keys holding one entry per peak; they are re-ordered when peaks are sorted.
PEAK_METADATA_KEYS = ("annotations",)


@dataclass(eq=False)  # arrays make value equality ambiguous; compare fields explicitly
class Spectrum:
    """A peak list plus what is known about its precursor and acquisition.

    Peaks are kept sorted by m/z because annotation (``np.searchsorted``) relies on it; per-peak
    lists in ``metadata`` (:data:`PEAK_METADATA_KEYS`, e.g. ``"annotations"``) follow them.
    """

    identifier: str
    mz: np.ndarray
    intensity: np.ndarray
    precursor_mz: float | None = None
    precursor_charge: int | None = None
    retention_time: float | None = None  # seconds
    peptide: Peptide | None = None
    collision_energy: float | None = None  # NCE in percent
    fragmentation: str | None = None  # "HCD", "CID", ...
    analyzer: str | None = None  # "FTMS", "ITMS", ...
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mz = np.asarray(self.mz, dtype=np.float64).reshape(-1)
        self.intensity = np.asarray(self.intensity, dtype=np.float32).reshape(-1)
        if self.mz.shape != self.intensity.shape:
            raise ValueError(
                f"spectrum {self.identifier}: {self.mz.size} m/z values but "
                f"{self.intensity.size} intensities"
            )
        per_peak = [k for k in PEAK_METADATA_KEYS if self.metadata.get(k) is not None]
        for key in per_peak:
            if len(self.metadata[key]) != self.mz.size:
                raise ValueError(
                    f"spectrum {self.identifier}: {len(self.metadata[key])} {key} for "
                    f"{self.mz.size} peaks"
                )
        if self.mz.size > 1 and np.any(np.diff(self.mz) < 0):
            order = np.argsort(self.mz, kind="stable")
            self.mz = self.mz[order]
            self.intensity = self.intensity[order]
            for key in per_peak:
                self.metadata[key] = [self.metadata[key][i] for i in order]

    @property
    def n_peaks(self) -> int:
        """Number of peaks."""
        return int(self.mz.size)


@dataclass(eq=False)
class AnnotatedSpectrum:
    """Fragment-ion intensities for sources that store ions, not peaks (pDeep2, Prosit).

    ``intensities`` has shape ``[len(peptide) - 1 bonds, 2 (b, y), 3 (z = 1, 2, 3)]`` with the
    bond convention of :func:`deepms.chem.fragment_mz` (bond k: b_{k+1} and y_{n-k-1}), so it
    lines up with computed fragment m/z without any re-indexing. 0 = not observed, -1 = marked
    impossible by the source.
    """

    identifier: str
    peptide: Peptide
    precursor_charge: int
    intensities: np.ndarray
    collision_energy: float | None = None
    fragmentation: str | None = None
    analyzer: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.intensities = np.asarray(self.intensities, dtype=np.float32)
        n_bonds = len(self.peptide.sequence) - 1
        expected = (n_bonds, len(ANNOTATED_ION_TYPES), len(ANNOTATED_CHARGES))
        if self.intensities.shape != expected:
            raise ValueError(
                f"spectrum {self.identifier}: intensities shape {self.intensities.shape}, "
                f"expected {expected} for a {n_bonds + 1}-residue peptide"
            )
