"""DeepLoc 1.0 data: protein sequences, 10 localisation classes and membrane-bound vs soluble.

The mirror holds the official test set (2768), the validation split Stärk et al. cut from the
DeepLoc training set (1678) and setHARD (490); DeepLoc's own training split is absent. So the
1678 are split into train/val by sequence similarity (clusters never straddle the split; rule and
threshold in the config), the official test set is the test set, setHARD a second test set. How many
official-test sequences have a train neighbour at or above the threshold is counted in the lineage:
DeepLoc partitioned its data by homology, but the subset we train on was cut by others.

Headers read ``>ACC Location-M|S|U [test]``; ``U`` (membrane unknown) is kept with membrane label
-1, which the membrane loss and metrics ignore. Records whose location is not one of the 10
classes (the 23 ``Cytoplasm-Nucleus`` entries) are dropped and counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from deepms.io.fasta import SequenceRecord, read_fasta
from deepms.sequences import SequenceEncoder, max_similarity
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
    """Reads the three FASTA files, splits the training pool by similarity, serves batches."""

    def __init__(
        self,
        dataset: str = "deeploc_deeploc1",
        train_files: tuple[str, ...] = ("deeploc/deeploc1_val_set_LA.fasta",),
        test_file: str = "deeploc/deeploc1_test_set.fasta",
        hard_file: str | None = "deeploc/setHARD.fasta",
        encoding: str = "onehot",
        max_length: int = 1000,
        crop: str = "ends",
        similarity: dict[str, Any] | None = None,
        batch_size: int = 32,
        **common: Any,
    ) -> None:
        """``common``: split, mirror, cache_dir, limit, ... (see :class:`SequenceDataModule`)."""
        super().__init__(batch_size, **common)
        self.dataset = dataset
        self.train_files = list(train_files)
        self.test_file = test_file
        self.hard_file = hard_file
        self.encoder = SequenceEncoder("protein", encoding, max_length, crop)
        self.val_fraction = float(self.split_settings.get("val_fraction", 0.1))
        self.similarity = {**SIMILARITY, **(similarity or {})}
        self.test_parts = ["test", "hard"] if hard_file else ["test"]

    @property
    def split_name(self) -> str:
        s = self.similarity
        val = round(self.val_fraction * 100)
        return (
            f"similarity_{s['measure']}{s['k']}_{s['threshold']}_train{100 - val}_val{val}"
            f"_seed{self.seed}+official_test"
        )

    def _read(self, files: dict[str, Path], name: str, dropped: Counter) -> list[SequenceRecord]:
        records = []
        for record in read_fasta(files[name], deeploc_label, "protein", self.on_error):
            if record.label[0] not in LOCATIONS:
                dropped[f"{name}: location {record.label[0]!r} not one of the 10 classes"] += 1
                continue
            records.append(record)
        return self._subsample(records)

    def _targets(self, records: list[SequenceRecord]) -> dict[str, np.ndarray]:
        return {
            "location": np.array([LOCATIONS.index(r.label[0]) for r in records], np.int64),
            "membrane": np.array([r.label[1] for r in records], np.int64),
        }

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        files = self._resolve()
        dropped: Counter = Counter()
        pool = [r for name in self.train_files for r in self._read(files, name, dropped)]
        test = self._read(files, self.test_file, dropped)
        hard = self._read(files, self.hard_file, dropped) if self.hard_file else []
        for reason, count in dropped.items():
            log.warning("deeploc: dropped %d records (%s)", count, reason)
        sim = self.similarity
        fractions = (1 - self.val_fraction, self.val_fraction)
        parts, split = self._split_by_similarity(pool, fractions, names=("train", "val"))
        parts.update(test=test, hard=hard)
        self._set_datasets({k: v for k, v in parts.items() if k != "hard" or hard})
        train_seqs = [r.sequence for r in parts["train"]]
        neighbours = {}
        for part in self.test_parts:
            best = max_similarity(
                [r.sequence for r in parts[part]], train_seqs, sim["k"], sim["measure"]
            )
            neighbours[part] = int((best >= sim["threshold"]).sum())
        self._lineage = self._catalogue_lineage(
            split.summary(), test_with_train_neighbour=neighbours, dropped=dict(dropped)
        )
        log.info(
            "deeploc data: %s; %s; test sequences with a train neighbour >= %s: %s",
            self.sizes(),
            split.summary(),
            sim["threshold"],
            neighbours,
        )

    def model_kwargs(self) -> dict[str, Any]:
        """Classes and the encoder travel with the model's hyperparameters (for prediction)."""
        train = self.datasets["train"].targets["location"]
        return {
            "encoder": self.encoder.to_dict(),
            "classes": list(LOCATIONS),
            "test_names": list(self.test_parts),
            "class_counts": np.bincount(train, minlength=len(LOCATIONS)).tolist(),
        }
