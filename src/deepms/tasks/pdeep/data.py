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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import Dataset

from deepms.chem import annotate
from deepms.chem.encoding import N_RESIDUE_TOKENS, PeptideEncoder
from deepms.datasets.registry import get_dataset, resolve
from deepms.datasets.splits import grouped_split
from deepms.io import read_peprec_mgf, read_plabel, read_prosit_parquet
from deepms.training.batching import BucketedLoaders

log = logging.getLogger(__name__)

MAX_CHARGE = 6
FRAGMENTATIONS = ("HCD", "CID")
ANALYZERS = ("FTMS", "ITMS")
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
    """Normalise, mask and wrap one record; None when no annotated ion has intensity."""
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


def _peak_targets(records: Iterable[Any], charges: Sequence[int], tol: float, unit: str):
    for record in records:
        raw = annotate(
            record.peptide, record.mz, record.intensity, tol, unit, charges=tuple(charges)
        )
        yield record, raw[..., 0]  # [bonds, 2, charges, 1 loss] -> [bonds, 2, charges]


def _annotated_targets(records: Iterable[Any], charges: Sequence[int]):
    picks = [z - 1 for z in charges]
    for record in records:
        yield record, record.intensities[:, :, picks]


Loader = Callable[[dict[str, Path], "PDeepDataModule"], Iterable[tuple[Any, np.ndarray]]]


def _load_peprec_mgf(files: dict[str, Path], dm: PDeepDataModule):
    peprec = next(p for k, p in files.items() if k.endswith(".peprec"))
    mgf = next(p for k, p in files.items() if k.endswith(".mgf"))
    records = read_peprec_mgf(peprec, mgf, on_error=dm.on_error)
    return _peak_targets(records, dm.fragment_charges, dm.annotation_tolerance, dm.annotation_unit)


def _load_plabel(files: dict[str, Path], dm: PDeepDataModule):
    for path in files.values():
        yield from _annotated_targets(read_plabel(path, on_error=dm.on_error), dm.fragment_charges)


def _load_prosit(files: dict[str, Path], dm: PDeepDataModule):
    for path in files.values():
        yield from _annotated_targets(
            read_prosit_parquet(path, on_error=dm.on_error), dm.fragment_charges
        )


LOADERS: dict[str, Loader] = {
    "peprec_mgf": _load_peprec_mgf,
    "plabel": _load_plabel,
    "prosit_parquet": _load_prosit,
}


class SpectrumDataset(Dataset):
    """Samples as a map-style dataset; batches are padded by :func:`collate`."""

    def __init__(self, samples: list[Sample], encoder: PeptideEncoder) -> None:
        self.samples = samples
        self.encoder = encoder
        self.lengths = [len(s.peptide.sequence) for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        return {
            "residues": self.encoder.encode_residues(s.peptide),
            "mods": self.encoder.encode_modifications(s.peptide),
            "meta": s.meta,
            "target": s.target,
            "mask": s.mask,
            "source": s.source,
            "peptide": s.peptide.to_proforma(),  # strings: Lightning cannot move dataclasses
            "charge": s.charge,
        }


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad residues to the longest peptide in the batch and bonds to one fewer."""
    lengths = torch.tensor([len(it["residues"]) for it in items])
    longest = int(lengths.max())
    batch = len(items)
    channels = items[0]["target"].shape[1]
    residues = torch.zeros(batch, longest, dtype=torch.long)
    mods = torch.zeros(batch, longest, items[0]["mods"].shape[1])
    target = torch.zeros(batch, longest - 1, channels)
    mask = torch.zeros(batch, longest - 1, channels, dtype=torch.bool)
    for i, it in enumerate(items):
        n = len(it["residues"])
        residues[i, :n] = torch.from_numpy(it["residues"])
        mods[i, :n] = torch.from_numpy(it["mods"])
        target[i, : n - 1] = torch.from_numpy(it["target"])
        mask[i, : n - 1] = torch.from_numpy(it["mask"])
    return {
        "residues": residues,
        "mods": mods,
        "meta": torch.from_numpy(np.stack([it["meta"] for it in items])),
        "lengths": lengths,
        "target": target,
        "mask": mask,
        "source": torch.tensor([it["source"] for it in items]),
        "peptides": [it["peptide"] for it in items],
        "charges": [it["charge"] for it in items],
    }


class PDeepDataModule(BucketedLoaders, pl.LightningDataModule):
    """Reads, annotates and splits the configured sources once; serves length-bucketed batches."""

    collate_fn = staticmethod(collate)

    def __init__(
        self,
        sources: Sequence[dict[str, Any]],
        mirror: str | None = None,
        cache_dir: str | None = None,
        fragment_charges: Sequence[int] = (1, 2),
        annotation_tolerance: float = 20.0,
        annotation_unit: str = "ppm",
        max_length: int = 30,
        split: dict[str, Any] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        bucket_pool: int = 50,
        limit_per_source: int | None = None,
        on_error: str = "skip",
    ) -> None:
        super().__init__()
        self.sources = [dict(s) for s in sources]
        self.mirror = Path(mirror) if mirror else None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.fragment_charges = tuple(int(z) for z in fragment_charges)
        self.annotation_tolerance = float(annotation_tolerance)
        self.annotation_unit = annotation_unit
        self.max_length = max_length
        split = dict(split or {})
        self.split_fractions = tuple(split.get("fractions", (0.8, 0.1, 0.1)))
        self.split_seed = int(split.get("seed", 0))
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.bucket_pool = bucket_pool
        self.limit_per_source = limit_per_source
        self.on_error = on_error  # "skip": log bad records (file, record, cause), keep good ones
        self.encoder = PeptideEncoder()
        self.datasets: dict[str, SpectrumDataset] = {}
        self._lineage: dict[str, Any] = {}

    @property
    def source_names(self) -> list[str]:
        return [s["dataset"] for s in self.sources]

    @property
    def split_name(self) -> str:
        parts = "_".join(str(round(f * 100)) for f in self.split_fractions)
        return f"peptide_grouped_{parts}_seed{self.split_seed}"

    def _read_source(self, index: int, source: dict[str, Any], dropped: Counter) -> list[Sample]:
        name, fmt = source["dataset"], source["format"]
        if fmt not in LOADERS:
            raise ValueError(f"source {name}: unknown format {fmt!r}; known: {sorted(LOADERS)}")
        files = resolve(name, mirror=self.mirror, cache_dir=self.cache_dir)
        self._lineage["datasets"][name] = {f.path: f.sha256 for f in get_dataset(name).files}
        samples: list[Sample] = []
        for record, raw in LOADERS[fmt](files, self):
            if len(record.peptide.sequence) > self.max_length:
                dropped[f"{name}: longer than {self.max_length}"] += 1
                continue
            sample = make_sample(record, raw, self.fragment_charges, index, source)
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
        self._lineage = {"datasets": {}, "split": self.split_name}
        dropped: Counter = Counter()
        samples: list[Sample] = []
        for index, source in enumerate(self.sources):
            samples.extend(self._read_source(index, source, dropped))
        for reason, count in dropped.items():
            log.warning("dropped %d spectra (%s)", count, reason)
        self.encoder.fit(s.peptide for s in samples)
        labels = grouped_split(
            [s.peptide.sequence for s in samples], self.split_fractions, seed=self.split_seed
        )
        for part in ("train", "val", "test"):
            chosen = [s for s, label in zip(samples, labels, strict=True) if label == part]
            self.datasets[part] = SpectrumDataset(chosen, self.encoder)
        self._lineage.update(
            name="+".join(self.source_names),
            seed=self.split_seed,
            n_spectra={k: len(v) for k, v in self.datasets.items()},
            n_peptides={
                k: len({s.peptide.sequence for s in v.samples}) for k, v in self.datasets.items()
            },
            dropped=dict(dropped),
        )
        log.info("pdeep data: %s", self._lineage["n_spectra"])

    def lineage(self) -> dict[str, Any]:
        return self._lineage

    def model_kwargs(self) -> dict[str, Any]:
        """Sizes and vocabularies the model needs; saved in its hyperparameters."""
        return {
            "n_residue_tokens": N_RESIDUE_TOKENS,
            "n_meta": N_META,
            "fragment_charges": list(self.fragment_charges),
            "encoder": self.encoder.to_dict(),
            "source_names": self.source_names,
        }
