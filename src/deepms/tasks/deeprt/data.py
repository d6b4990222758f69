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

One run can span several LC systems (``system:`` on a source; sources without one share a
system): each keeps its own unit and RT scaling, every sample carries its system's index, and the
model gives each system its own head over one shared network. ``max_per_system`` caps a system at
a fixed-seed subset of whole peptide groups, so one large set does not drown the others (a source
with ``keep_all: true`` keeps its system whole). ``held_out_mods`` sends every peptide carrying
one of those modification kinds to its own test part, and the other forms of its sequence out of
train and val. ``mod_encoding`` picks how modifications are encoded (:mod:`deepms.chem.encoding`).
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
HELD_OUT_MODS = "held_out_mods"  # the test part of peptides carrying a held-out modification
SIBLING = "another form of a held-out-modification peptide (kept out of train and val)"


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
    system: int = 0


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
            "system": self.samples[index].system,
        }


class CombinedTestParts(Dataset):
    """Every test part in one dataset, each item marked with its part's index (so one loader,
    and the model reports each part on its own: ``test_<part>_mae``)."""

    def __init__(self, parts: Sequence[RTDataset]) -> None:
        self.parts = list(parts)
        self.index = [(p, i) for p, part in enumerate(self.parts) for i in range(len(part))]
        self.lengths = [n for part in self.parts for n in part.lengths]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        part, row = self.index[index]
        return {**self.parts[part][row], "part": part}


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
    batch["system"] = torch.tensor([it["system"] for it in items], dtype=torch.int64)
    if "part" in items[0]:
        batch["part"] = torch.tensor([it["part"] for it in items], dtype=torch.int64)
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
        max_per_system: int | None = None,
        mod_encoding: str = "both",
        held_out_mods: Sequence[str] = (),
        **common: Any,
    ) -> None:
        """``sources``: RT tables, each with its file ``unit`` (s, min or irt) and optionally its
        LC ``system``; ``fraction`` thins train and val (transfer learning); ``common``: the
        base's settings."""
        super().__init__(sources, **common)
        if not self.sources:
            raise ValueError("deeprt: data.sources is empty; name at least one RT table")
        self.units = [self._unit_of(spec) for spec in self.sources]
        # sources without ``system:`` share one system (named after the data, as before)
        unnamed = "+".join(dict.fromkeys(s.label for s in self.sources if not s.option("system")))
        self.source_system = [str(spec.option("system") or unnamed) for spec in self.sources]
        self.systems = list(dict.fromkeys(self.source_system))
        self.system_units: dict[str, str] = {}
        for system, unit in zip(self.source_system, self.units, strict=True):
            model_unit = convert_rt(0.0, unit)[1]
            if self.system_units.setdefault(system, model_unit) != model_unit:
                raise ValueError(
                    f"deeprt: system {system}'s sources give RT in {self.system_units[system]} "
                    f"and {model_unit}; one system has one RT unit (min or irt)"
                )
        self.rt_unit = self.system_units[self.systems[0]]  # the first (primary) system's
        self.unit = "+".join(dict.fromkeys(self.units))  # the files' unit(s), for the lineage
        self.fraction = float(fraction)
        self.max_peptides, self.max_length = max_peptides, max_length
        self.max_per_system = max_per_system
        self.held_out_mods = {str(name).strip().lower() for name in held_out_mods or ()}
        self.encoder = PeptideEncoder(mod_encoding=mod_encoding)
        extra = [s.role for s in self.sources if s.role not in ("split", *SPLIT_NAMES)]
        extra += [HELD_OUT_MODS] if self.held_out_mods else []
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
            name += "".join(f"+without_{mod}" for mod in sorted(self.held_out_mods))
        name += f"_max{self.max_peptides}" if self.max_peptides else ""
        name += f"_max{self.max_per_system}_per_system" if self.max_per_system else ""
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
            system = self.systems.index(self.source_system[index])
            for sample in found:
                sample.system = system
            samples += found
            source_index += [index] * len(found)
        seqs = [s.peptide.sequence for s in samples]
        labels = self.assign_parts(seqs, source_index)
        keep = np.array([label is not None for label in labels], dtype=bool)
        dropped[TWO_PARTS] += int((~keep).sum())
        if self.max_peptides:  # a fixed-seed subset of whole sequence groups (studies, tests)
            keep &= subset_groups(seqs, max_groups=self.max_peptides, seed=self.split_seed)
        if self.max_per_system:  # the same, per system
            keep &= self._cap_systems(samples, seqs)
        if self.held_out_mods:
            labels = self._hold_out_mods(samples, labels, keep, dropped)
        pairs = [(s, lab) for s, lab, k in zip(samples, labels, keep, strict=True) if k]
        # the modification vocabulary spans every part: it carries no RT, and a column only
        # training rows set stays zero for the others (the projection starts at zero); held-out
        # modifications get no column (the model knows them by composition only)
        self.encoder.fit(s.peptide for s, lab in pairs if lab != HELD_OUT_MODS)
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
            mod_encoding=self.encoder.mod_encoding,
            systems={name: self.system_units[name] for name in self.systems},
        )
        log.info("deeprt data %s (%s): %s", self.data_name, self.rt_unit, sizes)

    def test_dataloader(self) -> Any:
        """One loader over every test part (``test`` first), rows marked by part."""
        parts = [self.datasets[p] for p in self.test_parts if p in self.datasets]
        return self.loader(parts[0] if len(parts) == 1 else CombinedTestParts(parts))

    def _hold_out_mods(
        self, samples: list[RTSample], labels: Any, keep: np.ndarray, dropped: Counter
    ) -> list[Any]:
        """Peptides carrying a held-out modification go to their own test part; the other forms
        of their sequences leave train and val (so the model never sees those peptides)."""
        labels = list(labels)
        held = [
            any(m is not None and m.name.lower() in self.held_out_mods for m in s.peptide.mods)
            for s in samples
        ]
        sequences = {
            s.peptide.sequence for s, h, k in zip(samples, held, keep, strict=True) if h and k
        }
        for i, sample in enumerate(samples):
            if held[i]:
                labels[i] = HELD_OUT_MODS
            elif sample.peptide.sequence in sequences and labels[i] in ("train", "val") and keep[i]:
                labels[i] = None
                dropped[SIBLING] += 1
        if not any(held):
            raise ValueError(f"{self.data_name}: no peptide carries {sorted(self.held_out_mods)}")
        return labels

    def _cap_systems(self, samples: list[RTSample], seqs: list[str]) -> np.ndarray:
        """Mask keeping at most ``max_per_system`` peptide groups of each system."""
        systems = np.array([s.system for s in samples])
        keep = np.zeros(len(samples), dtype=bool)
        whole = {  # a source with ``keep_all: true`` keeps its system uncapped (the primary set)
            self.systems.index(name)
            for name, spec in zip(self.source_system, self.sources, strict=True)
            if spec.option("keep_all")
        }
        for system in range(len(self.systems)):
            rows = np.flatnonzero(systems == system)
            if system in whole:
                keep[rows] = True
                continue
            mask = subset_groups(
                [seqs[r] for r in rows], max_groups=self.max_per_system, seed=self.split_seed
            )
            keep[rows[mask]] = True
        return keep

    def system_stats(self) -> list[dict[str, Any]]:
        """Per system: name, RT unit and the training part's RT mean and std (its head's scale)."""
        train = self.datasets["train"].samples
        stats = []
        for index, name in enumerate(self.systems):
            rts = np.array([s.rt for s in train if s.system == index], dtype=np.float64)
            if not len(rts):
                raise ValueError(f"deeprt: system {name} has no training peptides")
            mean, std = float(rts.mean()), float(rts.std()) or 1.0
            unit = self.system_units[name]
            stats.append({"name": name, "rt_unit": unit, "rt_mean": mean, "rt_std": std})
        return stats

    def model_kwargs(self) -> dict[str, Any]:
        """Vocabulary, RT unit and train-part scaling (the fold's, under CV); saved in the
        model's hyperparameters."""
        systems = self.system_stats()
        kwargs = {
            "n_residue_tokens": N_RESIDUE_TOKENS,
            "encoder": self.encoder.to_dict(),
            "rt_unit": self.rt_unit,
            "rt_mean": systems[0]["rt_mean"],
            "rt_std": systems[0]["rt_std"],
            "data_name": self.data_name,
        }
        if len(systems) > 1:  # one head per LC system (single-system runs keep the old layout)
            kwargs["systems"] = systems
        return kwargs
