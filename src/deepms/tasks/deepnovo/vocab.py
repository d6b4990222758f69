"""The residue vocabulary of de novo sequencing: which tokens a model may write, and their masses.

Token 0 is padding and token 1 end-of-sequence; then one token per residue form, written as a
UNIMOD bracket (``A``, ``C[UNIMOD:4]``, ``M[UNIMOD:35]``, N-terminal ``[UNIMOD:1]-``), so a
decoded token list joins into a string :func:`deepms.chem.parse_unimod_bracket` reads. Masses come
from the shared chemistry (:data:`RESIDUE_MASSES` + the Unimod table), never typed in here.

Rules (stated in the docs, logged at build time):

- ``equate_il`` (default): I and L have the same mass and no fragment separates them, so I is
  read as L and the model writes L for both (Casanovo and DeepNovo do the same).
- cysteine is carbamidomethylated (fixed modification): ``C[UNIMOD:4]`` is a token, plain ``C``
  is not; with ``fixed_cysteine`` (default) a label's plain C is read as ``C[UNIMOD:4]``.
- oxidised methionine ``M[UNIMOD:35]`` is always a token; other modified residues the data carries
  are added by name (``extra``), or from the training split when they occur at least ``min_count``
  times (:func:`count_tokens`). A label with any other residue form cannot be encoded.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from deepms.chem import RESIDUE_MASSES, Peptide, get_modification_table, parse_unimod_bracket
from deepms.errors import PeptideParseError

log = logging.getLogger(__name__)

PAD, EOS = "<pad>", "<eos>"
SPECIAL = (PAD, EOS)
PAD_ID, EOS_ID = 0, 1
CAM_ID, OXIDATION_ID = 4, 35
STANDARD = "ACDEFGHIKLMNPQRSTVWY"


class UnknownResidueError(PeptideParseError):
    """A label holds a residue form that is not in the vocabulary (counted, or raised)."""


def residue_tokens(peptide: Peptide) -> list[str]:
    """Token strings of a peptide, N-terminal modification first; C-terminal ones are refused."""
    n = len(peptide.sequence)
    if peptide.mods and peptide.mods[n + 1] is not None:
        raise UnknownResidueError(f"{peptide}: C-terminal modifications are not in the vocabulary")
    tokens = [f"[{peptide.mods[0].accession}]-"] if peptide.mods and peptide.mods[0] else []
    for i, aa in enumerate(peptide.sequence, start=1):
        mod = peptide.mods[i] if peptide.mods else None
        tokens.append(aa if mod is None else f"{aa}[{mod.accession}]")
    return tokens


def token_mass(token: str) -> float:
    """Monoisotopic mass a token adds: residue + modification (0 for special tokens)."""
    if token in SPECIAL:
        return 0.0
    if token.endswith("-"):  # N-terminal modification
        return get_modification_table().get(token[1:-2]).monoisotopic_mass
    aa, _, rest = token.partition("[")
    mass = RESIDUE_MASSES[aa]
    if rest:
        mass += get_modification_table().get(rest.rstrip("]")).monoisotopic_mass
    return float(mass)


def normalise_token(token: str) -> str:
    """``Malonyl@K``, ``K[Malonyl]`` or ``K[UNIMOD:747]`` -> ``K[UNIMOD:747]``; ``Acetyl@N-term``
    -> ``[UNIMOD:1]-``: config lists may use names."""
    token = token.strip()
    table = get_modification_table()
    if "@" in token:
        name, _, site = token.rpartition("@")
        if site.lower() in ("n-term", "nterm"):
            return f"[{table.get(name, terminus='N-term').accession}]-"
        return f"{site}[{table.get(name, residue=site).accession}]"
    if token.endswith("-"):
        return f"[{table.get(token[1:-2], terminus='N-term').accession}]-"
    aa, _, rest = token.partition("[")
    return aa if not rest else f"{aa}[{table.get(rest.rstrip(']'), residue=aa).accession}]"


@dataclass
class Vocabulary:
    """Token strings and masses; rebuilt from :meth:`to_dict` (a checkpoint hyperparameter)."""

    extra: Sequence[str] = ()
    equate_il: bool = True
    fixed_cysteine: bool = True
    tokens: list[str] = field(init=False)

    def __post_init__(self) -> None:
        residues = [aa for aa in STANDARD if not (self.equate_il and aa == "I")]
        residues = [f"C[UNIMOD:{CAM_ID}]" if aa == "C" else aa for aa in residues]
        residues.insert(residues.index("M") + 1, f"M[UNIMOD:{OXIDATION_ID}]")
        extra = [normalise_token(t) for t in self.extra]
        self.extra_tokens = sorted(set(extra) - set(residues))
        self.tokens = [*SPECIAL, *residues, *self.extra_tokens]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.masses = [token_mass(t) for t in self.tokens]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def n_terminal_ids(self) -> list[int]:
        """Tokens allowed only at the first position (N-terminal modifications)."""
        return [i for i, t in enumerate(self.tokens) if t.endswith("-")]

    @property
    def aa_masses(self) -> dict[str, float]:
        """Residue token -> mass, the mapping the de novo metrics match residues with."""
        return {t: m for t, m in zip(self.tokens, self.masses, strict=True) if t not in SPECIAL}

    def label_tokens(self, peptide: Peptide) -> list[str]:
        """The peptide's tokens under this vocabulary's rules (I -> L, plain C -> CAM)."""
        tokens = residue_tokens(peptide)
        if self.equate_il:
            tokens = [("L" + t[1:]) if t.startswith("I") else t for t in tokens]
        if self.fixed_cysteine:
            tokens = [f"C[UNIMOD:{CAM_ID}]" if t == "C" else t for t in tokens]
        return tokens

    def encode(self, peptide: Peptide) -> list[int]:
        """Token ids (no EOS); :class:`UnknownResidueError` names the residue form it lacks."""
        tokens = self.label_tokens(peptide)
        missing = [t for t in tokens if t not in self.index]
        if missing:
            raise UnknownResidueError(
                f"{peptide}: residue {missing[0]} is not in the vocabulary "
                "(add it to data.vocabulary.extra_modifications or lower min_count)"
            )
        return [self.index[t] for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Token strings up to the first EOS, padding skipped."""
        out = []
        for i in ids:
            if int(i) == EOS_ID:
                break
            if int(i) != PAD_ID:
                out.append(self.tokens[int(i)])
        return out

    def to_peptide(self, tokens: Sequence[str]) -> Peptide:
        """A decoded token list as a :class:`Peptide` (an N-term token must come first)."""
        return parse_unimod_bracket("".join(tokens))

    def to_dict(self) -> dict[str, Any]:
        return {
            "extra": list(self.extra_tokens),
            "equate_il": self.equate_il,
            "fixed_cysteine": self.fixed_cysteine,
            "tokens": list(self.tokens),
            "masses": list(self.masses),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        """Rebuild and check that the stored tokens and masses are what this code builds."""
        vocab = cls(list(data.get("extra", ())), bool(data["equate_il"]), data["fixed_cysteine"])
        stored = data.get("tokens")
        if stored is not None and list(stored) != vocab.tokens:
            raise ValueError(f"stored vocabulary {stored} differs from the rebuilt {vocab.tokens}")
        masses = data.get("masses")
        if masses is not None and any(
            abs(a - b) > 1e-6 for a, b in zip(masses, vocab.masses, strict=True)
        ):
            raise ValueError("stored token masses differ from the installed Unimod table")
        return vocab


def count_tokens(peptides: Iterable[Peptide], equate_il: bool = True) -> Counter:
    """How often each residue form occurs (I read as L), for ``extra_modifications: auto``."""
    probe = Vocabulary(equate_il=equate_il)
    counts: Counter = Counter()
    for peptide in peptides:
        try:
            counts.update(probe.label_tokens(peptide))
        except UnknownResidueError:
            continue
    return counts


def build_vocabulary(
    extra_modifications: str | Sequence[str] = "auto",
    min_count: int = 20,
    equate_il: bool = True,
    fixed_cysteine: bool = True,
    training_peptides: Iterable[Peptide] = (),
) -> Vocabulary:
    """The vocabulary from config: explicit extra tokens, or ``auto`` (modified residues of the
    training peptides seen at least ``min_count`` times)."""
    if extra_modifications == "auto":
        counts = count_tokens(training_peptides, equate_il)
        base = set(Vocabulary(equate_il=equate_il).tokens)
        extra = [t for t, n in counts.items() if n >= min_count and t not in base and "[" in t]
    else:
        extra = list(extra_modifications or ())
    vocab = Vocabulary(extra, equate_il, fixed_cysteine)
    log.info(
        "deepnovo vocabulary: %d tokens; I/L %s; C = C[UNIMOD:4] (fixed); extra %s",
        len(vocab),
        "read as one (L)" if equate_il else "kept apart",
        vocab.extra_tokens,
    )
    return vocab
