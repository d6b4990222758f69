"""Length-bucketed batching: every index once per epoch, similar lengths together."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.training.batching import LengthBucketBatchSampler


def test_each_index_exactly_once_and_len_matches() -> None:
    lengths = np.random.default_rng(0).integers(7, 30, size=203)
    sampler = LengthBucketBatchSampler(lengths, batch_size=16, pool=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(203))


def test_batches_are_length_homogeneous() -> None:
    lengths = np.repeat([8, 20], 64)  # two lengths, one pool holds everything
    sampler = LengthBucketBatchSampler(lengths, batch_size=32, pool=10, seed=0)
    for batch in sampler:
        assert len({lengths[i] for i in batch}) == 1


def test_epochs_differ_but_are_reproducible() -> None:
    lengths = np.arange(100) % 13 + 7
    first = LengthBucketBatchSampler(lengths, 8, seed=3)
    second = LengthBucketBatchSampler(lengths, 8, seed=3)
    epoch0 = list(first)
    assert epoch0 == list(second)
    first.set_epoch(1)
    assert list(first) != epoch0


def test_rejects_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        LengthBucketBatchSampler([5, 6], batch_size=0)


def test_lightning_style_set_epoch_reaches_the_batch_sampler() -> None:
    """Lightning calls set_epoch on ``batch_sampler.sampler``; the order must then change."""
    sampler = LengthBucketBatchSampler(np.arange(64) % 9 + 7, 8, seed=5)
    first = list(sampler)
    sampler.sampler.set_epoch(3)
    assert sampler.epoch == 3 and list(sampler) != first


def test_ddp_ranks_split_each_global_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import deepms.training.batching as batching

    lengths = np.arange(50) % 11 + 7
    single = list(LengthBucketBatchSampler(lengths, 8, seed=2))
    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(batching, "_world", lambda rank=rank: (2, rank))
        shards.append(list(LengthBucketBatchSampler(lengths, 8, seed=2)))
    assert len(shards[0]) == len(shards[1]) == len(single)
    for whole, a, b in zip(single, *shards, strict=True):
        assert sorted(a + b) == sorted(whole)  # same samples, same step, split across ranks
