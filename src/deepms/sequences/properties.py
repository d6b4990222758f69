"""Physicochemical property channels for proteins, the per-residue inputs Deep-RBPPred used.

Deep-RBPPred (Zheng et al. 2018, Sci Rep 8:15264) encodes each residue by hydrophobicity,
polarity, normalised van der Waals volume and charge (with polarisability and predicted structure,
which need external tools and are left out). The scales, as tabulated for the CTD descriptors
(Dubchak et al. 1995, PNAS 92:8700) that RBPPred builds on:

* hydrophobicity: Kyte & Doolittle (1982) J Mol Biol 157:105, hydropathy index;
* polarity: Grantham (1974) Science 185:862, polarity P;
* normalised van der Waals volume: Fauchère et al. (1988) Int J Pept Protein Res 32:269;
* charge: side-chain charge at pH 7 (D, E -1; K, R +1; H +0.09, the Henderson-Hasselbalch
  fraction protonated at pKa 6.0).

Each scale is standardised over the 20 residues (mean 0, sd 1) so no channel dominates by units;
an unknown residue X, resolved to 1/20 of each, then reads 0 on every channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepms.chem.alphabets import PROTEIN

_ORDER = PROTEIN.letters  # ACDEFGHIKLMNPQRSTVWY

# residue, Kyte-Doolittle hydropathy, Grantham polarity, Fauchère normalised vdW volume
_TABLE = """
A  1.8   8.1  1.00    C  2.5   5.5  2.43    D -3.5  13.0  2.78    E -3.5  12.3  3.78
F  2.8   5.2  5.89    G -0.4   9.0  0.00    H -3.2  10.4  4.66    I  4.5   5.2  4.00
K -3.9  11.3  4.77    L  3.8   4.9  4.00    M  1.9   5.7  4.43    N -3.5  11.6  2.95
P -1.6   8.0  2.72    Q -3.5  10.5  3.95    R -4.5  10.5  6.13    S -0.8   9.2  1.60
T -0.7   8.6  2.60    V  4.2   5.9  3.00    W -0.9   5.4  8.08    Y -1.3   6.2  6.47
"""
_ROWS = [_TABLE.split()[i : i + 4] for i in range(0, 80, 4)]
SCALES: dict[str, dict[str, float]] = {
    name: {row[0]: float(row[column]) for row in _ROWS}
    for column, name in enumerate(("hydrophobicity", "polarity", "vdw_volume"), start=1)
}
SCALES["charge"] = {**dict.fromkeys(_ORDER, 0.0), "D": -1.0, "E": -1.0, "K": 1.0, "R": 1.0}
SCALES["charge"]["H"] = 0.09
DEFAULT_PROPERTIES: tuple[str, ...] = ("hydrophobicity", "polarity", "vdw_volume", "charge")


def property_matrix(names: Sequence[str] = DEFAULT_PROPERTIES, standardise: bool = True):
    """float32 [20, len(names)]: each residue's value on each scale, rows in ``PROTEIN`` order."""
    unknown = [n for n in names if n not in SCALES]
    if unknown:
        raise ValueError(f"unknown property scale(s) {unknown}; known: {sorted(SCALES)}")
    matrix = np.array([[SCALES[n][aa] for n in names] for aa in _ORDER], dtype=np.float64)
    if standardise:
        matrix = (matrix - matrix.mean(0)) / matrix.std(0)
    return matrix.astype(np.float32)


def property_channels(
    sequence: str, names: Sequence[str] = DEFAULT_PROPERTIES, standardise: bool = True
) -> np.ndarray:
    """float32 [L, len(names)]: expected property values per residue (ambiguity-aware)."""
    return PROTEIN.profile(sequence) @ property_matrix(names, standardise)
