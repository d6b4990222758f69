"""Group-aware train/val/test splits: the same peptide never lands in two splits (no leakage)."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence

import numpy as np

SPLIT_NAMES = ("train", "val", "test")


def group_uniform(group: Hashable, seed: int = 0) -> float:
    """Deterministic pseudo-uniform number in [0, 1) for a group (stable across runs/machines)."""
    digest = hashlib.blake2b(f"{seed}:{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def grouped_split(
    groups: Sequence[Hashable],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    names: Sequence[str] = SPLIT_NAMES,
) -> np.ndarray:
    """Label each item with a split name; all items of one group get the same label.

    A group's split depends only on (seed, group), not on the other groups or their order, so
    adding data never moves an existing peptide between splits. Fractions are met approximately
    (in expectation over groups, not items).
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if len(fractions) != len(names):
        raise ValueError(f"{len(fractions)} fractions for {len(names)} split names")
    if np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {fractions.tolist()}")
    edges = np.cumsum(fractions)[:-1]
    keys = [str(g) for g in groups]
    unique = {key: None for key in keys}
    uniform = np.array([group_uniform(key, seed) for key in unique], dtype=np.float64)
    bucket = dict(zip(unique, np.searchsorted(edges, uniform, side="right"), strict=True))
    labels = np.asarray(names)
    return labels[[bucket[key] for key in keys]] if keys else labels[:0]
