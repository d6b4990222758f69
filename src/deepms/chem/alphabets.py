"""Alphabets for protein, DNA and RNA, with one stated rule for every non-standard letter.

It lives in ``chem`` (below ``io``) because the FASTA reader checks letters against it; the
sequence package re-exports it (``from deepms.sequences import PROTEIN``).

A letter is resolved to a probability distribution over the alphabet's canonical letters, so the
one-hot encoding of an ambiguous letter is the uniform mix of what it may stand for and property
channels (``one_hot @ scale``) become the expected value. The rule, per alphabet:

* protein (20 canonical): U (selenocysteine) -> C and O (pyrrolysine) -> K, their closest
  standard residues; B = D|N, Z = E|Q, J = I|L (half each); X = any of the 20 (1/20 each).
  Index encodings give U, O their substitute's index and B, Z, J, X the shared "unknown" index.
* DNA (ACGT) / RNA (ACGU): U in DNA reads as T and T in RNA as U; IUPAC codes (R, Y, S, W, K, M,
  B, D, H, V, N) are uniform over their bases, so N = 0.25 each, as DeepBind pads and encodes it.

Letters are case-insensitive (soft-masked genome sequence is lower case); whitespace and a
terminal ``*`` (stop) are stripped; any other character is an error, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

PAD_INDEX = 0


@dataclass(frozen=True)
class Alphabet:
    """Canonical letters plus the substitution (alias) and ambiguity rules of one molecule type."""

    name: str
    letters: str
    aliases: dict[str, str] = field(default_factory=dict)  # letter -> one canonical letter
    ambiguity: dict[str, str] = field(default_factory=dict)  # letter -> letters it stands for
    complement: dict[str, str] = field(default_factory=dict)  # nucleic acids only

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def size(self) -> int:
        return len(self.letters)

    @property
    def n_tokens(self) -> int:
        """Index vocabulary size: padding (0), canonical letters (1..size), unknown (size + 1)."""
        return self.size + 2

    @property
    def unknown_index(self) -> int:
        return self.size + 1

    @cached_property
    def _tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        profile = np.zeros((256, self.size), dtype=np.float32)
        index = np.full(256, -1, dtype=np.int64)
        valid = np.zeros(256, dtype=bool)
        position = {letter: i for i, letter in enumerate(self.letters)}
        rules = {letter: letter for letter in self.letters}
        rules.update(self.aliases)
        for letter, meaning in {**rules, **self.ambiguity}.items():
            for code in {ord(letter.upper()), ord(letter.lower())}:
                valid[code] = True
                for target in meaning:
                    profile[code, position[target]] += 1.0 / len(meaning)
                single = len(meaning) == 1
                index[code] = position[meaning] + 1 if single else self.unknown_index
        return profile, index, valid

    def clean(self, sequence: str) -> str:
        """Upper-case, strip whitespace and a terminal ``*``; raise on letters with no rule."""
        text = "".join(sequence.split()).upper().rstrip("*")
        codes = np.frombuffer(text.encode("latin-1", "replace"), dtype=np.uint8)
        bad = ~self._tables[2][codes]
        if bad.any():
            letters = sorted({text[i] for i in np.flatnonzero(bad)})
            raise ValueError(f"letters {letters} are not {self.name} (no rule for them)")
        return text

    def _codes(self, sequence: str) -> np.ndarray:
        return np.frombuffer(self.clean(sequence).encode("latin-1"), dtype=np.uint8)

    def profile(self, sequence: str) -> np.ndarray:
        """float32 [L, size]: one-hot for canonical letters, the stated mix for ambiguous ones."""
        return self._tables[0][self._codes(sequence)]

    def indices(self, sequence: str) -> np.ndarray:
        """int64 [L]: 1..size for canonical letters (and aliases), ``unknown_index`` otherwise."""
        return self._tables[1][self._codes(sequence)]

    def reverse_complement(self, sequence: str) -> str:
        """Reverse complement of a nucleic-acid sequence (ambiguity codes complemented too)."""
        if not self.complement:
            raise ValueError(f"{self.name} has no complement")
        return "".join(self.complement.get(c, "N") for c in reversed(self.clean(sequence)))


_IUPAC = {
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}
_IUPAC_COMPLEMENT = dict(zip("ACGTURYSWKMBDHVN", "TGCAAYRSWMKVHDBN", strict=True))

PROTEIN = Alphabet(
    name="protein",
    letters="ACDEFGHIKLMNPQRSTVWY",
    aliases={"U": "C", "O": "K"},
    ambiguity={"B": "DN", "Z": "EQ", "J": "IL", "X": "ACDEFGHIKLMNPQRSTVWY"},
)
DNA = Alphabet(
    name="dna",
    letters="ACGT",
    aliases={"U": "T"},
    ambiguity=_IUPAC,
    complement=_IUPAC_COMPLEMENT,
)
RNA = Alphabet(
    name="rna",
    letters="ACGU",
    aliases={"T": "U"},
    ambiguity={k: v.replace("T", "U") for k, v in _IUPAC.items()},
    complement={**_IUPAC_COMPLEMENT, "A": "U", "T": "A"},
)
ALPHABETS = {a.name: a for a in (PROTEIN, DNA, RNA)}


def get_alphabet(name: str) -> Alphabet:
    """``"protein"``, ``"dna"`` or ``"rna"``."""
    try:
        return ALPHABETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown alphabet {name!r}; known: {sorted(ALPHABETS)}") from None
