"""Sequence -> numbers: one-hot, indices for learned embeddings, property channels; crop and pad.

:class:`SequenceEncoder` is configured once (alphabet, channels, length rule) and saved with the
model (``to_dict``), so prediction encodes new sequences exactly as training did.

Length rule: sequences longer than ``max_length`` are cropped by ``crop`` -- ``start`` keeps the
N-terminus / 5' end, ``end`` the other end, ``center`` the middle, ``ends`` the first and last
``max_length // 2`` (DeepLoc's 500 + 500: sorting signals sit at both termini). Batches are padded
to their longest member (or ``pad_to``) with zeros (index 0 = padding) and carry a boolean mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deepms.chem.alphabets import get_alphabet
from deepms.sequences.properties import DEFAULT_PROPERTIES, property_matrix

CROP_MODES = ("start", "end", "center", "ends")
ENCODINGS = ("onehot", "index", "properties", "onehot+properties")


def crop(sequence: Any, max_length: int | None, mode: str = "start") -> Any:
    """Cut a string or array (along axis 0) to ``max_length`` by the stated ``mode``."""
    if mode not in CROP_MODES:
        raise ValueError(f"unknown crop mode {mode!r}; use one of {CROP_MODES}")
    n = len(sequence)
    if max_length is None or n <= max_length:
        return sequence
    if mode == "start":
        return sequence[:max_length]
    if mode == "end":
        return sequence[n - max_length :]
    if mode == "center":
        start = (n - max_length) // 2
        return sequence[start : start + max_length]
    head = max_length - max_length // 2
    tail = sequence[n - max_length // 2 :] if max_length // 2 else sequence[:0]
    if isinstance(sequence, str):
        return sequence[:head] + tail
    return np.concatenate([sequence[:head], tail])


def pad_batch(
    arrays: Sequence[np.ndarray], pad_to: int | None = None, value: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Stack [L_i, ...] arrays into [B, L, ...] plus a bool [B, L] mask of real positions."""
    if not arrays:
        raise ValueError("pad_batch needs at least one array")
    longest = max(len(a) for a in arrays)
    length = max(longest, pad_to or 0)
    first = arrays[0]
    out = np.full((len(arrays), length, *first.shape[1:]), value, dtype=first.dtype)
    mask = np.zeros((len(arrays), length), dtype=bool)
    for i, array in enumerate(arrays):
        out[i, : len(array)] = array
        mask[i, : len(array)] = True
    return out, mask


class SequenceEncoder:
    """Encode sequences of one alphabet into a fixed channel layout.

    ``encoding``: ``onehot`` (float [L, |alphabet|]), ``index`` (int64 [L], 0 = padding, for an
    embedding layer), ``properties`` (protein only: float [L, len(properties)]) or
    ``onehot+properties`` (both, concatenated).
    """

    def __init__(
        self,
        alphabet: str = "protein",
        encoding: str = "onehot",
        max_length: int | None = None,
        crop: str = "start",
        properties: Sequence[str] = DEFAULT_PROPERTIES,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; use one of {ENCODINGS}")
        if crop not in CROP_MODES:
            raise ValueError(f"unknown crop mode {crop!r}; use one of {CROP_MODES}")
        self.alphabet = get_alphabet(alphabet)
        if "properties" in encoding and self.alphabet.name != "protein":
            raise ValueError("property channels are defined for proteins only")
        self.encoding = encoding
        self.max_length = int(max_length) if max_length else None
        self.crop = crop
        self.properties = tuple(properties)
        self._scales = property_matrix(self.properties) if "properties" in encoding else None

    @property
    def n_channels(self) -> int:
        """Channels per position (for ``index``: the vocabulary size, padding included)."""
        if self.encoding == "index":
            return self.alphabet.n_tokens
        channels = 0 if self.encoding == "properties" else self.alphabet.size
        return channels + (len(self.properties) if self._scales is not None else 0)

    @property
    def is_index(self) -> bool:
        return self.encoding == "index"

    def prepare(self, sequence: str) -> str:
        """Clean (stated letter rule) and crop (stated length rule)."""
        return crop(self.alphabet.clean(sequence), self.max_length, self.crop)

    def encode(self, sequence: str) -> np.ndarray:
        """int64 [L] for ``index``, else float32 [L, n_channels]."""
        text = self.prepare(sequence)
        if self.is_index:
            return self.alphabet.indices(text)
        profile = self.alphabet.profile(text)
        if self._scales is None:
            return profile
        props = profile @ self._scales
        return props if self.encoding == "properties" else np.concatenate([profile, props], 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alphabet": self.alphabet.name,
            "encoding": self.encoding,
            "max_length": self.max_length,
            "crop": self.crop,
            "properties": list(self.properties),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> SequenceEncoder:
        return cls(**state)
