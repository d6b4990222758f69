"""Numeric features of a peptide for sequence models, shared by every peptide task.

Residues become indices 1..20 (0 is padding). Modifications become per-position features, chosen
by ``mod_encoding``:

* ``vocabulary``: a multi-hot vector over ``Name@site`` keys fit on the training data; a
  modification outside it is refused (the model has no column for it);
* ``composition``: what the modification *is*, its elemental composition delta from Unimod
  (C, H, N, O, S, P and other elements, counts / 10), as DeepLC encodes it, so a model trained
  without a modification still predicts it from chemistry it has seen;
* ``both``: the vocabulary columns and the composition; an unseen modification gets no
  vocabulary column but its composition.

Every mode adds one channel with the summed mass shift (Da / 100). N-terminal modifications sit on
the first position, C-terminal ones on the last. The vocabulary and mode are saved with the model
(``to_dict``) so a checkpoint encodes new input exactly as in training.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, NamedTuple

import numpy as np

from deepms.errors import InvalidResidueError, UnknownModificationError

MOD_ENCODINGS = ("vocabulary", "composition", "both")
#: composition channels; an isotope counts as its element (13C as C), the rest go to "other"
COMPOSITION_ELEMENTS = ("C", "H", "N", "O", "S", "P")
COMPOSITION_CHANNELS = (*COMPOSITION_ELEMENTS, "other")
COMPOSITION_SCALE = 10.0


@cache
def composition_vector(mod: Any) -> np.ndarray:
    """float32 [7]: a modification's Unimod composition delta per channel, divided by 10."""
    from deepms.chem.unimod import get_modification_table

    out = np.zeros(len(COMPOSITION_CHANNELS), dtype=np.float32)
    for element, count in get_modification_table().composition(mod).items():
        base = element.lstrip("0123456789")
        column = COMPOSITION_ELEMENTS.index(base) if base in COMPOSITION_ELEMENTS else -1
        out[column] += count / COMPOSITION_SCALE
    out.flags.writeable = False  # cached: shared by every call
    return out


AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
RESIDUE_INDEX = {aa: i + 1 for i, aa in enumerate(AMINO_ACIDS)}
N_RESIDUE_TOKENS = len(AMINO_ACIDS) + 1  # + padding


def modification_keys(peptide: Any) -> list[tuple[int, str, float]]:
    """(position, "Name@site", mass) per modification; terminal mods sit on the end residues."""
    return [(position, key, mass) for position, key, mass, _ in _located_mods(peptide)]


def _located_mods(peptide: Any) -> list[tuple[int, str, float, Any]]:
    """(position, "Name@site", mass, modification) per modification of ``peptide``."""
    keys = []
    n = len(peptide.sequence)
    for slot, mod in enumerate(peptide.mods):
        if mod is None:
            continue
        if slot == 0:
            position, site = 0, "N-term"
        elif slot == n + 1:
            position, site = n - 1, "C-term"
        else:
            position, site = slot - 1, peptide.sequence[slot - 1]
        keys.append((position, f"{mod.name}@{site}", float(mod.monoisotopic_mass), mod))
    return keys


class EncodedBatch(NamedTuple):
    """Model inputs of a batch of peptides (numpy; ``torch.from_numpy`` shares the memory)."""

    residues: np.ndarray  # int64 [B, L], 0 = padding
    mods: np.ndarray  # float32 [B, L, n_mod_features], 0 on padding
    lengths: np.ndarray  # int64 [B]


def pad_encoded(
    encoded: Sequence[tuple[np.ndarray, np.ndarray]], n_mod_features: int
) -> EncodedBatch:
    """Pad per-peptide ``(residues, mods)`` (from :meth:`PeptideEncoder.encode`) into a batch.

    The one padding rule of every peptide model: training collates pad the arrays encoded once
    at set-up, predictors pad what :meth:`PeptideEncoder.encode_batch` encodes.
    """
    lengths = np.array([len(residues) for residues, _ in encoded], dtype=np.int64)
    longest = int(lengths.max()) if len(lengths) else 0
    residues = np.zeros((len(encoded), longest), dtype=np.int64)
    mods = np.zeros((len(encoded), longest, n_mod_features), dtype=np.float32)
    for i, (tokens, features) in enumerate(encoded):
        residues[i, : lengths[i]] = tokens
        mods[i, : lengths[i]] = features
    return EncodedBatch(residues, mods, lengths)


class PeptideEncoder:
    """Residue indices and modification features (``mod_encoding``: module doc)."""

    def __init__(self, modifications: Iterable[str] = (), mod_encoding: str = "vocabulary") -> None:
        if mod_encoding not in MOD_ENCODINGS:
            raise ValueError(f"unknown mod_encoding {mod_encoding!r}; use one of {MOD_ENCODINGS}")
        self.mod_encoding = mod_encoding
        self.modifications: list[str] = list(dict.fromkeys(modifications))

    @property
    def uses_vocabulary(self) -> bool:
        return self.mod_encoding != "composition"

    @property
    def uses_composition(self) -> bool:
        return self.mod_encoding != "vocabulary"

    @property
    def index(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.modifications)}

    @property
    def n_mod_features(self) -> int:
        """Vocabulary columns, then the composition channels (if used), then the mass shift."""
        return len(self.modifications) + self.uses_composition * len(COMPOSITION_CHANNELS) + 1

    def fit(self, peptides: Iterable[Any]) -> PeptideEncoder:
        """Add every modification seen in ``peptides`` to the vocabulary (sorted, reproducible);
        a composition-only encoder keeps no vocabulary."""
        if not self.uses_vocabulary:
            return self
        seen = set(self.modifications)
        for peptide in peptides:
            seen.update(key for _, key, _ in modification_keys(peptide))
        self.modifications = sorted(seen)
        return self

    def encode_residues(self, peptide: Any) -> np.ndarray:
        """int64 [L] residue indices."""
        try:
            return np.fromiter((RESIDUE_INDEX[aa] for aa in peptide.sequence), dtype=np.int64)
        except KeyError as err:
            raise InvalidResidueError(
                f"{peptide}: residue {err.args[0]!r} has no encoding (allowed: {AMINO_ACIDS})"
            ) from None

    def encode_modifications(self, peptide: Any) -> np.ndarray:
        """float32 [L, n_mod_features]: vocabulary entries, composition, mass-shift channel."""
        features = np.zeros((len(peptide.sequence), self.n_mod_features), dtype=np.float32)
        index, start = self.index, len(self.modifications)
        for position, key, mass, mod in _located_mods(peptide):
            if key in index:
                features[position, index[key]] = 1.0
            elif not self.uses_composition:
                raise UnknownModificationError(
                    f"{peptide}: modification {key} was not in the model's training vocabulary "
                    f"({', '.join(self.modifications) or 'none'}); a model trained with "
                    "mod_encoding=composition or both predicts it from its composition"
                )
            if self.uses_composition:
                features[position, start : start + len(COMPOSITION_CHANNELS)] += composition_vector(
                    mod
                )
            features[position, -1] += mass / 100.0
        return features

    def encode(self, peptide: Any) -> tuple[np.ndarray, np.ndarray]:
        """(residues int64 [L], modifications float32 [L, n_mod_features]) of one peptide."""
        residues = self.encode_residues(peptide)
        if peptide.mods.count(None) == len(peptide.mods):  # unmodified: skip the vocabulary
            return residues, np.zeros((len(residues), self.n_mod_features), dtype=np.float32)
        return residues, self.encode_modifications(peptide)

    def encode_batch(self, peptides: Sequence[Any]) -> EncodedBatch:
        """Residues and modifications of a batch, padded with zeros to the longest peptide."""
        return pad_encoded([self.encode(p) for p in peptides], self.n_mod_features)

    def to_dict(self) -> dict[str, Any]:
        return {"modifications": list(self.modifications), "mod_encoding": self.mod_encoding}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PeptideEncoder:
        """Checkpoints from before ``mod_encoding`` used the vocabulary."""
        return cls(state.get("modifications", ()), state.get("mod_encoding", "vocabulary"))
