"""DeepBind data: one binding experiment per run, chosen by ``data.experiment``.

* ``encode_<TF>`` (10 ENCODE ChIP-seq sets, DNA): the ``_AC`` file holds 101-bp peak sequences
  (positives only); as DeepBind did, each positive gets ``negatives_per_positive`` backgrounds by
  dinucleotide shuffling (Altschul-Erickson, counts preserved exactly). The ``_B`` file (500 bound +
  500 shuffled) is the test set.
* ``clip_<RBP>`` (3 PAR-CLIP sets, RNA): positives and negatives in the FASTA headers
  (``class:0|1``); ``_training`` trains, ``_test`` (sites from other genes) tests.

Validation is a grouped (by sequence) share of the training file; a shuffled background always
stays in the split of the positive it came from.

``data.experiment`` picks the experiment; its files become the run's ``data.sources`` (training
file to split, test file ``role: test``) unless sources are given, e.g. a lab's own ``.seq`` table
or labelled FASTA by path; the experiment still says alphabet and whether to shuffle backgrounds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from deepms.datasets.registry import get_dataset
from deepms.io.fasta import SequenceRecord, clip_label
from deepms.sequences import SequenceEncoder, dinucleotide_shuffle
from deepms.sequences.datamodule import SequenceDataModule

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

    def sources(self) -> list[dict[str, Any]]:
        """The experiment as ``data.sources``: the training file split, the test file whole."""
        fmt = "fasta" if self.train.endswith(".fa.gz") else "deepbind_seq"
        train = {"dataset": self.dataset, "files": [self.train], "format": fmt}
        return [train, {**train, "files": [self.test], "role": "test"}]


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
    """Reads one experiment's sources, makes backgrounds where needed, splits by sequence."""

    def __init__(
        self,
        experiment: str = "encode_GABPA",
        negatives_per_positive: int = 1,
        sources: Sequence[Mapping[str, Any]] = (),
        **common: Any,
    ) -> None:
        """``sources``: default the experiment's files; ``common``: split, mirror, cache_dir,
        limit_per_source, ... (the base's)."""
        self.experiment = get_experiment(experiment)
        self.from_experiment = not sources
        super().__init__(sources=sources or self.experiment.sources(), **common)
        self.negatives_per_positive = int(negatives_per_positive)
        self.encoder = SequenceEncoder(self.experiment.alphabet, "onehot")

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        exp = self.experiment
        name = exp.name if self.from_experiment else "+".join(dict.fromkeys(self.source_names))
        lineage = self.start_lineage(name)
        records: list[SequenceRecord] = []
        source_index: list[int] = []
        for index, opened in self.open_sources():
            read = self.subsample(self.read_source(opened, clip_label, exp.alphabet))
            records += read
            source_index += [index] * len(read)
        parts, _ = self.assign(records, source_index)
        if exp.shuffle_negatives:
            for offset, part in enumerate(("train", "val")):
                positives = [r for r in parts[part] if r.label == 1]
                seed = self.split_seed * 2 + offset
                parts[part] += shuffled_negatives(positives, self.negatives_per_positive, seed)
        self.set_datasets(parts)
        counts = {
            k: {"positive": int(sum(r.label for r in v)), "all": len(v)} for k, v in parts.items()
        }
        lineage.extras.update(
            experiment=exp.name,
            alphabet=exp.alphabet,
            negatives="dinucleotide-shuffled positives" if exp.shuffle_negatives else "from file",
            n_positive={k: v["positive"] for k, v in counts.items()},
        )
        log.info("deepbind %s: %s", exp.name, counts)

    def model_kwargs(self) -> dict[str, Any]:
        return {"encoder": self.encoder.to_dict(), "experiment": self.experiment.name}
