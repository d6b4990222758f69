"""The data contract every task's datamodule fulfils (:class:`TaskDataModule`).

A task's datamodule derives from :class:`TaskDataModule` and implements ``setup`` (read its
sources, turn records into samples, split, fill ``self.datasets``) and, where the model needs
sizes or vocabularies from the data, ``model_kwargs``. The base class gives it:

* the settings every data config has (:class:`DataConfig`: sources, mirror, cache, split, batch
  size, workers, ``on_error``, ``limit_per_source``, ``cv``), parsed and checked once;
* :meth:`open_sources`: each source resolved (catalogued or by path), its checksums recorded in
  the run's :class:`~deepms.datasets.lineage.Lineage`;
* :meth:`assign_parts`: train/val/test labels from the split rule, the sources' roles and their
  own fractions, or a cross-validation fold; a group (peptide, cluster, patient) never straddles
  two parts;
* length-bucketed loaders over ``self.datasets`` (datasets with ``lengths``), extra test sets
  from ``test_parts``.

The runner checks ``isinstance(datamodule, TaskDataModule)`` and relies on nothing else.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from deepms.datasets.folds import CVConfig, fold_labels, n_folds
from deepms.datasets.lineage import Lineage
from deepms.datasets.sources import OpenedSource, SourceSpec, open_source, source_specs
from deepms.datasets.splits import grouped_split, most_held_out
from deepms.training.batching import bucketed_loader

ON_ERROR = ("raise", "skip")


@dataclass
class DataConfig:
    """The settings shared by every task's data config (the rest are the task's own)."""

    sources: list[SourceSpec] = field(default_factory=list)
    mirror: Path | None = None
    cache_dir: Path | None = None
    split: dict[str, Any] = field(default_factory=dict)  # fractions, seed, task-specific keys
    batch_size: int = 64
    num_workers: int = 0
    bucket_pool: int = 50
    on_error: str = "skip"
    limit_per_source: int | None = None
    cv: CVConfig | None = None

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"data.on_error={self.on_error!r}: use one of {ON_ERROR}")
        if int(self.batch_size) < 1:
            raise ValueError(f"data.batch_size={self.batch_size}: must be >= 1")

    @property
    def seed(self) -> int:
        return int(self.split.get("seed", 0))

    @property
    def fractions(self) -> tuple[float, ...]:
        return tuple(float(f) for f in self.split.get("fractions", (0.8, 0.1, 0.1)))


class TaskDataModule(pl.LightningDataModule):
    """Base of every task's datamodule: config, sources, splits, lineage, loaders."""

    #: names the split rule in run names and lineages (e.g. ``peptide_grouped``)
    split_kind: str = "grouped"
    #: the parts that become test dataloaders (``test_<part>_*`` metrics beyond the first)
    test_parts: Sequence[str] = ("test",)

    def __init__(
        self,
        sources: Sequence[Mapping[str, Any] | SourceSpec] = (),
        mirror: str | Path | None = None,
        cache_dir: str | Path | None = None,
        split: Mapping[str, Any] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        bucket_pool: int = 50,
        on_error: str = "skip",
        limit_per_source: int | None = None,
        cv: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        split = dict(split or {})
        cv_config = CVConfig.from_config({"seed": split.get("seed", 0), **dict(cv)} if cv else None)
        self.config = DataConfig(
            sources=source_specs(sources),
            mirror=Path(mirror) if mirror else None,
            cache_dir=Path(cache_dir) if cache_dir else None,
            split=split,
            batch_size=int(batch_size),
            num_workers=int(num_workers),
            bucket_pool=int(bucket_pool),
            on_error=str(on_error),
            limit_per_source=int(limit_per_source) if limit_per_source else None,
            cv=cv_config,
        )
        self.datasets: dict[str, Any] = {}
        self._lineage = Lineage()
        #: folds of the ``cv`` scheme on this data, set in ``setup`` (by :meth:`assign_parts`)
        self.cv_folds: int | None = None

    # --- the settings, as attributes (loaders and tasks read these) ---------------------------

    @property
    def sources(self) -> list[SourceSpec]:
        return self.config.sources

    @property
    def source_names(self) -> list[str]:
        return [s.label for s in self.config.sources]

    @property
    def mirror(self) -> Path | None:
        return self.config.mirror

    @property
    def cache_dir(self) -> Path | None:
        return self.config.cache_dir

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    @property
    def num_workers(self) -> int:
        return self.config.num_workers

    @property
    def bucket_pool(self) -> int:
        return self.config.bucket_pool

    @property
    def on_error(self) -> str:
        return self.config.on_error

    @property
    def limit_per_source(self) -> int | None:
        return self.config.limit_per_source

    @property
    def split_seed(self) -> int:
        return self.config.seed

    @property
    def split_fractions(self) -> tuple[float, ...]:
        return self.config.fractions

    @property
    def cv(self) -> CVConfig | None:
        return self.config.cv

    # --- the contract ----------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:  # pragma: no cover - abstract
        """Read, check and split the sources once; fill ``self.datasets`` and the lineage."""
        raise NotImplementedError(f"{type(self).__name__} must implement setup()")

    def model_kwargs(self) -> dict[str, Any]:
        """Sizes and vocabularies the model needs from the data (saved in its hyperparameters)."""
        return {}

    def lineage(self) -> Lineage:
        """The data behind the run; complete after ``setup``."""
        return self._lineage

    @property
    def split_name(self) -> str:
        """E.g. ``peptide_grouped_80_10_10_seed42``, or the fold of a cross-validated run."""
        if self.cv is not None:
            return f"{self.split_kind}_{self.cv.name}_fold{self.cv.fold}"
        parts = "_".join(str(round(f * 100)) for f in self.split_fractions)
        own = [s.split for s in self.sources if s.split is not None and s.role == "split"]
        for fractions in dict.fromkeys(own):
            parts += "+" + "_".join(str(round(f * 100)) for f in fractions)
        roles = sorted({s.role for s in self.sources} - {"split"})
        suffix = "".join(f"+{role}_only_sources" for role in roles)
        return f"{self.split_kind}_{parts}_seed{self.split_seed}{suffix}"

    # --- shared set-up ---------------------------------------------------------------------------

    def start_lineage(self, name: str | None = None, **extras: Any) -> Lineage:
        """A fresh lineage for this set-up (call at the start of ``setup``)."""
        self._lineage = Lineage(
            name=name or "+".join(self.source_names),
            split=self.split_name,
            seed=self.split_seed,
            extras=dict(extras),
        )
        if self.cv is not None:
            self._lineage.extras["cv"] = {"scheme": self.cv.name, "fold": self.cv.fold}
        return self._lineage

    def open_sources(self) -> Iterator[tuple[int, OpenedSource]]:
        """Each source resolved and checked, its files' sha256 recorded in the lineage."""
        for index, spec in enumerate(self.sources):
            opened = open_source(spec, self.mirror, self.cache_dir)
            self._lineage.add_files(opened.name, opened.checksums)
            yield index, opened

    def split_labels(
        self, groups: Sequence[Hashable], fractions: Sequence[float], seed: int
    ) -> np.ndarray:
        """The task's split rule for one pool of samples (default: grouped by ``groups``)."""
        return grouped_split(groups, fractions, seed=seed)

    def assign_parts(
        self,
        groups: Sequence[Hashable],
        source_index: Sequence[int] | None = None,
        strata: Sequence[Hashable] | None = None,
        group_columns: Mapping[str, Sequence[Hashable]] | None = None,
    ) -> np.ndarray:
        """The part (train, val, test or an extra test role) of every sample.

        Samples of a ``split`` source are cut by the split rule (its own fractions when it has
        them) or, under ``cv``, by the fold; a source with another role sends all its samples
        there. A group labelled differently by two sources stays only in its most held-out
        part and is marked ``None`` elsewhere (drop those samples; :meth:`keep_mask`).
        """
        n = len(groups)
        source_index = np.zeros(n, dtype=int) if source_index is None else np.asarray(source_index)
        roles = np.array([self.sources[i].role if self.sources else "split" for i in source_index])
        labels = np.empty(n, dtype=object)
        pooled = np.flatnonzero(roles == "split")
        groups_array = np.array([str(g) for g in groups], dtype=object)
        if self.cv is not None and len(pooled):
            columns = {k: np.asarray(v)[pooled] for k, v in (group_columns or {}).items()}
            labels[pooled] = fold_labels(
                self.cv,
                groups_array[pooled].tolist(),
                None if strata is None else np.asarray(strata)[pooled],
                columns,
            )
            by = columns.get(self.cv.group_by) if self.cv.group_by else None
            self.cv_folds = self.n_folds(groups_array[pooled].tolist(), by)
        else:
            by_fractions: dict[tuple[float, ...], list[int]] = {}
            for i in pooled:
                spec = self.sources[source_index[i]] if self.sources else None
                own = spec.split if spec is not None and spec.split is not None else None
                by_fractions.setdefault(own or self.split_fractions, []).append(i)
            for fractions, rows in by_fractions.items():
                rows = np.asarray(rows)
                labels[rows] = self.split_labels(
                    groups_array[rows].tolist(), fractions, self.split_seed
                )
        fixed = np.flatnonzero(roles != "split")
        labels[fixed] = roles[fixed]
        labels[~most_held_out(groups_array, labels)] = None
        return labels

    def n_folds(
        self, groups: Sequence[Hashable], group_by: Sequence[Hashable] | None = None
    ) -> int:
        """How many fits the configured CV scheme makes (1 without ``cv``)."""
        if self.cv is None:
            return 1
        return n_folds(self.cv, groups if group_by is None else group_by)

    # --- loaders ---------------------------------------------------------------------------------

    #: pads a batch; a task sets it (class attribute or in ``__init__``)
    collate_fn: Any = None

    def loader(self, part: str | Any, shuffle: bool = False) -> DataLoader:
        """Length-bucketed batches of a part (or of any dataset with ``lengths``)."""
        dataset = self.datasets[part] if isinstance(part, str) else part
        return bucketed_loader(
            dataset,
            self.batch_size,
            shuffle,
            self.collate_fn,
            self.bucket_pool,
            self.split_seed,
            self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        loaders = [self.loader(part) for part in self.test_parts if part in self.datasets]
        return loaders[0] if len(loaders) == 1 else loaders


def keep_mask(labels: np.ndarray) -> np.ndarray:
    """Samples that :meth:`TaskDataModule.assign_parts` kept (label not None)."""
    return np.array([label is not None for label in labels], dtype=bool)
