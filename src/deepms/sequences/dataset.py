"""A map-style dataset of encoded sequences with per-sequence targets, and its padding collate.

Encoding happens per item (a lookup table, cheap) rather than up front: 10k proteins x 1000
positions x 24 channels would be ~1 GB of float32 held for the whole run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from deepms.sequences.encoding import SequenceEncoder, pad_batch


class SequenceDataset(Dataset):
    """Sequences, their identifiers and named target arrays (one row per sequence)."""

    def __init__(
        self,
        identifiers: Sequence[str],
        sequences: Sequence[str],
        encoder: SequenceEncoder,
        targets: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        if len(identifiers) != len(sequences):
            raise ValueError(f"{len(identifiers)} identifiers for {len(sequences)} sequences")
        self.identifiers = list(identifiers)
        self.sequences = list(sequences)
        self.encoder = encoder
        self.targets = {k: np.asarray(v) for k, v in (targets or {}).items()}
        for name, values in self.targets.items():
            if len(values) != len(self.sequences):
                raise ValueError(f"target {name!r}: {len(values)} rows for {len(sequences)}")
        limit = encoder.max_length or np.inf
        self.lengths = [int(min(len(s), limit)) for s in self.sequences]

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {
            "x": self.encoder.encode(self.sequences[index]),
            "id": self.identifiers[index],
        }
        item.update({name: values[index] for name, values in self.targets.items()})
        return item


def collate_sequences(items: list[dict[str, Any]], pad_to: int | None = None) -> dict[str, Any]:
    """Pad ``x`` to the longest item (at least ``pad_to``); targets become tensors, ids a list."""
    x, mask = pad_batch([it["x"] for it in items], pad_to)
    batch: dict[str, Any] = {
        "x": torch.from_numpy(x),
        "mask": torch.from_numpy(mask),
        "lengths": torch.tensor([len(it["x"]) for it in items]),
        "ids": [it["id"] for it in items],
    }
    for key in items[0]:
        if key not in ("x", "id"):
            batch[key] = torch.as_tensor(np.stack([np.asarray(it[key]) for it in items]))
    return batch


class PadCollate:
    """Picklable ``collate_fn`` with a minimum padded length (conv kernels need a few positions)."""

    def __init__(self, pad_to: int | None = None) -> None:
        self.pad_to = pad_to

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_sequences(items, self.pad_to)
