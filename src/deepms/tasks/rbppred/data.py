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
from typing import Any

from deepms.io.fasta import SequenceRecord, read_fasta
from deepms.sequences import SequenceEncoder
from deepms.sequences.datamodule import SIMILARITY, SequenceDataModule

log = logging.getLogger(__name__)


class RBPPredDataModule(SequenceDataModule):
    """Reads positives and negatives, splits by similarity, serves property-encoded batches."""

    def __init__(
        self,
        dataset: str = "nucleic_binding_rbppred",
        positives: str = "nucleic_binding/rbppred_RBP2780.fasta",
        negatives: str = "nucleic_binding/rbppred_nonRBP7093.fasta",
        encoding: str = "properties",
        max_length: int = 1000,
        crop: str = "start",
        similarity: dict[str, Any] | None = None,
        **common: Any,
    ) -> None:
        """``common``: split, mirror, cache_dir, limit, ... (see :class:`SequenceDataModule`)."""
        super().__init__(**common)
        self.dataset = dataset
        self.files = {1: positives, 0: negatives}
        self.encoder = SequenceEncoder("protein", encoding, max_length, crop)
        fractions = self.split_settings.get("fractions", (0.8, 0.1, 0.1))
        self.fractions = tuple(float(f) for f in fractions)
        self.similarity = {**SIMILARITY, **(similarity or {})}

    @property
    def split_name(self) -> str:
        s = self.similarity
        parts = "_".join(str(round(f * 100)) for f in self.fractions)
        return f"similarity_{s['measure']}{s['k']}_{s['threshold']}_{parts}_seed{self.seed}"

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        files = self._resolve()
        records: list[SequenceRecord] = []
        for label, name in self.files.items():
            read = list(read_fasta(files[name], alphabet="protein", on_error=self.on_error))
            for record in self._subsample(read):
                record.label = label
                records.append(record)
        parts, split = self._split_by_similarity(records, self.fractions)
        self._set_datasets(parts)
        positives = {k: int(v.targets["label"].sum()) for k, v in self.datasets.items()}
        self._lineage = self._catalogue_lineage(split.summary(), n_positive=positives)
        log.info("rbppred data: %s, positives %s; %s", self.sizes(), positives, split.summary())

    def model_kwargs(self) -> dict[str, Any]:
        """The encoder, and the training share of positives (for a class-balanced loss)."""
        train = self.datasets["train"].targets["label"]
        return {
            "encoder": self.encoder.to_dict(),
            "positive_fraction": float(train.mean()) if len(train) else 0.5,
        }
