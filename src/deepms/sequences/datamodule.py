"""Shared plumbing of the sequence-task datamodules: set-up, splits, datasets, loaders, lineage.

Tasks subclass :class:`SequenceDataModule`, read their records (reader, labels) in ``setup``, split
them (:meth:`~SequenceDataModule._split_by_similarity` or their own rule), hand the parts to
:meth:`~SequenceDataModule._set_datasets` and describe the data in ``self._lineage``; what a record
becomes (:meth:`~SequenceDataModule._targets`), batching and the lineage contract are shared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from deepms.datasets.registry import get_dataset, resolve
from deepms.datasets.splits import SPLIT_NAMES
from deepms.sequences.dataset import PadCollate, SequenceDataset
from deepms.sequences.similarity import SimilaritySplit, similarity_split
from deepms.training.batching import LengthBucketBatchSampler

if TYPE_CHECKING:
    from deepms.io.fasta import SequenceRecord
    from deepms.sequences.encoding import SequenceEncoder

T = TypeVar("T")
#: proteins linked when they share this share of the shorter one's k-mers (the tasks' defaults)
SIMILARITY = {"k": 5, "measure": "containment", "threshold": 0.1}


def subsample(items: Sequence[T], limit: int | None, seed: int = 0) -> list[T]:
    """A seeded random ``limit`` of ``items`` in file order (files are often sorted by class, so
    the first N would be one class); all items when ``limit`` is None."""
    if not limit or len(items) <= limit:
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), int(limit), replace=False))
    return [items[i] for i in keep]


def partition(
    items: Iterable[T], labels: Iterable[Any], names: Sequence[str]
) -> dict[str, list[T]]:
    """Items grouped by their split label (every name present, file order kept within a part)."""
    parts: dict[str, list[T]] = {name: [] for name in names}
    for item, label in zip(items, labels, strict=True):
        parts[str(label)].append(item)
    return parts


def catalogue_checksums(dataset: str) -> dict[str, dict[str, str]]:
    """``{dataset: {path: sha256}}`` of a catalogued data set, as lineages record it."""
    return {dataset: {f.path: f.sha256 for f in get_dataset(dataset).files}}


class SequenceDataModule(pl.LightningDataModule):
    """Length-bucketed loaders over ``self.datasets``; ``test_parts`` become test dataloaders."""

    #: set by the subclass: how its sequences are encoded
    encoder: SequenceEncoder
    #: set by the subclass when it reads a catalogued data set (:meth:`_resolve`)
    dataset: str
    #: a short name of the split rule (a property of the subclass)
    split_name: str
    #: set by a subclass that splits by similarity: k, measure, threshold (defaults SIMILARITY)
    similarity: dict[str, Any]

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        bucket_pool: int = 50,
        seed: int = 0,
        min_length: int | None = None,
        *,
        split: dict[str, Any] | None = None,
        mirror: str | None = None,
        cache_dir: str | None = None,
        limit: int | None = None,
        on_error: str = "raise",
    ) -> None:
        """The settings every sequence task's data config has; ``split`` is its split block (the
        task reads its fractions), whose ``seed`` seeds the split, subsets and batch order."""
        super().__init__()
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.bucket_pool = int(bucket_pool)
        self.split_settings = dict(split or {})
        self.seed = int(self.split_settings.get("seed", seed))
        self.collate = PadCollate(min_length)
        self.mirror = Path(mirror) if mirror else None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.limit = limit
        self.on_error = on_error
        self.datasets: dict[str, SequenceDataset] = {}
        self.test_parts: list[str] = ["test"]
        self._lineage: dict[str, Any] = {}

    def lineage(self) -> dict[str, Any]:
        """Data sets with file sha256, split rule and sizes: logged to MLflow by the runner."""
        return self._lineage

    def sizes(self) -> dict[str, int]:
        return {part: len(ds) for part, ds in self.datasets.items()}

    # --- set-up shared by the tasks -------------------------------------------------------------

    def _resolve(self) -> dict[str, Path]:
        """Local paths of ``self.dataset``'s files (mirror or cache, checked against sha256)."""
        return resolve(self.dataset, mirror=self.mirror, cache_dir=self.cache_dir)

    def _subsample(self, items: Sequence[T]) -> list[T]:
        """The configured ``limit`` (tiny runs) as a seeded random subset."""
        return subsample(items, self.limit, self.seed)

    def _split_by_similarity(
        self,
        records: list[SequenceRecord],
        fractions: Sequence[float],
        names: Sequence[str] = SPLIT_NAMES,
    ) -> tuple[dict[str, list[SequenceRecord]], SimilaritySplit]:
        """Whole similarity clusters (``self.similarity``'s rule) per part, and the split."""
        split = similarity_split(
            [r.sequence for r in records], fractions, seed=self.seed, names=names, **self.similarity
        )
        return partition(records, split.labels, names), split

    def _targets(self, records: list[SequenceRecord]) -> dict[str, np.ndarray]:
        """Target arrays of ``records``; default: a binary ``label`` (0/1) as float32."""
        return {"label": np.array([r.label for r in records], dtype=np.float32)}

    def _dataset(self, records: list[SequenceRecord]) -> SequenceDataset:
        return SequenceDataset(
            [r.identifier for r in records],
            [r.sequence for r in records],
            self.encoder,
            self._targets(records),
        )

    def _set_datasets(self, parts: dict[str, list[SequenceRecord]]) -> None:
        self.datasets = {part: self._dataset(records) for part, records in parts.items()}

    def _catalogue_lineage(self, split_rule: str, **extra: Any) -> dict[str, Any]:
        """The lineage of a split of ``self.dataset``: files, split, sizes, ``extra``, encoding."""
        return {
            "name": self.dataset,
            "datasets": catalogue_checksums(self.dataset),
            "split": self.split_name,
            "split_rule": split_rule,
            "seed": self.seed,
            "n_samples": self.sizes(),
            **extra,
            "encoding": self.encoder.to_dict(),
        }

    # --- loaders ----------------------------------------------------------------------------------

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
