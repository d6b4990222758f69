"""Theoretical b/y fragment m/z as one dense array, the layout intensity models predict.

Layout ``[bond, ion type, charge, loss]``: bond k (0-based) splits residues ``0..k | k+1..n-1``, so
the b ion at bond k is b_{k+1} and the y ion is y_{n-k-1}. Computed with a cumulative sum of residue
masses, so one peptide costs a few numpy operations (called for every spectrum at load time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pyteomics import mass as _mass

from deepms.chem.notations import parse_proforma
from deepms.chem.peptide import H2O, PROTON, Peptide

ION_TYPES: tuple[str, ...] = ("b", "y")
NEUTRAL_LOSSES: dict[str, float] = {
    "H2O": H2O,
    "NH3": _mass.calculate_mass(formula="NH3"),
    "H3PO4": _mass.calculate_mass(formula="H3PO4"),
}
Loss = str | float | None


def _as_peptide(peptide: Peptide | str) -> Peptide:
    return peptide if isinstance(peptide, Peptide) else parse_proforma(peptide)


def _loss_masses(losses: Sequence[Loss]) -> np.ndarray:
    out = np.empty(len(losses), dtype=np.float64)
    for i, loss in enumerate(losses):
        if loss is None:
            out[i] = 0.0
        elif isinstance(loss, str):
            if loss not in NEUTRAL_LOSSES:
                raise ValueError(f"unknown neutral loss {loss!r}; known: {sorted(NEUTRAL_LOSSES)}")
            out[i] = NEUTRAL_LOSSES[loss]
        else:
            out[i] = float(loss)
    return out


def _charges(charges: Sequence[int]) -> np.ndarray:
    z = np.asarray(charges, dtype=np.float64)
    if z.ndim != 1 or np.any(z < 1) or np.any(z != np.round(z)):
        raise ValueError(f"fragment charges must be positive integers, got {charges!r}")
    return z


def fragment_mz(
    peptide: Peptide | str,
    charges: Sequence[int] = (1, 2),
    ion_types: Sequence[str] = ION_TYPES,
    losses: Sequence[Loss] = (None,),
) -> np.ndarray:
    """m/z of every fragment, float64 ``[len-1, len(ion_types), len(charges), len(losses)]``.

    m/z = (neutral fragment mass - loss + z * proton) / z; b = sum of prefix residues,
    y = sum of suffix residues + H2O. Losses are names in NEUTRAL_LOSSES, masses, or None (intact).
    """
    masses = _as_peptide(peptide).residue_masses()
    prefix = np.cumsum(masses)[:-1]
    total = masses.sum()
    neutral = np.empty((prefix.size, len(ion_types)), dtype=np.float64)
    for t, ion in enumerate(ion_types):
        if ion == "b":
            neutral[:, t] = prefix
        elif ion == "y":
            neutral[:, t] = total - prefix + H2O
        else:
            raise ValueError(f"unsupported ion type {ion!r}; supported: {ION_TYPES}")
    z = _charges(charges)[None, None, :, None]
    loss = _loss_masses(losses)[None, None, None, :]
    return (neutral[:, :, None, None] - loss + z * PROTON) / z


def fragment_mz_batch(peptides: Sequence[Peptide], charges: Sequence[int]) -> np.ndarray:
    """:func:`fragment_mz` of intact b/y ions for a batch at once: ``[B, bonds, b z.., y z..]``.

    The same formula (cumulative residue masses; y = total - prefix + H2O), vectorised over the
    batch because a per-peptide call costs more than the model on a small network. Rows of
    peptides shorter than the longest hold meaningless values past their last bond.
    """
    longest = max(len(p.sequence) for p in peptides)
    masses = np.zeros((len(peptides), longest))
    for i, peptide in enumerate(peptides):
        masses[i, : len(peptide.sequence)] = peptide.residue_masses()
    prefix = np.cumsum(masses, axis=1)[:, :-1, None]
    y = masses.sum(axis=1)[:, None, None] - prefix + H2O
    z = np.asarray(charges, dtype=np.float64)
    return np.concatenate([(prefix + z * PROTON) / z, (y + z * PROTON) / z], axis=-1)


@dataclass(frozen=True)
class Fragment:
    """One theoretical ion, for spectral libraries and plots."""

    ion_type: str
    number: int
    charge: int
    loss: Loss
    mz: float

    @property
    def label(self) -> str:
        """Short annotation such as ``y3``, ``b5-H2O``, ``y7^2``."""
        loss = "" if self.loss is None else f"-{self.loss}"
        charge = "" if self.charge == 1 else f"^{self.charge}"
        return f"{self.ion_type}{self.number}{loss}{charge}"


def fragment_ions(
    peptide: Peptide | str,
    charges: Sequence[int] = (1, 2),
    ion_types: Sequence[str] = ION_TYPES,
    losses: Sequence[Loss] = (None,),
) -> list[Fragment]:
    """Flat list ordered by ion type, ion number, charge, loss."""
    table = fragment_mz(peptide, charges, ion_types, losses)
    n_bonds = table.shape[0]
    out: list[Fragment] = []
    for t, ion in enumerate(ion_types):
        bonds = range(n_bonds) if ion == "b" else range(n_bonds - 1, -1, -1)
        for k in bonds:
            number = k + 1 if ion == "b" else n_bonds - k
            for c, z in enumerate(charges):
                for j, loss in enumerate(losses):
                    out.append(Fragment(ion, number, int(z), loss, float(table[k, t, c, j])))
    return out
