"""The deepnovo data module: labelled real spectra, preprocessed, tokenised and split by peptide.

Every source (read through its format; records adapted in :mod:`deepms.tasks.deepnovo.sources`)
becomes samples of (preprocessed peaks, precursor m/z and charge, residue tokens). The split is
grouped by the stripped sequence with I read as L, so no peptide (in any modified form) is in two
splits. A source's ``role`` decides: ``split`` (default) is cut 80/10/10, ``train`` goes wholly
to training (e.g. synthetic spectra: val/test stay real), ``val``/``test`` wholly there; a peptide
held out anywhere is then removed from the less held-out splits
(:meth:`~deepms.training.datamodule.TaskDataModule.assign_parts`), so the split stays
peptide-disjoint.
With ``extra_modifications: auto`` the vocabulary is built from the training split; records with
residues outside it are dropped and counted in the lineage, as are every other dropped record.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from deepms.chem import PROTON, Peptide
from deepms.datasets.sources import OpenedSource
from deepms.datasets.splits import SPLIT_NAMES
from deepms.tasks.deepnovo.preprocess import Preprocessor, mass_error_ppm, precursor_mass
from deepms.tasks.deepnovo.sources import ROLES, labelled
from deepms.tasks.deepnovo.vocab import EOS_ID, UnknownResidueError, build_vocabulary
from deepms.training.datamodule import TaskDataModule

log = logging.getLogger(__name__)


def peptide_group(peptide: Peptide) -> str:
    """The split key: stripped sequence with I read as L."""
    return peptide.sequence.replace("I", "L")


@dataclass
class Sample:
    """One preprocessed labelled spectrum."""

    mz: np.ndarray
    intensity: np.ndarray
    precursor_mz: float
    charge: int
    peptide: Peptide
    source: int
    identifier: str
    tokens: np.ndarray | None = None


class DeNovoDataset(Dataset):
    """Samples as a map-style dataset; ``lengths`` (peptide lengths) drive length bucketing.

    Labels are written as ProForma once, here, not per item per epoch.
    """

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        self.lengths = [len(s.tokens) if s.tokens is not None else 0 for s in samples]
        self.proforma = [s.peptide.to_proforma() if s.peptide is not None else "" for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        return {
            "mz": s.mz,
            "intensity": s.intensity,
            "precursor_mz": s.precursor_mz,
            "charge": s.charge,
            "tokens": s.tokens,
            "source": s.source,
            "peptide": self.proforma[index],
            "identifier": s.identifier,
        }


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad peaks (mask True on real peaks) and tokens (+ EOS, 0 = padding)."""
    batch = len(items)
    n_peaks = max(1, max(len(it["mz"]) for it in items))
    mz = torch.zeros(batch, n_peaks)
    intensity = torch.zeros(batch, n_peaks)
    peak_mask = torch.zeros(batch, n_peaks, dtype=torch.bool)
    for i, it in enumerate(items):
        n = len(it["mz"])
        mz[i, :n] = torch.from_numpy(np.asarray(it["mz"], dtype=np.float32))
        intensity[i, :n] = torch.from_numpy(np.asarray(it["intensity"], dtype=np.float32))
        peak_mask[i, :n] = True
    out: dict[str, Any] = {
        "mz": mz,
        "intensity": intensity,
        "peak_mask": peak_mask,
        "precursor_mz": torch.tensor(
            [float(it["precursor_mz"]) for it in items], dtype=torch.float64
        ),
        "charge": torch.tensor([int(it["charge"]) for it in items]),
        "source": torch.tensor([int(it.get("source", 0)) for it in items]),
        "peptides": [it.get("peptide", "") for it in items],
        "identifiers": [str(it.get("identifier", "")) for it in items],
    }
    out["precursor_mass"] = (out["precursor_mz"] - PROTON) * out["charge"].double()
    if all(it.get("tokens") is not None for it in items):
        longest = max(len(it["tokens"]) for it in items) + 1
        tokens = torch.zeros(batch, longest, dtype=torch.long)
        for i, it in enumerate(items):
            n = len(it["tokens"])
            tokens[i, :n] = torch.as_tensor(it["tokens"], dtype=torch.long)
            tokens[i, n] = EOS_ID
        out["tokens"] = tokens
    return out


class DeNovoDataModule(TaskDataModule):
    """Reads, preprocesses, splits and tokenises the configured sources once."""

    split_kind = "peptide_grouped"
    collate_fn = staticmethod(collate)

    def __init__(
        self,
        preprocessing: dict[str, Any] | None = None,
        vocabulary: dict[str, Any] | None = None,
        max_length: int = 30,
        label_tolerance_ppm: float = 50.0,
        **common: Any,
    ) -> None:
        common.setdefault("batch_size", 32)
        super().__init__(**common)
        for spec in self.sources:
            if spec.role not in ROLES:
                raise ValueError(f"source {spec.describe()}: role must be one of {ROLES}")
        self.preprocessing = dict(preprocessing or {})
        self.preprocessor = Preprocessor(**self.preprocessing)
        self.vocabulary_config = dict(vocabulary or {})
        self.max_length = int(max_length)
        self.label_tolerance_ppm = float(label_tolerance_ppm)
        self.vocab = None
        self.datasets: dict[str, DeNovoDataset] = {}

    def _read(self, index: int, opened: OpenedSource, dropped: Counter) -> list[Sample]:
        name = opened.name
        samples: list[Sample] = []
        mismatched = 0
        for record in opened.records(self.on_error):
            r = labelled(record)
            if r.peptide is None:
                dropped[f"{name}: no label, charge or precursor m/z"] += 1
                continue
            if len(r.peptide.sequence) > self.max_length:
                dropped[f"{name}: longer than {self.max_length}"] += 1
                continue
            peaks = self.preprocessor(r.mz, r.intensity, r.precursor_mz, r.charge)
            if peaks is None:
                dropped[f"{name}: too few peaks after preprocessing"] += 1
                continue
            error = mass_error_ppm(r.peptide, r.precursor_mz, r.charge)
            isotope = 1.00335 / precursor_mass(r.precursor_mz, r.charge) * 1e6
            if min(abs(error), abs(error + isotope)) > self.label_tolerance_ppm:
                mismatched += 1  # kept: a real label whose mass is off (counted for the reader)
            samples.append(Sample(*peaks, r.precursor_mz, r.charge, r.peptide, index, r.identifier))
            if self.limit_per_source and len(samples) >= self.limit_per_source:
                break
        self._lineage.extras["label_mass_off"][name] = mismatched
        return samples

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        lineage = self.start_lineage(label_mass_off={})
        dropped: Counter = Counter()
        samples: list[Sample] = []
        for index, opened in self.open_sources():
            samples.extend(self._read(index, opened, dropped))
        groups = [peptide_group(s.peptide) for s in samples]
        labels = self.assign_parts(groups, [s.source for s in samples])
        for s, label in zip(samples, labels, strict=True):
            if label is None:
                dropped[f"{self.source_names[s.source]}: peptide held out by another source"] += 1
        train_peptides = [
            s.peptide for s, label in zip(samples, labels, strict=True) if label == "train"
        ]
        self.vocab = build_vocabulary(training_peptides=train_peptides, **self.vocabulary_config)
        parts: dict[str, list[Sample]] = {part: [] for part in SPLIT_NAMES}
        for s, label in zip(samples, labels, strict=True):
            if label is None:
                continue
            try:
                s.tokens = np.asarray(self.vocab.encode(s.peptide), dtype=np.int64)
            except UnknownResidueError as exc:
                residue = str(exc).split("residue ")[-1].split(" ")[0]
                dropped[f"{self.source_names[s.source]}: residue {residue} not in vocabulary"] += 1
                continue
            parts[str(label)].append(s)
        for reason, count in sorted(dropped.items()):
            log.warning("deepnovo: dropped %d spectra (%s)", count, reason)
        self.datasets = {k: DeNovoDataset(v) for k, v in parts.items()}
        per_source = {
            name: {k: sum(s.source == i for s in v) for k, v in parts.items()}
            for i, name in enumerate(self.source_names)
        }
        lineage.n_samples = {k: len(v) for k, v in parts.items()}
        lineage.count_dropped(dropped)
        lineage.extras.update(
            n_peptides={k: len({peptide_group(s.peptide) for s in v}) for k, v in parts.items()},
            n_samples_per_source=per_source,
            vocabulary=list(self.vocab.tokens),
            equate_il=self.vocab.equate_il,
            preprocessing=dict(self.preprocessing),
        )
        log.info("deepnovo data: %s; per source %s", lineage.n_samples, per_source)

    def model_kwargs(self) -> dict[str, Any]:
        """What the model needs from the data; saved in its hyperparameters (predictor rebuilds)."""
        return {
            "vocabulary": self.vocab.to_dict(),
            "preprocessing": dict(self.preprocessing),
            "source_names": self.source_names,
        }
