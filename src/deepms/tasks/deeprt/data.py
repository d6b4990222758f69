"""The deeprt datamodule: peptide retention times from DeepLC, DeepRT and DLOmix files.

Every file is read through the shared notation parsers (DeepLC ``pos|Name``, DeepRT digits,
DLOmix/ProForma brackets), its RT converted to one unit per set (seconds become minutes; iRT stays
iRT, which is not a time), and duplicate rows of one modified peptide are merged by their mean RT
(counted in the lineage). Splits are grouped by stripped sequence, so every modified form of a
peptide lands in the same split; a file can carry its own fractions (DLOmix: the train file feeds
train, the val file is halved into val and test), and a peptide that two files would put in
different splits is dropped from the less held-out one.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from deepms.chem import Peptide, parse_deeplc, parse_deeprt, parse_proforma, parse_unimod_bracket
from deepms.chem.encoding import N_RESIDUE_TOKENS, PeptideEncoder
from deepms.datasets.registry import get_dataset, resolve
from deepms.datasets.splits import SPLIT_NAMES, grouped_split, most_held_out, subset_groups
from deepms.errors import DataFormatError, DeepMSError
from deepms.training.batching import BucketedLoaders

log = logging.getLogger(__name__)

UNITS = {"s": ("min", 1 / 60), "min": ("min", 1.0), "irt": ("irt", 1.0)}  # file -> (model, x)


@dataclass(frozen=True)
class TableFormat:
    """Where a file keeps sequence, modifications and RT, and which parser reads the peptide."""

    sep: str
    sequence: str
    rt: str
    parse: Callable[[str, Any], Peptide]
    modifications: str | None = None


FORMATS: dict[str, TableFormat] = {
    "deeplc": TableFormat(",", "seq", "tr", parse_deeplc, "modifications"),
    "deeprt": TableFormat("\t", "sequence", "RT", lambda s, _: parse_deeprt(s)),
    "dlomix": TableFormat(",", "sequence", "irt", lambda s, _: parse_unimod_bracket(s)),
    "proforma": TableFormat(",", "peptide", "rt", lambda s, _: parse_proforma(s)),
}


def convert_rt(value: float, unit: str) -> tuple[float, str]:
    """RT in the set's model unit: seconds become minutes, minutes and iRT stay."""
    if unit not in UNITS:
        raise ValueError(f"unknown RT unit {unit!r}; known: {sorted(UNITS)}")
    target, factor = UNITS[unit]
    return float(value) * factor, target


@dataclass
class RTSample:
    """One modified peptide and its (mean) retention time in the set's unit."""

    peptide: Peptide
    rt: float
    n_rows: int = 1


def read_rt_table(
    path: Path, fmt: str, unit: str, on_error: str = "skip", dropped: Counter | None = None
) -> list[RTSample]:
    """Parse, convert and de-duplicate one file; bad rows are skipped (counted) or raised."""
    spec = FORMATS[fmt]
    table = pd.read_csv(path, sep=spec.sep, dtype=str, keep_default_na=False)
    missing = [c for c in (spec.sequence, spec.rt, spec.modifications) if c and c not in table]
    if missing:
        raise DataFormatError(path, "header", f"missing column(s) {missing} for format {fmt!r}")
    encoder = PeptideEncoder()
    mods = table[spec.modifications] if spec.modifications else [None] * len(table)
    merged: dict[str, RTSample] = {}
    rows = zip(table[spec.sequence], mods, table[spec.rt], strict=True)
    for row, (seq, mod, rt_text) in enumerate(rows):
        try:
            peptide = spec.parse(seq, mod or None)
            encoder.encode_residues(peptide)  # refuses residues the models cannot encode
            rt = float(rt_text)
            if not math.isfinite(rt):
                raise ValueError(f"retention time {rt_text!r} is not a finite number")
        except (DeepMSError, ValueError) as err:
            if on_error == "raise":
                raise DataFormatError(path, f"line {row + 2} ({seq!r})", err) from err
            if dropped is not None:
                dropped[f"{path.name}: {type(err).__name__}"] += 1
            log.debug("%s line %d: %s", path, row + 2, err)
            continue
        key = peptide.to_proforma()
        value, _ = convert_rt(rt, unit)
        if key in merged:
            sample = merged[key]
            sample.rt += (value - sample.rt) / (sample.n_rows + 1)  # running mean
            sample.n_rows += 1
        else:
            merged[key] = RTSample(peptide, value)
    return list(merged.values())


class RTDataset(Dataset):
    """Samples as a map-style dataset; :func:`collate` pads a batch."""

    def __init__(self, samples: list[RTSample], encoder: PeptideEncoder) -> None:
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
            "rt": s.rt,
            "peptide": s.peptide.to_proforma(),
        }


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad residues and modification features to the longest peptide of the batch."""
    lengths = torch.tensor([len(it["residues"]) for it in items])
    residues = torch.zeros(len(items), int(lengths.max()), dtype=torch.long)
    mods = torch.zeros(len(items), int(lengths.max()), items[0]["mods"].shape[1])
    for i, it in enumerate(items):
        residues[i, : len(it["residues"])] = torch.from_numpy(it["residues"])
        mods[i, : len(it["residues"])] = torch.from_numpy(it["mods"])
    return {
        "residues": residues,
        "mods": mods,
        "lengths": lengths,
        "rt": torch.tensor([it["rt"] for it in items], dtype=torch.float32),
        "peptides": [it["peptide"] for it in items],
    }


class RTDataModule(BucketedLoaders, pl.LightningDataModule):
    """Reads one catalogued RT set, splits it by peptide and serves length-bucketed batches."""

    collate_fn = staticmethod(collate)

    def __init__(
        self,
        dataset: str,
        format: str,
        unit: str,
        files: Sequence[dict[str, Any]] | None = None,
        mirror: str | None = None,
        cache_dir: str | None = None,
        split: dict[str, Any] | None = None,
        fraction: float = 1.0,
        max_peptides: int | None = None,
        max_length: int | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        bucket_pool: int = 50,
        on_error: str = "skip",
    ) -> None:
        super().__init__()
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; known: {sorted(FORMATS)}")
        self.dataset, self.format = dataset, format
        self.unit = unit
        self.rt_unit = convert_rt(0.0, unit)[1]
        self.mirror = Path(mirror) if mirror else None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        split = dict(split or {})
        self.split_fractions = tuple(float(f) for f in split.get("fractions", (0.8, 0.1, 0.1)))
        self.split_seed = int(split.get("seed", 0))
        self.files = [dict(f) for f in files] if files else None
        self.fraction = float(fraction)
        self.max_peptides, self.max_length = max_peptides, max_length
        self.batch_size, self.num_workers, self.bucket_pool = batch_size, num_workers, bucket_pool
        self.on_error = on_error
        self.encoder = PeptideEncoder()
        self.datasets: dict[str, RTDataset] = {}
        self._lineage: dict[str, Any] = {}

    def _file_specs(self) -> list[tuple[str, tuple[float, ...]]]:
        if self.files:
            return [(f["path"], tuple(f.get("split", self.split_fractions))) for f in self.files]
        return [(f.path, self.split_fractions) for f in get_dataset(self.dataset).files]

    @property
    def split_name(self) -> str:
        """E.g. ``peptide_grouped_80_10_10_seed42``; per-file fractions and subsets are named."""
        parts = ["_".join(str(round(x * 100)) for x in fr) for _, fr in self._file_specs()]
        name = f"peptide_grouped_{'+'.join(dict.fromkeys(parts))}_seed{self.split_seed}"
        name += f"_max{self.max_peptides}" if self.max_peptides else ""
        return name + (f"_frac{self.fraction:g}" if self.fraction < 1 else "")

    def _read(self, dropped: Counter) -> tuple[list[RTSample], list[str]]:
        paths = resolve(self.dataset, mirror=self.mirror, cache_dir=self.cache_dir)
        samples, labels = [], []
        for path, fractions in self._file_specs():
            found = read_rt_table(paths[path], self.format, self.unit, self.on_error, dropped)
            if self.max_length:
                kept = [s for s in found if len(s.peptide) <= self.max_length]
                dropped[f"{Path(path).name}: over {self.max_length}"] += len(found) - len(kept)
                found = kept
            samples += found
            labels += grouped_split(
                [s.peptide.sequence for s in found], fractions, seed=self.split_seed
            ).tolist()
        return samples, labels

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        dropped: Counter = Counter()
        samples, labels = self._read(dropped)
        seqs = [s.peptide.sequence for s in samples]
        keep = most_held_out(seqs, labels)
        dropped["peptide in two splits (kept in the held-out one)"] += int((~keep).sum())
        if self.max_peptides:  # a fixed-seed subset of whole sequence groups (studies, tests)
            keep &= subset_groups(seqs, max_groups=self.max_peptides, seed=self.split_seed)
        pairs = [(s, lab) for s, lab, k in zip(samples, labels, keep, strict=True) if k]
        self.encoder.fit(s.peptide for s, _ in pairs)
        seqs = [s.peptide.sequence for s, _ in pairs]
        kept = subset_groups(seqs, self.fraction, seed=self.split_seed, salt="fraction")
        for part in SPLIT_NAMES:  # `fraction` thins train and val; test stays whole
            chosen = [
                s
                for (s, lab), k in zip(pairs, kept, strict=True)
                if lab == part and (k or part == "test")
            ]
            self.datasets[part] = RTDataset(chosen, self.encoder)
        for reason, count in dropped.items():
            if count:
                log.warning("dropped %d rows (%s)", count, reason)
        if not len(self.datasets["train"]):
            raise ValueError(f"{self.dataset}: no training peptides left after splitting")
        files = {f.path: f.sha256 for f in get_dataset(self.dataset).files}
        sizes = {k: len(v) for k, v in self.datasets.items()}
        self._lineage = {
            "name": self.dataset,
            "datasets": {self.dataset: files},
            "split": self.split_name,
            "seed": self.split_seed,
            "rt_unit": self.rt_unit,
            "source_unit": self.unit,
            "duplicates": "rows of one modified peptide merged into their mean RT",
            "n_samples": sizes,
            "n_peptides": {
                k: len({s.peptide.sequence for s in v.samples}) for k, v in self.datasets.items()
            },
            "n_rows_merged": sum(s.n_rows - 1 for s, _ in pairs),
            "dropped": {k: v for k, v in dropped.items() if v},
            "modifications": list(self.encoder.modifications),
        }
        log.info("deeprt data %s (%s): %s", self.dataset, self.rt_unit, sizes)

    def lineage(self) -> dict[str, Any]:
        return self._lineage

    def model_kwargs(self) -> dict[str, Any]:
        """Vocabulary, RT unit and train-set scaling; saved in the model's hyperparameters."""
        rts = np.array([s.rt for s in self.datasets["train"].samples], dtype=np.float64)
        return {
            "n_residue_tokens": N_RESIDUE_TOKENS,
            "encoder": self.encoder.to_dict(),
            "rt_unit": self.rt_unit,
            "rt_mean": float(rts.mean()),
            "rt_std": float(rts.std()) or 1.0,
            "data_name": self.dataset,
        }
