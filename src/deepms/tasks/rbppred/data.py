"""Deep-RBPPred data: RNA-binding proteins (label 1) versus non-binding PDB chains (label 0).

RBPPred's training set (2780 RBPs, 7093 non-RBPs), which Deep-RBPPred reused: two FASTA
sources whose ``label:`` option (1 or 0) labels every record. Deep-RBPPred's
three independent test sets are not in the mirror, so the set is split 80/10/10 by sequence
similarity: proteins sharing at least the configured share of k-mers are clustered (single
linkage) and whole clusters go to one split, so no train/test pair reaches the threshold.

Residues are encoded as property channels (hydrophobicity, polarity, normalised van der Waals
volume, charge; see :mod:`deepms.sequences.properties`). Note for reading the figures: RBPs are
longer (median 438 vs 223 residues), so length alone is informative on this set.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from deepms.io.fasta import SequenceRecord
from deepms.sequences.datamodule import SIMILARITY, SequenceDataModule

log = logging.getLogger(__name__)

#: the catalogued sources (``conf/data/rbppred.yaml`` spells the same)
DEFAULT_SOURCES = (
    {
        "dataset": "nucleic_binding_rbppred",
        "files": ["nucleic_binding/rbppred_RBP2780.fasta"],
        "format": "fasta",
        "label": 1,
    },
    {
        "dataset": "nucleic_binding_rbppred",
        "files": ["nucleic_binding/rbppred_nonRBP7093.fasta"],
        "format": "fasta",
        "label": 0,
    },
)


class RBPPredDataModule(SequenceDataModule):
    """Reads labelled protein sources, splits by similarity, serves property-encoded batches."""

    default_sources = DEFAULT_SOURCES
    default_encoding: ClassVar[dict[str, Any]] = {"encoding": "properties", "max_length": 1000}
    default_similarity = SIMILARITY

    def __init__(self, **settings: Any) -> None:
        """``settings``: the sequence tasks' (see :class:`SequenceDataModule`); every source
        needs a ``label: 1|0`` option."""
        super().__init__(**settings)
        for spec in self.sources:
            if spec.option("label") not in (0, 1):
                raise ValueError(f"rbppred source {spec.describe()}: give label: 1 or label: 0")

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        lineage = self.start_lineage("+".join(dict.fromkeys(self.source_names)))
        records: list[SequenceRecord] = []
        source_index: list[int] = []
        for index, opened in self.open_sources():
            read = self.subsample(self.read_source(opened, alphabet="protein"))
            records += read
            source_index += [index] * len(read)
        parts, split = self.assign(records, source_index)
        self.set_datasets(parts)
        positives = {k: int(v.targets["label"].sum()) for k, v in self.datasets.items()}
        summary = split.summary() if split is not None else {}
        lineage.extras.update(split_rule=summary, n_positive=positives)
        log.info("rbppred data: %s, positives %s; %s", self.sizes(), positives, summary)

    def model_kwargs(self) -> dict[str, Any]:
        """The encoder, and the training share of positives (for a class-balanced loss)."""
        train = self.datasets["train"].targets["label"]
        return {
            "encoder": self.encoder.to_dict(),
            "positive_fraction": float(train.mean()) if len(train) else 0.5,
        }
