"""The deeprt datamodule: peptide retention times from DeepLC, DeepRT, DLOmix and ProForma tables.

Sources are read through the registered RT formats (:mod:`deepms.io.rt_table`: ``rt_deeplc``,
``rt_deeprt``, ``rt_dlomix``, ``rt_proforma``), catalogued or a user's own file by path; each
source names the unit of its file (``unit: s | min | irt``). RT is converted to one model unit
per run (seconds become minutes; iRT stays iRT, which is not a time), and duplicate rows of one
modified peptide in a file are merged by their mean RT (counted in the lineage). Splits are grouped
by stripped sequence, so every modified form of a peptide lands in the same part; a source can
carry its own fractions (DLOmix: the train file feeds train, the val file is halved into val and
test), and a peptide that two sources would put in different parts is dropped from the less
held-out one. Under ``cv`` the fold decides the parts, and the RT scaling the model gets comes
from the fold's training rows only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from deepms.chem import Peptide
from deepms.chem.encoding import N_RESIDUE_TOKENS, EncodedBatch, PeptideEncoder, pad_encoded
from deepms.datasets.sources import OpenedSource, SourceSpec
from deepms.datasets.splits import SPLIT_NAMES, subset_groups
from deepms.errors import DeepMSError
from deepms.io.formats import get_format
from deepms.io.rt_table import LAYOUTS, drop_row
from deepms.training.datamodule import TaskDataModule

log = logging.getLogger(__name__)

UNITS = {"s": ("min", 1 / 60), "min": ("min", 1.0), "irt": ("irt", 1.0)}  # file -> (model, x)
#: the table layouts by their short names (``rt_<name>`` is the registered format)
FORMATS = tuple(name.removeprefix("rt_") for name in LAYOUTS)
TWO_PARTS = "peptide in two splits (kept in the held-out one)"


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


def merge_rows(
    rows: Any, unit: str, on_error: str = "skip", dropped: Counter | None = None
) -> dict[Path, list[RTSample]]:
    """Per file, one sample per modified peptide (mean RT of its rows, in the model unit).

    Rows the models cannot encode (a residue without an embedding) are refused like bad rows.
    """
    encoder = PeptideEncoder()
    merged: dict[Path, dict[str, RTSample]] = {}
    for row in rows:
        try:
            encoder.encode_residues(row.peptide)
        except (DeepMSError, ValueError) as err:
            drop_row(row.path, row.line, row.text, err, on_error, dropped)
            continue
        samples = merged.setdefault(row.path, {})
        key = row.peptide.to_proforma()
        value, _ = convert_rt(row.rt, unit)
        if key in samples:
            sample = samples[key]
            sample.rt += (value - sample.rt) / (sample.n_rows + 1)  # running mean
            sample.n_rows += 1
        else:
            samples[key] = RTSample(row.peptide, value)
    return {path: list(samples.values()) for path, samples in merged.items()}


def read_rt_table(
    path: Path, fmt: str, unit: str, on_error: str = "skip", dropped: Counter | None = None
) -> list[RTSample]:
    """Parse, convert and de-duplicate one file (``fmt``: deeplc, deeprt, dlomix, proforma)."""
    name = fmt if fmt.startswith("rt_") else f"rt_{fmt}"
    rows = get_format(name).read([Path(path)], on_error, dropped=dropped)
    return merge_rows(rows, unit, on_error, dropped).get(Path(path), [])


class RTDataset(Dataset):
    """Samples as a map-style dataset, encoded once here (not per item per epoch)."""

    def __init__(self, samples: list[RTSample], encoder: PeptideEncoder) -> None:
        self.samples = samples
        self.encoder = encoder
        self.lengths = [len(s.peptide.sequence) for s in samples]
        self.residues = [encoder.encode_residues(s.peptide) for s in samples]
        self.mods = [encoder.encode_modifications(s.peptide) for s in samples]
        self.peptides = [s.peptide.to_proforma() for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "residues": self.residues[index],
            "mods": self.mods[index],
            "rt": self.samples[index].rt,
            "peptide": self.peptides[index],
        }


def _as_tensors(batch: EncodedBatch) -> dict[str, torch.Tensor]:
    return {
        "residues": torch.from_numpy(batch.residues),
        "mods": torch.from_numpy(batch.mods),
        "lengths": torch.from_numpy(batch.lengths),
    }


def encode_peptides(peptides: Sequence[Peptide], encoder: PeptideEncoder) -> dict[str, Any]:
    """A model batch of parsed peptides (no RT): what a predictor feeds the network."""
    return _as_tensors(encoder.encode_batch(peptides))


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad a training batch; RT and the ProForma peptides ride along."""
    encoded = [(it["residues"], it["mods"]) for it in items]
    batch = _as_tensors(pad_encoded(encoded, items[0]["mods"].shape[1]))
    batch["rt"] = torch.tensor([it["rt"] for it in items], dtype=torch.float32)
    batch["peptides"] = [it["peptide"] for it in items]
    return batch


class RTDataModule(TaskDataModule):
    """Reads RT tables (catalogued or by path), splits them by peptide, serves bucketed batches."""

    split_kind = "peptide_grouped"
    collate_fn = staticmethod(collate)

    def __init__(
        self,
        sources: Sequence[Mapping[str, Any] | SourceSpec],
        fraction: float = 1.0,
        max_peptides: int | None = None,
        max_length: int | None = None,
        **common: Any,
    ) -> None:
        """``sources``: RT tables, each with its file ``unit`` (s, min or irt); ``fraction``
        thins train and val (transfer learning); ``common``: the base's settings."""
        super().__init__(sources, **common)
        if not self.sources:
            raise ValueError("deeprt: data.sources is empty; name at least one RT table")
        self.units = [self._unit_of(spec) for spec in self.sources]
        model_units = {convert_rt(0.0, unit)[1] for unit in self.units}
        if len(model_units) > 1:
            raise ValueError(
                f"deeprt: the sources' units {self.units} give RT in {sorted(model_units)}; "
                "one run trains on one RT unit (min or irt)"
            )
        self.rt_unit = model_units.pop()
        self.unit = "+".join(dict.fromkeys(self.units))  # the files' unit(s), for the lineage
        self.fraction = float(fraction)
        self.max_peptides, self.max_length = max_peptides, max_length
        self.encoder = PeptideEncoder()
        extra = [s.role for s in self.sources if s.role not in ("split", *SPLIT_NAMES)]
        self.parts = (*SPLIT_NAMES, *dict.fromkeys(extra))
        self.test_parts = ("test", *dict.fromkeys(extra))

    @staticmethod
    def _unit_of(spec: SourceSpec) -> str:
        if get_format(spec.format).record != "RTRow":
            known = ", ".join(f"rt_{name}" for name in FORMATS)
            raise ValueError(f"deeprt source {spec.describe()}: use an RT table format ({known})")
        unit = spec.option("unit")
        if unit not in UNITS:
            raise ValueError(
                f"deeprt source {spec.describe()}: unit {unit!r}; give the file's RT unit "
                f"(unit: {' | '.join(UNITS)})"
            )
        return str(unit)

    @property
    def data_name(self) -> str:
        """The run's data in names and logs: its sources' labels (a data set named once)."""
        return "+".join(dict.fromkeys(self.source_names))

    @property
    def split_name(self) -> str:
        """E.g. ``peptide_grouped_80_10_10_seed42``; per-source fractions and subsets are named."""
        if self.cv is not None:
            name = super().split_name
        else:
            own = [s.split or self.split_fractions for s in self.sources if s.role == "split"]
            parts = ["_".join(str(round(x * 100)) for x in fr) for fr in own]
            roles = sorted({s.role for s in self.sources} - {"split"})
            cuts = f"_{'+'.join(dict.fromkeys(parts))}" if parts else ""
            name = f"{self.split_kind}{cuts}_seed{self.split_seed}"
            name += "".join(f"+{role}_only_sources" for role in roles)
        name += f"_max{self.max_peptides}" if self.max_peptides else ""
        return name + (f"_frac{self.fraction:g}" if self.fraction < 1 else "")

    def _read(self, index: int, opened: OpenedSource, dropped: Counter) -> list[RTSample]:
        rows = opened.records(self.on_error, dropped=dropped)
        samples: list[RTSample] = []
        for path, found in merge_rows(rows, self.units[index], self.on_error, dropped).items():
            if self.max_length:
                kept = [s for s in found if len(s.peptide) <= self.max_length]
                dropped[f"{path.name}: over {self.max_length}"] += len(found) - len(kept)
                found = kept
            samples += found
        if self.limit_per_source:
            samples = samples[: self.limit_per_source]
        return samples

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        lineage = self.start_lineage(self.data_name)
        dropped: Counter = Counter()
        samples: list[RTSample] = []
        source_index: list[int] = []
        for index, opened in self.open_sources():
            found = self._read(index, opened, dropped)
            samples += found
            source_index += [index] * len(found)
        seqs = [s.peptide.sequence for s in samples]
        labels = self.assign_parts(seqs, source_index)
        keep = np.array([label is not None for label in labels], dtype=bool)
        dropped[TWO_PARTS] += int((~keep).sum())
        if self.max_peptides:  # a fixed-seed subset of whole sequence groups (studies, tests)
            keep &= subset_groups(seqs, max_groups=self.max_peptides, seed=self.split_seed)
        pairs = [(s, lab) for s, lab, k in zip(samples, labels, keep, strict=True) if k]
        # the modification vocabulary spans every part: it carries no RT, and a column only
        # training rows set stays zero for the others (the projection starts at zero)
        self.encoder.fit(s.peptide for s, _ in pairs)
        seqs = [s.peptide.sequence for s, _ in pairs]
        kept = subset_groups(seqs, self.fraction, seed=self.split_seed, salt="fraction")
        for part in self.parts:  # `fraction` thins train and val; held-out parts stay whole
            chosen = [
                s
                for (s, lab), k in zip(pairs, kept, strict=True)
                if lab == part and (k or part not in ("train", "val"))
            ]
            self.datasets[part] = RTDataset(chosen, self.encoder)
        for reason, count in dropped.items():
            if count:
                log.warning("dropped %d rows (%s)", count, reason)
        if not len(self.datasets["train"]):
            raise ValueError(f"{self.data_name}: no training peptides left after splitting")
        sizes = {k: len(v) for k, v in self.datasets.items()}
        lineage.n_samples = sizes
        lineage.count_dropped(dropped)
        lineage.extras.update(
            rt_unit=self.rt_unit,
            source_unit=self.unit,
            duplicates="rows of one modified peptide merged into their mean RT",
            n_peptides={
                k: len({s.peptide.sequence for s in v.samples}) for k, v in self.datasets.items()
            },
            n_rows_merged=sum(s.n_rows - 1 for s, _ in pairs),
            modifications=list(self.encoder.modifications),
        )
        log.info("deeprt data %s (%s): %s", self.data_name, self.rt_unit, sizes)

    def model_kwargs(self) -> dict[str, Any]:
        """Vocabulary, RT unit and train-part scaling (the fold's, under CV); saved in the
        model's hyperparameters."""
        rts = np.array([s.rt for s in self.datasets["train"].samples], dtype=np.float64)
        return {
            "n_residue_tokens": N_RESIDUE_TOKENS,
            "encoder": self.encoder.to_dict(),
            "rt_unit": self.rt_unit,
            "rt_mean": float(rts.mean()),
            "rt_std": float(rts.std()) or 1.0,
            "data_name": self.data_name,
        }
