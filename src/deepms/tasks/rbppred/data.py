"""Deep-RBPPred data: RNA-binding proteins (label 1) versus non-binding PDB chains (label 0).

RBPPred's training set (2780 RBPs, 7093 non-RBPs), which Deep-RBPPred reused. Deep-RBPPred's
three independent test sets are not in the mirror, so the set is split 80/10/10 by sequence
similarity: proteins sharing at least the configured share of k-mers are clustered (single
linkage) and whole clusters go to one split, so no train/test pair reaches the threshold.

Residues are encoded as property channels (hydrophobicity, polarity, normalised van der Waals
volume, charge; see :mod:`deepms.sequences.properties`). Note for reading the figures: RBPs are
longer (median 438 vs 223 residues), so length alone is informative on this set.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from deepms.datasets.registry import get_dataset, resolve
from deepms.io.fasta import SequenceRecord, read_fasta
from deepms.sequences import SequenceEncoder, similarity_split
from deepms.sequences.datamodule import SequenceDataModule, subsample
from deepms.sequences.dataset import SequenceDataset

log = logging.getLogger(__name__)


class RBPPredDataModule(SequenceDataModule):
    """Reads positives and negatives, splits by similarity, serves property-encoded batches."""

    def __init__(
        self,
        dataset: str = "nucleic_binding_rbppred",
        positives: str = "nucleic_binding/rbppred_RBP2780.fasta",
        negatives: str = "nucleic_binding/rbppred_nonRBP7093.fasta",
        mirror: str | None = None,
        cache_dir: str | None = None,
        encoding: str = "properties",
        max_length: int = 1000,
        crop: str = "start",
        split: dict[str, Any] | None = None,
        similarity: dict[str, Any] | None = None,
        limit: int | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        bucket_pool: int = 50,
        on_error: str = "raise",
    ) -> None:
        split = dict(split or {})
        super().__init__(batch_size, num_workers, bucket_pool, int(split.get("seed", 0)))
        self.dataset = dataset
        self.files = {1: positives, 0: negatives}
        self.mirror = Path(mirror) if mirror else None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.encoder = SequenceEncoder("protein", encoding, max_length, crop)
        self.fractions = tuple(float(f) for f in split.get("fractions", (0.8, 0.1, 0.1)))
        self.similarity = {"k": 5, "measure": "containment", "threshold": 0.1, **(similarity or {})}
        self.limit = limit
        self.on_error = on_error

    @property
    def split_name(self) -> str:
        s = self.similarity
        parts = "_".join(str(round(f * 100)) for f in self.fractions)
        return f"similarity_{s['measure']}{s['k']}_{s['threshold']}_{parts}_seed{self.seed}"

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        files = resolve(self.dataset, mirror=self.mirror, cache_dir=self.cache_dir)
        records: list[SequenceRecord] = []
        for label, name in self.files.items():
            read = list(read_fasta(files[name], alphabet="protein", on_error=self.on_error))
            for record in subsample(read, self.limit, self.seed):
                record.label = label
                records.append(record)
        split = similarity_split(
            [r.sequence for r in records], self.fractions, seed=self.seed, **self.similarity
        )
        for part in ("train", "val", "test"):
            chosen = [r for r, s in zip(records, split.labels, strict=True) if s == part]
            self.datasets[part] = SequenceDataset(
                [r.identifier for r in chosen],
                [r.sequence for r in chosen],
                self.encoder,
                {"label": np.array([r.label for r in chosen], dtype=np.float32)},
            )
        positives = {k: int(v.targets["label"].sum()) for k, v in self.datasets.items()}
        self._lineage = {
            "name": self.dataset,
            "datasets": {self.dataset: {f.path: f.sha256 for f in get_dataset(self.dataset).files}},
            "split": self.split_name,
            "split_rule": split.summary(),
            "seed": self.seed,
            "n_samples": self.sizes(),
            "n_spectra": self.sizes(),  # the runner's generic sample-count key
            "n_positive": positives,
            "encoding": self.encoder.to_dict(),
        }
        log.info("rbppred data: %s, positives %s; %s", self.sizes(), positives, split.summary())

    def model_kwargs(self) -> dict[str, Any]:
        """The encoder, and the training share of positives (for a class-balanced loss)."""
        train = self.datasets["train"].targets["label"]
        return {
            "encoder": self.encoder.to_dict(),
            "positive_fraction": float(train.mean()) if len(train) else 0.5,
        }
