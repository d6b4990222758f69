"""What the sequence tasks' datamodules share on top of :class:`TaskDataModule`.

A sequence task reads FASTA-like sources (:meth:`SequenceDataModule.read_source`), keeps a seeded
subset per source for tiny runs (:meth:`~SequenceDataModule.subsample`), and splits the pooled
sources so that similar (or identical) sequences never straddle two parts
(:meth:`~SequenceDataModule.assign`); sources with a role (``test``, ``hard``...) go whole to
that part, as published. Loaders, lineage and source resolution come from the base class; a
task defines how records become targets (:meth:`~SequenceDataModule._targets`).

The pool is cut train/val by ``split.val_fraction`` when a source supplies the test set, else
train/val/test by ``split.fractions`` (e.g. a user's single FASTA).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from deepms.datasets.sources import ROLES, OpenedSource, SourceSpec
from deepms.datasets.splits import SPLIT_NAMES, grouped_split
from deepms.sequences.dataset import PadCollate, SequenceDataset
from deepms.sequences.encoding import SequenceEncoder
from deepms.sequences.similarity import SimilaritySplit, cluster_keys
from deepms.training.datamodule import TaskDataModule

if TYPE_CHECKING:
    from deepms.io.fasta import LabelParser, SequenceRecord

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


class SequenceDataModule(TaskDataModule):
    """Sources of sequences -> similarity-safe parts -> length-bucketed padded batches."""

    #: a task's catalogue sources, used when the config gives none
    default_sources: Sequence[Mapping[str, Any]] = ()
    #: the task's encoding settings where the config names none (over protein, one-hot, whole
    #: sequences cropped at the start: :class:`SequenceEncoder`'s own defaults)
    default_encoding: Mapping[str, Any] = MappingProxyType({})
    #: the task's similarity rule (k, measure, threshold); None: group identical sequences only
    default_similarity: Mapping[str, Any] | None = None

    def __init__(
        self,
        sources: Sequence[Mapping[str, Any] | SourceSpec] = (),
        encoding: str | None = None,
        max_length: int | None = None,
        crop: str | None = None,
        similarity: Mapping[str, Any] | None = None,
        min_length: int | None = None,
        **common: Any,
    ) -> None:
        """Encoding settings default to the task's ``default_encoding``; ``similarity`` updates
        its ``default_similarity``; ``common``: split, mirror, cache_dir, batch_size,
        limit_per_source, ... (the base's); ``split.val_fraction`` (when a source supplies the
        test set) or ``split.fractions``."""
        common.setdefault("on_error", "raise")  # a record without its label stops the run
        super().__init__(sources=sources or self.default_sources, **common)
        given = {"encoding": encoding, "max_length": max_length, "crop": crop}
        settings = {**self.default_encoding, **{k: v for k, v in given.items() if v is not None}}
        self.encoder: SequenceEncoder = SequenceEncoder(**settings)
        rule = self.default_similarity
        if similarity is not None:
            rule = {**(rule or SIMILARITY), **similarity}
        self.similarity: dict[str, Any] | None = dict(rule) if rule else None
        self.collate_fn = PadCollate(min_length)
        extra = [s.role for s in self.sources if s.role not in ROLES]
        self.test_parts = list(dict.fromkeys(["test", *extra]))
        self.datasets: dict[str, SequenceDataset] = {}

    # --- the split -------------------------------------------------------------------------------

    @property
    def val_fraction(self) -> float:
        return float(self.config.split.get("val_fraction", 0.1))

    @property
    def has_test_source(self) -> bool:
        return any(s.role == "test" for s in self.sources)

    @property
    def split_fractions(self) -> tuple[float, ...]:
        """(train, val) of the pool when a source supplies the test set, else (train, val, test)."""
        if self.has_test_source and "fractions" not in self.config.split:
            return (1 - self.val_fraction, self.val_fraction)
        return self.config.fractions

    @property
    def split_kind(self) -> str:  # type: ignore[override]
        s = self.similarity
        return f"similarity_{s['measure']}{s['k']}_{s['threshold']}" if s else "sequence_grouped"

    @property
    def split_name(self) -> str:
        """E.g. ``similarity_containment5_0.1_train90_val10_seed42+official_test``."""
        if self.cv is not None:
            return super().split_name
        if self.sources and all(s.role != "split" for s in self.sources):
            parts = "+".join(dict.fromkeys(s.role for s in self.sources))
            given = "official" if all(s.dataset for s in self.sources) else "given"
            return f"{given}_parts_{parts}"  # e.g. SCL2205's own trn/vld/tst
        fractions = self.split_fractions
        if len(fractions) == 2:
            val = round(fractions[1] * 100)
            parts = f"train{100 - val}_val{val}"
        else:
            parts = "_".join(str(round(f * 100)) for f in fractions)
        tests = [s for s in self.sources if s.role == "test"]
        suffix = ""
        if tests:
            suffix = "+official_test" if all(s.dataset for s in tests) else "+given_test"
        return f"{self.split_kind}_{parts}_seed{self.split_seed}{suffix}"

    def split_labels(
        self, groups: Sequence[Any], fractions: Sequence[float], seed: int
    ) -> np.ndarray:
        """Groups (similarity clusters or sequences) to train/val(/test) by their key."""
        return grouped_split(groups, fractions, seed=seed, names=SPLIT_NAMES[: len(fractions)])

    # --- set-up shared by the tasks ------------------------------------------------------------

    def read_source(
        self,
        opened: OpenedSource,
        label: LabelParser | None = None,
        alphabet: str | None = None,
    ) -> list[SequenceRecord]:
        """A source's records: labels from FASTA headers (``label``), or the source's own
        ``label:`` option for all its records (e.g. rbppred's positives and negatives)."""
        constant = opened.spec.option("label")
        options: dict[str, Any] = {"alphabet": alphabet}
        if opened.format.name == "fasta":
            options["label"] = label if constant is None else None
        if opened.spec.option("part") is not None:  # a data set's own named part (scl2205)
            options["part"] = opened.spec.option("part")
        records = list(opened.records(self.on_error, **options))
        if constant is not None:
            for record in records:
                record.label = constant
        return records

    def subsample(self, items: Sequence[T]) -> list[T]:
        """``limit_per_source`` (tiny runs) as a seeded random subset."""
        return subsample(items, self.limit_per_source, self.split_seed)

    def assign(
        self, records: list[SequenceRecord], source_index: Sequence[int]
    ) -> tuple[dict[str, list[SequenceRecord]], SimilaritySplit | None]:
        """Records per part: the pooled sources split by similarity cluster (or identical
        sequence), every record of a source with a role in that part; the similarity split."""
        roles = [self.sources[i].role for i in source_index]
        pooled = [i for i, role in enumerate(roles) if role == "split"]
        groups = [f"{role}#{i}" for i, role in enumerate(roles)]  # a role keeps every record
        sequences = [records[i].sequence for i in pooled]
        clusters = None
        if self.similarity:
            clusters, keys = cluster_keys(sequences, **self.similarity)
        else:
            keys = sequences
        for i, key in zip(pooled, keys, strict=True):
            groups[i] = key
        strata = [str(r.label) for r in records]  # class per record: stratified CV schemes
        labels = self.assign_parts(groups, source_index, strata)
        names = [*SPLIT_NAMES, *self.test_parts]
        parts = partition(records, labels, list(dict.fromkeys(names)))
        split = None
        if clusters is not None:
            s = self.similarity
            pool_labels = np.asarray([labels[i] for i in pooled])
            split = SimilaritySplit(pool_labels, clusters, s["threshold"], s["k"], s["measure"])
        return {k: v for k, v in parts.items() if v or k in SPLIT_NAMES}, split

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

    def set_datasets(self, parts: dict[str, list[SequenceRecord]]) -> None:
        """The parts as datasets; their sizes and the encoding into the lineage."""
        self.datasets = {part: self._dataset(records) for part, records in parts.items()}
        self._lineage.n_samples = self.sizes()
        self._lineage.extras["encoding"] = self.encoder.to_dict()

    def sizes(self) -> dict[str, int]:
        return {part: len(ds) for part, ds in self.datasets.items()}
