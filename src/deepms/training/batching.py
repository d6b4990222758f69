"""Length-bucketed batching (as in AlphaPeptDeep): batches of similar-length sequences waste
little padding, which matters for recurrent models on CPU.

Each epoch the indices are shuffled, cut into pools of ``pool`` batches, each pool sorted by length
and cut into batches, and the batches shuffled again. The order depends only on ``seed`` and the
epoch Lightning sets, so a resumed run sees the same batches as an uninterrupted one.

``batch_size`` is global: under DDP each rank takes its share of a batch (``batch[rank::world]``),
so a run on N processes makes the same optimisation steps on the same samples as a run on one, and
evaluation sees every sample exactly once. No DistributedSampler is needed (set Lightning's
``use_distributed_sampler=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class _EpochForwarder:
    """Lightning calls ``set_epoch`` on ``batch_sampler.sampler``, not on the batch sampler."""

    def __init__(self, owner: LengthBucketBatchSampler) -> None:
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Yield lists of dataset indices whose sequence lengths are close."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        pool: int = 50,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.pool = max(1, pool)
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.sampler = _EpochForwarder(self)

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this each epoch so the shuffle differs between epochs."""
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        n = len(self.lengths)
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        pool_size = self.batch_size * self.pool
        batches: list[list[int]] = []
        for start in range(0, n, pool_size):
            chunk = order[start : start + pool_size]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            for b in range(0, len(chunk), self.batch_size):
                batch = chunk[b : b + self.batch_size]
                if self.drop_last and len(batch) < self.batch_size:
                    continue
                batches.append(batch.tolist())
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        world_size, rank = _world()
        for batch in self._batches():
            if world_size > 1:
                if len(batch) < world_size:  # every rank needs at least one sample
                    batch = (batch * world_size)[:world_size]
                batch = batch[rank::world_size]
            yield batch

    def __len__(self) -> int:
        n = len(self.lengths)
        pool_size = self.batch_size * self.pool
        count = 0
        for start in range(0, n, pool_size):
            size = min(pool_size, n - start)
            count += size // self.batch_size if self.drop_last else -(-size // self.batch_size)
        return count


def bucketed_loader(
    dataset: Any,
    batch_size: int,
    shuffle: bool,
    collate_fn: Callable[[list[Any]], Any],
    pool: int = 50,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader over length buckets of ``dataset.lengths``.

    It has a private generator: creating its iterator then draws nothing from the global RNG, so
    dropout masks do not depend on when Lightning builds iterators (exact resume).
    """
    sampler = LengthBucketBatchSampler(dataset.lengths, batch_size, shuffle, pool, seed)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )
