"""Numeric features of a peptide for sequence models, shared by every peptide task.

Residues become indices 1..20 (0 is padding). Modifications become a multi-hot vector over a
vocabulary of ``Name@site`` keys plus one channel with the summed mass shift (Da / 100), so a model
sees both identity and mass. N-terminal modifications sit on the first position, C-terminal ones on
the last. The vocabulary is saved with the model (``to_dict``) so a checkpoint can encode new input
exactly as in training, and refuses modifications it never saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from deepms.errors import InvalidResidueError, UnknownModificationError

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
RESIDUE_INDEX = {aa: i + 1 for i, aa in enumerate(AMINO_ACIDS)}
N_RESIDUE_TOKENS = len(AMINO_ACIDS) + 1  # + padding


def modification_keys(peptide: Any) -> list[tuple[int, str, float]]:
    """(position, "Name@site", mass) per modification; terminal mods sit on the end residues."""
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
        keys.append((position, f"{mod.name}@{site}", float(mod.monoisotopic_mass)))
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
    """Residue indices and modification features, with a modification vocabulary fit on data."""

    def __init__(self, modifications: Iterable[str] = ()) -> None:
        self.modifications: list[str] = list(dict.fromkeys(modifications))

    @property
    def index(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.modifications)}

    @property
    def n_mod_features(self) -> int:
        return len(self.modifications) + 1

    def fit(self, peptides: Iterable[Any]) -> PeptideEncoder:
        """Add every modification seen in ``peptides`` to the vocabulary (sorted, reproducible)."""
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
        """float32 [L, n_mod_features]: multi-hot vocabulary entries and the mass-shift channel."""
        features = np.zeros((len(peptide.sequence), self.n_mod_features), dtype=np.float32)
        index = self.index
        for position, key, mass in modification_keys(peptide):
            if key not in index:
                raise UnknownModificationError(
                    f"{peptide}: modification {key} was not in the model's training vocabulary "
                    f"({', '.join(self.modifications) or 'none'})"
                )
            features[position, index[key]] = 1.0
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
        return {"modifications": list(self.modifications)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PeptideEncoder:
        return cls(state.get("modifications", ()))
