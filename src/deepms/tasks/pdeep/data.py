"""The pdeep datamodule: real spectra from several sources, annotated into per-bond b/y targets.

Every source is reduced to the same sample: a peptide, its precursor charge, what is known of the
acquisition (collision energy, fragmentation, analyser; unknown stays unknown, flagged, never
invented) and a target matrix ``[bonds, 2 * len(fragment_charges)]`` ordered b(z=1..), y(z=1..).
Ions that cannot exist (fragment charge above the precursor charge, or marked impossible by the
source) are masked. Targets are divided by the spectrum's most intense annotated ion.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from deepms.chem import annotate
from deepms.chem.encoding import N_RESIDUE_TOKENS, PeptideEncoder, pad_encoded
from deepms.datasets.sources import OpenedSource
from deepms.datasets.splits import SPLIT_NAMES
from deepms.io.spectrum import AnnotatedSpectrum
from deepms.training.datamodule import TaskDataModule

log = logging.getLogger(__name__)

MAX_CHARGE = 6
FRAGMENTATIONS = ("HCD", "CID")
ANALYZERS = ("FTMS", "ITMS")
#: where a source's spectra may go: cut by the split, or all to one part
ROLES = ("split", *SPLIT_NAMES)
N_META = MAX_CHARGE + 2 + len(FRAGMENTATIONS) + 1 + len(ANALYZERS) + 1


def meta_features(
    charge: int, collision_energy: float | None, fragmentation: str | None, analyzer: str | None
) -> np.ndarray:
    """Per-spectrum inputs: charge one-hot, NCE/100 with a known flag, fragmentation, analyser."""
    meta = np.zeros(N_META, dtype=np.float32)
    meta[min(max(charge, 1), MAX_CHARGE) - 1] = 1.0
    if collision_energy is not None and np.isfinite(collision_energy):
        meta[MAX_CHARGE] = collision_energy / 100.0
        meta[MAX_CHARGE + 1] = 1.0
    offset = MAX_CHARGE + 2
    kind = (fragmentation or "").upper()
    meta[offset + (FRAGMENTATIONS.index(kind) if kind in FRAGMENTATIONS else 2)] = 1.0
    offset += len(FRAGMENTATIONS) + 1
    kind = (analyzer or "").upper()
    meta[offset + (ANALYZERS.index(kind) if kind in ANALYZERS else 2)] = 1.0
    return meta


@dataclass
class Sample:
    """One spectrum reduced to model inputs and targets."""

    peptide: Any
    charge: int
    meta: np.ndarray
    target: np.ndarray  # float32 [bonds, channels], normalised to max 1
    mask: np.ndarray  # bool [bonds, channels]
    source: int
    identifier: str


def ion_mask(n_bonds: int, precursor_charge: int, fragment_charges: Sequence[int]) -> np.ndarray:
    """bool [bonds, 2 * charges]: False where the fragment charge exceeds the precursor charge."""
    allowed = np.array([z <= max(1, precursor_charge) for z in fragment_charges])
    return np.tile(np.concatenate([allowed, allowed]), (n_bonds, 1))


def make_sample(
    record: Any,
    raw: np.ndarray,
    fragment_charges: Sequence[int],
    source: int,
    overrides: dict[str, Any],
) -> Sample | None:
    """Normalise, mask and wrap one record; None when no annotated ion has intensity.

    ``overrides`` (a source's ``nce``, ``fragmentation``, ``analyzer`` options) fill only what
    the record leaves unknown."""
    peptide, charge = record.peptide, int(record.precursor_charge)
    n_bonds = len(peptide.sequence) - 1
    target = raw.reshape(n_bonds, -1).astype(np.float32)
    mask = ion_mask(n_bonds, charge, fragment_charges) & (target >= 0)
    target = np.where(mask, target, 0.0).astype(np.float32)
    top = float(target.max()) if target.size else 0.0
    if top <= 0:
        return None
    meta = meta_features(
        charge,
        record.collision_energy if record.collision_energy is not None else overrides.get("nce"),
        record.fragmentation or overrides.get("fragmentation"),
        record.analyzer or overrides.get("analyzer"),
    )
    return Sample(peptide, charge, meta, target / top, mask, source, str(record.identifier))


def record_targets(
    record: Any, fragment_charges: Sequence[int], tolerance: float, unit: str
) -> np.ndarray:
    """Raw b/y intensities ``[bonds, 2, charges]`` of one record, by what the record holds.

    A peak list (:class:`Spectrum`) is annotated at the tolerance; a source that stores ions
    (:class:`AnnotatedSpectrum`: pDeep2, Prosit) gives its intensities of those charges.
    """
    if isinstance(record, AnnotatedSpectrum):
        return record.intensities[:, :, [z - 1 for z in fragment_charges]]
    raw = annotate(
        record.peptide,
        record.mz,
        record.intensity,
        tolerance,
        unit,
        charges=tuple(fragment_charges),
    )
    return raw[..., 0]  # [bonds, 2, charges, 1 loss] -> [bonds, 2, charges]


class SpectrumDataset(Dataset):
    """Samples as a map-style dataset, batched by :func:`collate`.

    Peptides are encoded (and written as ProForma) once, here, not per item per epoch.
    """

    def __init__(self, samples: list[Sample], encoder: PeptideEncoder) -> None:
        self.samples = samples
        self.n_mod_features = encoder.n_mod_features
        self.encoded = [encoder.encode(s.peptide) for s in samples]
        self.proforma = [s.peptide.to_proforma() for s in samples]  # Lightning moves no dataclass
        self.lengths = [len(s.peptide.sequence) for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        residues, mods = self.encoded[index]
        return {
            "residues": residues,
            "mods": mods,
            "meta": s.meta,
            "target": s.target,
            "mask": s.mask,
            "source": s.source,
            "peptide": self.proforma[index],
            "charge": s.charge,
        }


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad residues to the longest peptide (:func:`pad_encoded`) and bonds to one fewer."""
    encoded = pad_encoded([(it["residues"], it["mods"]) for it in items], items[0]["mods"].shape[1])
    longest = encoded.residues.shape[1]
    channels = items[0]["target"].shape[1]
    target = torch.zeros(len(items), longest - 1, channels)
    mask = torch.zeros(len(items), longest - 1, channels, dtype=torch.bool)
    for i, it in enumerate(items):
        n = len(it["residues"])
        target[i, : n - 1] = torch.from_numpy(it["target"])
        mask[i, : n - 1] = torch.from_numpy(it["mask"])
    return {
        "residues": torch.from_numpy(encoded.residues),
        "mods": torch.from_numpy(encoded.mods),
        "meta": torch.from_numpy(np.stack([it["meta"] for it in items])),
        "lengths": torch.from_numpy(encoded.lengths),
        "target": target,
        "mask": mask,
        "source": torch.tensor([it["source"] for it in items]),
        "peptides": [it["peptide"] for it in items],
        "charges": [it["charge"] for it in items],
    }


class PDeepDataModule(TaskDataModule):
    """Reads, annotates and splits the configured sources once; serves length-bucketed batches.

    Every source is read through its format (catalogued or by path); a source's ``nce``,
    ``fragmentation`` and ``analyzer`` options fill what its records leave unknown.
    """

    split_kind = "peptide_grouped"
    collate_fn = staticmethod(collate)

    def __init__(
        self,
        fragment_charges: Sequence[int] = (1, 2),
        annotation_tolerance: float = 20.0,
        annotation_unit: str = "ppm",
        max_length: int = 30,
        mod_encoding: str = "vocabulary",
        **common: Any,
    ) -> None:
        """``mod_encoding``: vocabulary (default), composition or both (deepms.chem.encoding);
        composition lets the model predict modifications it never trained on."""
        super().__init__(**common)
        for spec in self.sources:
            if spec.role not in ROLES:
                raise ValueError(f"source {spec.describe()}: pdeep serves the roles {ROLES}")
        self.fragment_charges = tuple(int(z) for z in fragment_charges)
        self.annotation_tolerance = float(annotation_tolerance)
        self.annotation_unit = annotation_unit
        self.max_length = max_length
        self.encoder = PeptideEncoder(mod_encoding=mod_encoding)
        self.datasets: dict[str, SpectrumDataset] = {}

    def _read_source(self, index: int, opened: OpenedSource, dropped: Counter) -> list[Sample]:
        name, options = opened.name, dict(opened.spec.options)
        samples: list[Sample] = []
        for record in opened.records(self.on_error):
            if record.peptide is None or not record.precursor_charge:
                dropped[f"{name}: no peptide label or precursor charge"] += 1
                continue
            if len(record.peptide.sequence) > self.max_length:
                dropped[f"{name}: longer than {self.max_length}"] += 1
                continue
            raw = record_targets(
                record, self.fragment_charges, self.annotation_tolerance, self.annotation_unit
            )
            sample = make_sample(record, raw, self.fragment_charges, index, options)
            if sample is None:
                dropped[f"{name}: no annotated b/y ion"] += 1
                continue
            samples.append(sample)
            if self.limit_per_source and len(samples) >= self.limit_per_source:
                break
        return samples

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        lineage = self.start_lineage()
        dropped: Counter = Counter()
        samples: list[Sample] = []
        for index, opened in self.open_sources():
            samples.extend(self._read_source(index, opened, dropped))
        self.encoder.fit(s.peptide for s in samples)
        labels = self.assign_parts(
            [s.peptide.sequence for s in samples], [s.source for s in samples]
        )
        for s, label in zip(samples, labels, strict=True):
            if label is None:
                dropped[f"{self.source_names[s.source]}: peptide held out by another source"] += 1
        for reason, count in dropped.items():
            log.warning("dropped %d spectra (%s)", count, reason)
        for part in SPLIT_NAMES:
            chosen = [s for s, label in zip(samples, labels, strict=True) if label == part]
            self.datasets[part] = SpectrumDataset(chosen, self.encoder)
        lineage.n_samples = {k: len(v) for k, v in self.datasets.items()}
        lineage.count_dropped(dropped)
        lineage.extras["n_peptides"] = {
            k: len({s.peptide.sequence for s in v.samples}) for k, v in self.datasets.items()
        }
        log.info("pdeep data: %s", lineage.n_samples)

    def model_kwargs(self) -> dict[str, Any]:
        """Sizes and vocabularies the model needs; saved in its hyperparameters."""
        return {
            "n_residue_tokens": N_RESIDUE_TOKENS,
            "n_meta": N_META,
            "fragment_charges": list(self.fragment_charges),
            "encoder": self.encoder.to_dict(),
            "source_names": self.source_names,
        }
