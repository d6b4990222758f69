"""An immutable, value-equal modified peptide: the one representation every notation parses into.

Pyro-glu rule: pyro-glu (Unimod 28 ``Gln->pyro-Glu``, 27 ``Glu->pyro-Glu``) is always stored as
a *residue* modification on the first residue (Q or E), never as an N-term modification. Tools
write it either way (MS2PIP ``1|Pyro_glu`` or ``0|Pyro_glu``, ProForma ``[Gln->pyro-Glu]-Q...``);
moving it in the constructor makes all of them compare equal and print as ``Q[Gln->pyro-Glu]...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pyteomics import mass as _mass

from deepms.chem.unimod import Modification, get_modification_table
from deepms.errors import InvalidResidueError, PeptideParseError

# J (I/L ambiguity) has a mass in pyteomics but is not a residue of a real peptide.
RESIDUE_MASSES: dict[str, float] = {aa: m for aa, m in _mass.std_aa_mass.items() if aa != "J"}
PROTON: float = _mass.nist_mass["H+"][0][0]
H2O: float = _mass.calculate_mass(formula="H2O")
PYRO_GLU_IDS = frozenset({27, 28})


@dataclass(frozen=True)
class Peptide:
    """Plain sequence plus one optional modification per site.

    ``mods`` has ``len(sequence) + 2`` entries: ``[0]`` N-term, ``[1..n]`` residues,
    ``[n+1]`` C-term.
    An empty ``mods`` means unmodified.
    """

    sequence: str
    mods: tuple[Modification | None, ...] = ()

    def __post_init__(self) -> None:
        seq = self.sequence
        if not isinstance(seq, str) or not seq:
            raise PeptideParseError(f"peptide sequence {seq!r}: empty or not a string")
        for i, aa in enumerate(seq):
            if aa not in RESIDUE_MASSES:
                raise InvalidResidueError(
                    f"peptide sequence {seq!r}: residue {aa!r} at position {i + 1} is not a "
                    f"standard amino acid (allowed: {''.join(sorted(RESIDUE_MASSES))})"
                )
        mods = tuple(self.mods) if self.mods else (None,) * (len(seq) + 2)
        if len(mods) != len(seq) + 2:
            raise PeptideParseError(
                f"peptide sequence {seq!r}: mods has {len(mods)} entries, expected {len(seq) + 2}"
            )
        first = mods[0]
        if first is not None and first.unimod_id in PYRO_GLU_IDS and mods[1] is None:
            mods = (None, first, *mods[2:])
        object.__setattr__(self, "mods", mods)

    @classmethod
    def unmodified(cls, sequence: str) -> Peptide:
        return cls(sequence)

    @property
    def length(self) -> int:
        return len(self.sequence)

    def __len__(self) -> int:
        return len(self.sequence)

    @property
    def is_modified(self) -> bool:
        return any(m is not None for m in self.mods)

    @cached_property
    def _masses(self) -> np.ndarray:
        masses = np.array([RESIDUE_MASSES[aa] for aa in self.sequence], dtype=np.float64)
        for i, mod in enumerate(self.mods):
            if mod is not None:
                masses[min(max(i - 1, 0), len(masses) - 1)] += mod.monoisotopic_mass
        masses.setflags(write=False)
        return masses

    def residue_masses(self) -> np.ndarray:
        """Residue masses + mods (N-term mod on residue 1, C-term on residue n); read-only."""
        return self._masses

    @cached_property
    def monoisotopic_mass(self) -> float:
        """Neutral monoisotopic mass (residues + mods + water)."""
        return float(self._masses.sum() + H2O)

    def precursor_mz(self, charge: int) -> float:
        if charge < 1:
            raise ValueError(f"precursor charge must be >= 1, got {charge}")
        return (self.monoisotopic_mass + charge * PROTON) / charge

    def to_proforma(self) -> str:
        """ProForma 2.0 with Unimod PSI-MS names, e.g. ``[Acetyl]-PEPM[Oxidation]K``."""
        n = len(self.sequence)
        parts = [f"[{self.mods[0].name}]-"] if self.mods[0] is not None else []
        for i, aa in enumerate(self.sequence, start=1):
            mod = self.mods[i]
            parts.append(aa if mod is None else f"{aa}[{mod.name}]")
        if self.mods[n + 1] is not None:
            parts.append(f"-[{self.mods[n + 1].name}]")
        return "".join(parts)

    def __str__(self) -> str:
        return self.to_proforma()

    def __repr__(self) -> str:
        return f"Peptide({self.to_proforma()!r})"

    def with_fixed_mod(self, mod: Modification | str, residues: str) -> Peptide:
        """Put ``mod`` on every residue in ``residues`` that has no mod yet (e.g. CAM on C)."""
        mods = list(self.mods)
        for i, aa in enumerate(self.sequence, start=1):
            if aa in residues and mods[i] is None:
                mods[i] = mod if isinstance(mod, Modification) else _lookup(mod, aa)
        return Peptide(self.sequence, tuple(mods))


def _lookup(name: str, residue: str) -> Modification:
    return get_modification_table().get(name, residue=residue)
