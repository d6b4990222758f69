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
from collections.abc import Sequence
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

    def __init__(self, classes: Sequence[str] | None = None, **kwargs: Any) -> None:
        """``classes``: the label set, in output order (default DeepLoc 1.0's 10 locations;
        ``data=deeploc_scl2205`` gives SCL2205's 13). Records of other classes are dropped and
        counted."""
        super().__init__(**kwargs)
        self.classes: tuple[str, ...] = tuple(classes) if classes else LOCATIONS

    def _read(self, opened: Any, dropped: Counter) -> list[SequenceRecord]:
        """A source's records of the configured classes; a source's ``rename`` option maps its
        class names onto these (SCL2205's ``Secreted`` is DeepLoc's ``Extracellular``)."""
        rename = dict(opened.spec.option("rename") or {})
        records = []
        for record in self.read_source(opened, deeploc_label, "protein"):
            if record.label[0] in rename:
                record.label = (rename[record.label[0]], *record.label[1:])
            if record.label[0] not in self.classes:
                where = ", ".join(opened.checksums)  # catalogue paths, or the given path
                n = len(self.classes)
                dropped[f"{where}: location {record.label[0]!r} not one of the {n} classes"] += 1
                continue
            records.append(record)
        return self.subsample(records)

    def _targets(self, records: list[SequenceRecord]) -> dict[str, np.ndarray]:
        return {
            "location": np.array([self.classes.index(r.label[0]) for r in records], np.int64),
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
        records, source_index, excluded = self._exclude_similar(records, source_index, dropped)
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
        lineage.extras.update(
            split_rule=summary, test_with_train_neighbour=neighbours, excluded_similar=excluded
        )
        log.info(
            "deeploc data: %s; %s; test sequences with a train neighbour >= %s: %s",
            self.sizes(),
            summary,
            sim["threshold"],
            neighbours,
        )

    def _exclude_similar(
        self, records: list[SequenceRecord], source_index: list[int], dropped: Counter
    ) -> tuple[list[SequenceRecord], list[int], dict[str, int]]:
        """Drop the records of a source with ``exclude_similar_to: [roles]`` that are similar
        (the split's rule) to any record of those roles: extra training data (SCL2205) must not
        hold a test protein's homologue. Returns the kept records and the count per source."""
        sim = self.similarity or dict(SIMILARITY)
        excluded: dict[str, int] = {}
        keep = np.ones(len(records), dtype=bool)
        index = np.asarray(source_index)
        for i, spec in enumerate(self.sources):
            roles = spec.option("exclude_similar_to")
            if not roles:
                continue
            mine = np.flatnonzero(index == i)
            others = [
                records[j].sequence
                for j in range(len(records))
                if self.sources[source_index[j]].role in roles
            ]
            best = max_similarity(
                [records[j].sequence for j in mine], others, sim["k"], sim["measure"]
            )
            close = mine[best >= sim["threshold"]]
            keep[close] = False
            excluded[spec.describe()] = len(close)
            if len(close):
                reason = f"{spec.describe()}: similar to a {'/'.join(roles)} protein"
                dropped[
                    f"{reason} (>= {sim['threshold']} {sim['measure']} of {sim['k']}-mers)"
                ] += len(close)
        kept = np.flatnonzero(keep)
        return [records[j] for j in kept], [source_index[j] for j in kept], excluded

    def model_kwargs(self) -> dict[str, Any]:
        """Classes and the encoder travel with the model's hyperparameters (for prediction)."""
        train = self.datasets["train"].targets["location"]
        return {
            "encoder": self.encoder.to_dict(),
            "classes": list(self.classes),
            "test_names": [part for part in self.test_parts if part in self.datasets],
            "class_counts": np.bincount(train, minlength=len(self.classes)).tolist(),
        }
