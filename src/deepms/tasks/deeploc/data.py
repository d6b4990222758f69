"""DeepLoc 1.0 data: protein sequences, 10 localisation classes and membrane-bound vs soluble.

The mirror holds the official test set (2768), the validation split Stärk et al. cut from the
DeepLoc training set (1678) and setHARD (490); DeepLoc's own training split is absent. So the
1678 are split into train/val by sequence similarity (clusters never straddle the split; rule and
threshold in the config), the official test set is the test set (a source with ``role: test``),
setHARD a second test set (``role: hard``, metrics ``test_hard_*``). How many
official-test sequences have a train neighbour at or above the threshold is counted in the lineage:
DeepLoc partitioned its data by homology, but the subset we train on was cut by others.

Headers read ``>ACC Location-M|S|U [test]``; ``U`` (membrane unknown) is kept with membrane label
-1, which the membrane loss and metrics ignore. Records whose location is not one of the 10
classes (the 23 ``Cytoplasm-Nucleus`` entries) are dropped and counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, ClassVar

import numpy as np

from deepms.io.fasta import SequenceRecord
from deepms.sequences import max_similarity
from deepms.sequences.datamodule import SIMILARITY, SequenceDataModule

log = logging.getLogger(__name__)

LOCATIONS = (
    "Nucleus",
    "Cytoplasm",
    "Extracellular",
    "Mitochondrion",
    "Cell.membrane",
    "Endoplasmic.reticulum",
    "Plastid",
    "Golgi.apparatus",
    "Lysosome/Vacuole",
    "Peroxisome",
)
MEMBRANE = {"M": 1, "S": 0, "U": -1}
#: the catalogued sources (``conf/data/deeploc.yaml`` spells the same)
DEFAULT_SOURCES = (
    {
        "dataset": "deeploc_deeploc1",
        "files": ["deeploc/deeploc1_val_set_LA.fasta"],
        "format": "fasta",
    },
    {
        "dataset": "deeploc_deeploc1",
        "files": ["deeploc/deeploc1_test_set.fasta"],
        "format": "fasta",
        "role": "test",
    },
    {
        "dataset": "deeploc_deeploc1",
        "files": ["deeploc/setHARD.fasta"],
        "format": "fasta",
        "role": "hard",
    },
)


def deeploc_label(description: str) -> tuple[str, int]:
    """``Q9H400 Cell.membrane-M test`` -> (``Cell.membrane``, 1); raises when there is no label."""
    parts = description.split()
    if len(parts) < 2 or "-" not in parts[1]:
        raise ValueError(f"no label: header {description!r} lacks 'Location-M|S|U'")
    location, membrane = parts[1].rsplit("-", 1)
    if membrane not in MEMBRANE:
        raise ValueError(f"no label: membrane flag {membrane!r} is not M, S or U")
    return location, MEMBRANE[membrane]


class DeepLocDataModule(SequenceDataModule):
    """Reads DeepLoc-style FASTA sources, splits the pool by similarity, serves batches."""

    default_sources = DEFAULT_SOURCES
    default_encoding: ClassVar[dict[str, Any]] = {"max_length": 1000, "crop": "ends"}
    default_similarity = SIMILARITY

    def _read(self, opened: Any, dropped: Counter) -> list[SequenceRecord]:
        records = []
        for record in self.read_source(opened, deeploc_label, "protein"):
            if record.label[0] not in LOCATIONS:
                where = ", ".join(opened.checksums)  # catalogue paths, or the given path
                dropped[f"{where}: location {record.label[0]!r} not one of the 10 classes"] += 1
                continue
            records.append(record)
        return self.subsample(records)

    def _targets(self, records: list[SequenceRecord]) -> dict[str, np.ndarray]:
        return {
            "location": np.array([LOCATIONS.index(r.label[0]) for r in records], np.int64),
            "membrane": np.array([r.label[1] for r in records], np.int64),
        }

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        lineage = self.start_lineage("+".join(dict.fromkeys(self.source_names)))
        dropped: Counter = Counter()
        records: list[SequenceRecord] = []
        source_index: list[int] = []
        for index, opened in self.open_sources():
            read = self._read(opened, dropped)
            records += read
            source_index += [index] * len(read)
        for reason, count in dropped.items():
            log.warning("deeploc: dropped %d records (%s)", count, reason)
        parts, split = self.assign(records, source_index)
        self.set_datasets(parts)
        sim = self.similarity
        train_seqs = [r.sequence for r in parts["train"]]
        neighbours = {}
        for part in self.test_parts:
            best = max_similarity(
                [r.sequence for r in parts.get(part, [])], train_seqs, sim["k"], sim["measure"]
            )
            neighbours[part] = int((best >= sim["threshold"]).sum())
        lineage.count_dropped(dropped)
        summary = split.summary() if split is not None else {}
        lineage.extras.update(split_rule=summary, test_with_train_neighbour=neighbours)
        log.info(
            "deeploc data: %s; %s; test sequences with a train neighbour >= %s: %s",
            self.sizes(),
            summary,
            sim["threshold"],
            neighbours,
        )

    def model_kwargs(self) -> dict[str, Any]:
        """Classes and the encoder travel with the model's hyperparameters (for prediction)."""
        train = self.datasets["train"].targets["location"]
        return {
            "encoder": self.encoder.to_dict(),
            "classes": list(LOCATIONS),
            "test_names": [part for part in self.test_parts if part in self.datasets],
            "class_counts": np.bincount(train, minlength=len(LOCATIONS)).tolist(),
        }
