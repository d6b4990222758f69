"""Shared plumbing for sequence-task datamodules: loaders, extra test sets, lineage.

Tasks subclass :class:`SequenceDataModule`, fill ``self.datasets`` (``train``, ``val``, ``test``
and any extra held-out sets listed in ``self.test_parts``) in ``setup`` and describe the data in
``self._lineage``; batching and the lineage contract are the same for every sequence task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from deepms.sequences.dataset import PadCollate, SequenceDataset
from deepms.training.batching import LengthBucketBatchSampler

T = TypeVar("T")


def subsample(items: Sequence[T], limit: int | None, seed: int = 0) -> list[T]:
    """A seeded random ``limit`` of ``items`` in file order (files are often sorted by class, so
    the first N would be one class); all items when ``limit`` is None."""
    if not limit or len(items) <= limit:
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), int(limit), replace=False))
    return [items[i] for i in keep]


class SequenceDataModule(pl.LightningDataModule):
    """Length-bucketed loaders over ``self.datasets``; ``test_parts`` become test dataloaders."""

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        bucket_pool: int = 50,
        seed: int = 0,
        min_length: int | None = None,
    ) -> None:
        super().__init__()
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.bucket_pool = int(bucket_pool)
        self.seed = int(seed)
        self.collate = PadCollate(min_length)
        self.datasets: dict[str, SequenceDataset] = {}
        self.test_parts: list[str] = ["test"]
        self._lineage: dict[str, Any] = {}

    def lineage(self) -> dict[str, Any]:
        """Data sets with file sha256, split rule and sizes: logged to MLflow by the runner."""
        return self._lineage

    def sizes(self) -> dict[str, int]:
        return {part: len(ds) for part, ds in self.datasets.items()}

    def loader(self, dataset: SequenceDataset, shuffle: bool = False) -> DataLoader:
        """Batches of similar length (little padding) for any dataset, also at prediction."""
        sampler = LengthBucketBatchSampler(
            dataset.lengths, self.batch_size, shuffle=shuffle, pool=self.bucket_pool, seed=self.seed
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.collate,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.datasets["train"], shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.datasets["val"])

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        loaders = [self.loader(self.datasets[part]) for part in self.test_parts]
        return loaders[0] if len(loaders) == 1 else loaders
