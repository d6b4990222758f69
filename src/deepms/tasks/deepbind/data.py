"""DeepBind data: one binding experiment per run, chosen by ``data.experiment``.

* ``encode_<TF>`` (10 ENCODE ChIP-seq sets, DNA): the ``_AC`` file holds 101-bp peak sequences
  (positives only); as DeepBind did, each positive gets ``negatives_per_positive`` backgrounds by
  dinucleotide shuffling (Altschul-Erickson, counts preserved exactly). The ``_B`` file (500 bound +
  500 shuffled) is the test set.
* ``clip_<RBP>`` (3 PAR-CLIP sets, RNA): positives and negatives in the FASTA headers
  (``class:0|1``); ``_training`` trains, ``_test`` (sites from other genes) tests.

Validation is a grouped (by sequence) share of the training file; a shuffled background always
stays in the split of the positive it came from.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from deepms.datasets.registry import get_dataset, resolve_file
from deepms.datasets.splits import grouped_split
from deepms.io.fasta import SequenceRecord, clip_label, read_fasta, read_seq_table
from deepms.sequences import SequenceEncoder, dinucleotide_shuffle
from deepms.sequences.datamodule import SequenceDataModule, partition

log = logging.getLogger(__name__)

ENCODE, CLIP = "nucleic_binding_deepbind_encode", "nucleic_binding_clip_parclip"


@dataclass(frozen=True)
class Experiment:
    """Where one experiment's files are and how to read them."""

    name: str
    dataset: str
    train: str
    test: str
    alphabet: str  # dna | rna
    shuffle_negatives: bool  # ENCODE: backgrounds made by dinucleotide shuffling


@cache
def experiments() -> dict[str, Experiment]:
    """``encode_<TF>`` and ``clip_<RBP>`` experiments, read off the data catalogue."""
    found: dict[str, Experiment] = {}
    for f in get_dataset(ENCODE).files:
        match = re.search(r"deepbind_encode_([^_]+)_.*_AC\.seq\.gz$", f.path)
        if match:
            name = f"encode_{match.group(1)}"
            test = f.path.replace("_AC.seq.gz", "_B.seq.gz")
            found[name] = Experiment(name, ENCODE, f.path, test, "dna", True)
    for f in get_dataset(CLIP).files:
        match = re.search(r"clip_\d+_PARCLIP_([^_]+)_training\.fa\.gz$", f.path)
        if match:
            name = f"clip_{match.group(1)}"
            test = f.path.replace("_training.fa.gz", "_test.fa.gz")
            found[name] = Experiment(name, CLIP, f.path, test, "rna", False)
    return found


def get_experiment(name: str) -> Experiment:
    try:
        return experiments()[name]
    except KeyError:
        known = ", ".join(sorted(experiments()))
        raise ValueError(f"unknown deepbind experiment {name!r}; known: {known}") from None


def shuffled_negatives(
    records: list[SequenceRecord], per_positive: int, seed: int
) -> list[SequenceRecord]:
    """``per_positive`` dinucleotide-shuffled backgrounds per record, labelled 0."""
    rng = np.random.default_rng(seed)
    return [
        SequenceRecord(f"{r.identifier}_shuf{i}", dinucleotide_shuffle(r.sequence, rng), label=0)
        for r in records
        for i in range(per_positive)
    ]


class DeepBindDataModule(SequenceDataModule):
    """Reads one experiment, makes backgrounds where needed, splits train/val by sequence."""

    def __init__(
        self, experiment: str = "encode_GABPA", negatives_per_positive: int = 1, **common: Any
    ) -> None:
        """``common``: split, mirror, cache_dir, limit, ... (see :class:`SequenceDataModule`)."""
        super().__init__(**common)
        self.experiment = get_experiment(experiment)
        self.negatives_per_positive = int(negatives_per_positive)
        self.val_fraction = float(self.split_settings.get("val_fraction", 0.1))
        self.encoder = SequenceEncoder(self.experiment.alphabet, "onehot")

    @property
    def split_name(self) -> str:
        val = round(self.val_fraction * 100)
        return f"sequence_grouped_train{100 - val}_val{val}_seed{self.seed}+official_test"

    def _read(self, path: str) -> list[SequenceRecord]:
        datafile = next(f for f in get_dataset(self.experiment.dataset).files if f.path == path)
        local = resolve_file(datafile, mirror=self.mirror, cache_dir=self.cache_dir)
        self._lineage["datasets"].setdefault(self.experiment.dataset, {})[path] = datafile.sha256
        if path.endswith(".seq.gz"):
            return list(read_seq_table(local, self.experiment.alphabet, self.on_error))
        return list(read_fasta(local, clip_label, self.experiment.alphabet, self.on_error))

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        exp = self.experiment
        self._lineage = {"name": exp.name, "datasets": {}, "split": self.split_name}
        train = self._subsample(self._read(exp.train))
        test = self._subsample(self._read(exp.test))
        groups = grouped_split(
            [r.sequence for r in train],
            (1 - self.val_fraction, self.val_fraction),
            seed=self.seed,
            names=("train", "val"),
        )
        parts = partition(train, groups, ("train", "val"))
        if exp.shuffle_negatives:
            for offset, part in enumerate(("train", "val")):
                positives = [r for r in parts[part] if r.label == 1]
                seed = self.seed * 2 + offset
                parts[part] += shuffled_negatives(positives, self.negatives_per_positive, seed)
        parts["test"] = test
        self._set_datasets(parts)
        counts = {
            k: {"positive": int(sum(r.label for r in v)), "all": len(v)} for k, v in parts.items()
        }
        self._lineage.update(
            seed=self.seed,
            experiment=exp.name,
            alphabet=exp.alphabet,
            negatives="dinucleotide-shuffled positives" if exp.shuffle_negatives else "from file",
            n_samples=self.sizes(),
            n_positive={k: v["positive"] for k, v in counts.items()},
        )
        log.info("deepbind %s: %s", exp.name, counts)

    def model_kwargs(self) -> dict[str, Any]:
        return {"encoder": self.encoder.to_dict(), "experiment": self.experiment.name}
