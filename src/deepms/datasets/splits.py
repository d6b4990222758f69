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


def most_held_out(groups: Sequence[Hashable], labels: Sequence[str]) -> np.ndarray:
    """Mask of items to keep when sources label one group differently (e.g. two files with their
    own fractions): each group stays only in its most held-out split (test > val > train; any
    other label, an extra test set such as deeploc's ``hard``, ranks with the most held out)."""
    rank = {name: i for i, name in enumerate(SPLIT_NAMES)}
    # None (a row a nested fold leaves out) never outranks a real part
    ranks = [-1 if label is None else rank.get(str(label), len(SPLIT_NAMES)) for label in labels]
    best: dict[str, int] = {}
    for group, r in zip(groups, ranks, strict=True):
        best[str(group)] = max(best.get(str(group), r), r)
    return np.array([r >= best[str(g)] for g, r in zip(groups, ranks, strict=True)], dtype=bool)


def subset_groups(
    groups: Sequence[Hashable],
    fraction: float = 1.0,
    max_groups: int | None = None,
    seed: int = 0,
    salt: str = "subset",
) -> np.ndarray:
    """Mask keeping whole groups: about ``fraction`` of them and at most ``max_groups``.

    The choice depends only on (seed, salt, group), like :func:`grouped_split`, so a fraction 0.1
    is a subset of 0.2; ``salt`` keeps it independent of the split itself (same seed).
    """
    score = {str(g): group_uniform(f"{salt}:{g}", seed) for g in groups}
    kept = {key for key, u in score.items() if u < fraction}
    if max_groups is not None:
        kept = set(sorted(kept, key=score.__getitem__)[:max_groups])
    return np.array([str(g) in kept for g in groups], dtype=bool)
