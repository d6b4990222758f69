"""deepiso data: simulated LC-MS1 maps (exact labels) -> labelled trace-centred windows; the real
OpenMS maps ride along for test-time evaluation.

Why simulated training maps: no real map has peptide-feature truth (see the data SOURCE.md). The
simulator digests the proteome source; each map is one seed, and train, val and test maps have
disjoint seeds (``simulated_seeds_...`` split): a test map's noise, peptides' draw, charges and
elution are never seen in training (its peptides may recur, drawn from the same proteome).

A sample is a window (``window_scans`` scans x ``window_bins`` bins of ``mz_step`` Th) centred on a
candidate trace (centroids linked across scans) with the centre trace's labels: isotope trace or
noise, charge (0 = noise) and isotope index (-1 = noise). Simplification (stated plainly): DeepIso
labels every pixel; here one label per window, for its centre trace. Candidate traces of simulated
maps are ~90 % isotope traces, so negatives are added (windows centred on single noise peaks
and short noise traces) up to ``negative_fraction`` of the samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from deepms.io.ms1map import Ms1Map
from deepms.tasks.deepiso import detect, grouping
from deepms.tasks.deepiso.simulate import SimulationConfig, simulate_map
from deepms.training.datamodule import TaskDataModule

log = logging.getLogger(__name__)


@dataclass
class RealMaps:
    """The real maps found among the sources (paths; read at test time)."""

    example: Path | None = None  # OpenMS LCMS-centroided.mzML
    example_reference: Path | None = None  # its 17 OpenMS features
    example_test_output: Path | None = None  # FeatureFinderCentroided test output (8)
    replicates: list[Path] = field(default_factory=list)  # in1, in2


class CandidateSets(Dataset):
    """Candidate sets for the learned grouper: each item is the set's windows (K, scans, bins),
    its geometry (K, N_GEOMETRY), presence mask, membership labels and the seed's charge.

    Windows are looked up in the part's window tensor (a trace's window is computed once)."""

    def __init__(
        self,
        windows: torch.Tensor,
        index: np.ndarray,
        geometry: np.ndarray,
        member: np.ndarray,
        charge: np.ndarray,
    ) -> None:
        self.windows = windows
        self.index = torch.from_numpy(index)
        self.geometry = torch.from_numpy(geometry)
        self.member = torch.from_numpy(member)
        self.charge = torch.from_numpy(charge)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        index = self.index[i]
        present = index >= 0
        return (
            self.windows[index.clamp(min=0)],
            self.geometry[i],
            present,
            self.member[i],
            self.charge[i],
        )


@dataclass
class SimulatedMap:
    ms1: Ms1Map
    truth: pd.DataFrame
    seed: int


class DeepisoDataModule(TaskDataModule):
    """Simulated train/val/test maps and their windows; real maps' paths for evaluation."""

    split_kind = "simulated_seeds"

    def __init__(
        self,
        n_train_maps: int = 8,
        n_val_maps: int = 1,
        n_test_maps: int = 2,
        simulation: dict[str, Any] | None = None,
        window_scans: int = 16,
        window_bins: int = 224,
        mz_step: float = 0.01,
        link_ppm: float = 30.0,
        max_gap: int = 1,
        min_scans: int = 3,
        label_ppm: float = 10.0,
        negative_fraction: float = 0.35,
        grouping: dict[str, Any] | None = None,
        set_batch_size: int = 32,
        rt_model: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.n_maps = {"train": int(n_train_maps), "val": int(n_val_maps), "test": int(n_test_maps)}
        known = {f.name for f in fields(SimulationConfig)}
        unknown = set(simulation or {}) - known
        if unknown:
            raise ValueError(
                f"data.simulation: unknown knobs {sorted(unknown)}; known {sorted(known)}"
            )
        self.simulation = dict(simulation or {})
        self.window = {
            "window_scans": int(window_scans),
            "window_bins": int(window_bins),
            "mz_step": float(mz_step),
        }
        self.tracing = {
            "link_ppm": float(link_ppm),
            "max_gap": int(max_gap),
            "min_scans": int(min_scans),
        }
        self.label_ppm = float(label_ppm)
        self.negative_fraction = float(negative_fraction)
        known_box = {"max_candidates", "mz_span", "apex_window", "ppm"}
        if grouping is not None and set(grouping) - known_box:
            raise ValueError(
                f"data.grouping: unknown keys {sorted(set(grouping) - known_box)}; "
                f"known {sorted(known_box)}"
            )
        self.grouping = dict(grouping) if grouping is not None else None
        self.set_batch_size = int(set_batch_size)
        self.set_datasets: dict[str, CandidateSets] = {}
        self.rt_model = rt_model
        self.rt_model_sha256: str | None = None
        self.test_maps: list[SimulatedMap] = []
        self.real = RealMaps()

    @property
    def split_name(self) -> str:
        """E.g. ``simulated_seeds_8_1_2_seed42``: map counts, then the base seed."""
        n = self.n_maps
        return f"{self.split_kind}_{n['train']}_{n['val']}_{n['test']}_seed{self.split_seed}"

    def seeds(self, part: str) -> list[int]:
        """Disjoint simulator seeds per part (train first, then val, then test)."""
        offset = {
            "train": 0,
            "val": self.n_maps["train"],
            "test": self.n_maps["train"] + self.n_maps["val"],
        }[part]
        base = 1000 * self.split_seed + offset
        return list(range(base, base + self.n_maps[part]))

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.cv is not None:
            raise ValueError("deepiso: simulated maps are split by seed; drop cv=")
        lineage = self.start_lineage()
        fasta: Path | None = None
        for _, opened in self.open_sources():
            role = opened.spec.role
            if opened.spec.format == "fasta":
                fasta = opened.paths[0]
            elif role == "openms_example":
                for p in opened.paths:
                    name = p.name.lower()
                    if name.endswith(".mzml"):
                        self.real.example = p
                    elif "featurefindercentroided" in name:
                        self.real.example_test_output = p
                    elif name.endswith(".featurexml"):
                        self.real.example_reference = p
            elif role == "replicates":
                self.real.replicates = sorted(opened.paths)
        if fasta is None:
            raise ValueError("deepiso: a FASTA source (format fasta) feeds the simulator")
        config = SimulationConfig(fasta=str(fasta), **self._simulation_kwargs())
        rt_model = self._load_rt_model()
        counts: dict[str, int] = {}
        for part in ("train", "val", "test"):
            maps = [
                SimulatedMap(*simulate_map(config, seed, rt_model), seed)
                for seed in self.seeds(part)
            ]
            if part == "test":
                self.test_maps = maps
            tensors, sets = self._windows(maps, np.random.default_rng(self.split_seed + len(part)))
            self.datasets[part] = TensorDataset(*tensors)
            if sets is not None:
                self.set_datasets[part] = CandidateSets(tensors[0], *sets)
            counts[part] = len(tensors[0])
            log.info(
                "deepiso %s: %d maps, %d windows (%.0f %% isotope traces)",
                part,
                len(maps),
                counts[part],
                100 * float(tensors[1].float().mean()),
            )
        lineage.n_samples = counts
        lineage.extras.update(
            rt_model=self.rt_model or "hydrophobicity (pyteomics.achrom, Guo 1986)",
            rt_model_sha256=self.rt_model_sha256,
            unit="trace-centred window",
            split_rule="simulator seed per map: train, val and test maps never share a seed",
            seeds={p: self.seeds(p) for p in ("train", "val", "test")},
            simulation={
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in self._simulation_kwargs().items()
            },
            n_test_truth_features=[len(m.truth) for m in self.test_maps],
            window=self.window,
        )

    def _load_rt_model(self) -> Any:
        """``rt_model`` (a deeprt checkpoint, ``runs:/`` or ``models:/``) as the simulator's RT
        callable: one task feeding another through the registry, never by importing it."""
        if not self.rt_model:
            return None
        from deepms.datasets.registry import sha256_file
        from deepms.registry import load_predictor
        from deepms.registry.reference import resolve_checkpoint

        path = resolve_checkpoint(str(self.rt_model), None)
        self.rt_model_sha256 = sha256_file(Path(path))
        predictor = load_predictor(str(path), batch_size=1024)
        log.info("deepiso: simulated retention times from %s (%s)", self.rt_model, path)

        def predict_rt(sequences: Any) -> np.ndarray:
            frame = predictor.predict(pd.DataFrame({"peptide": list(sequences)}))
            if "predicted_rt" not in frame.columns:
                raise ValueError(
                    f"data.rt_model {self.rt_model}: its predictor gives no 'predicted_rt' "
                    f"(columns {list(frame.columns)}); give a deeprt model"
                )
            return frame["predicted_rt"].to_numpy(float)

        return predict_rt

    def _simulation_kwargs(self) -> dict[str, Any]:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in self.simulation.items()}

    def _windows(
        self, maps: list[SimulatedMap], rng: np.random.Generator
    ) -> tuple[tuple[torch.Tensor, ...], tuple[np.ndarray, ...] | None]:
        """Labelled windows of candidate traces plus sampled noise-peak negatives; with
        ``grouping``, also every trace's candidate set (window rows, geometry, labels)."""
        parts: list[tuple[np.ndarray, ...]] = []
        set_parts: list[tuple[np.ndarray, ...]] = []
        offset = 0
        for m in maps:
            traces = detect.extract_traces(m.ms1, **{**self.tracing, "min_scans": 2})
            isotopes = detect.truth_isotopes(m.truth)
            row = detect.nearest_isotope(traces, m.ms1.rt, isotopes, self.label_ppm)
            is_iso, charge, index = detect.labels_of(row, isotopes)
            if self.grouping is not None:
                set_parts.append(self._sets(m.ms1, traces, isotopes, row, charge, offset))
            n_pos = int(is_iso.sum())
            want = int(self.negative_fraction / (1 - self.negative_fraction) * n_pos)
            extra = max(want - int((is_iso == 0).sum()), 0)
            lone = np.flatnonzero(traces.peak_trace < 0)  # peaks in no trace: noise, mostly
            pick = rng.choice(lone, size=min(extra, len(lone)), replace=False)
            scan = m.ms1.spectrum_index()
            centre = np.concatenate([traces.mz, m.ms1.mz[pick]])
            apex = np.concatenate([traces.apex, scan[pick]])
            scale = np.concatenate([traces.apex_intensity, m.ms1.intensity[pick].astype(float)])
            windows = detect.trace_windows(m.ms1, centre, apex, scale, **self.window)
            zeros = np.zeros(len(pick), dtype=np.int64)
            offset += len(windows)
            parts.append(
                (
                    windows,
                    np.concatenate([is_iso, zeros]),
                    np.concatenate([charge, zeros]),
                    np.concatenate([index, zeros - 1]),
                )
            )
        w, y, z, k = (np.concatenate(column) for column in zip(*parts, strict=True))
        tensors = tuple(torch.from_numpy(a) for a in (w, y, z, k))
        if not set_parts:
            return tensors, None
        return tensors, tuple(np.concatenate(c) for c in zip(*set_parts, strict=True))

    def _sets(
        self,
        ms1: Ms1Map,
        traces: detect.Traces,
        isotopes: pd.DataFrame,
        row: np.ndarray,
        charge: np.ndarray,
        offset: int,
    ) -> tuple[np.ndarray, ...]:
        """Every trace as a seed: (window rows, geometry, member labels, seed charge).

        A trace's window is row ``offset + trace`` of the part's windows (traces come first in
        each map's block). Noise seeds are kept, with no members: the grouper must learn to
        leave a CNN false positive alone. ``row``: each trace's truth isotope (-1: noise)."""
        sets, geometry = grouping.sets_and_geometry(
            ms1, traces, np.arange(len(traces)), self.grouping
        )
        codes = pd.factorize(isotopes["feature_id"])[0]
        feature = np.where(row >= 0, codes[np.clip(row, 0, None)], -1)
        member, seed_charge = grouping.set_labels(sets, feature, charge)
        return np.where(sets >= 0, sets + offset, -1), geometry, member, seed_charge

    def _loader(self, part: str, shuffle: bool, sets: bool = False) -> DataLoader:
        """Windows of ``part`` (or, with ``sets``, its candidate sets), with a private RNG."""
        generator = torch.Generator().manual_seed(self.split_seed + int(sets))
        return DataLoader(
            self.set_datasets[part] if sets else self.datasets[part],
            batch_size=self.set_batch_size if sets else self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            generator=generator if shuffle else None,
        )

    def train_dataloader(self) -> Any:
        """Windows; with candidate sets, both side by side (as many steps as window batches:
        a shuffled share of the sets each epoch)."""
        windows = self._loader("train", True)
        if "train" not in self.set_datasets:
            return windows
        from lightning.pytorch.utilities import CombinedLoader

        sets = self._loader("train", True, sets=True)
        return CombinedLoader({"windows": windows, "sets": sets}, mode="min_size")

    def val_dataloader(self) -> Any:
        windows = self._loader("val", False)
        if "val" not in self.set_datasets:
            return windows
        return [windows, self._loader("val", False, sets=True)]

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def model_kwargs(self) -> dict[str, Any]:
        """Window geometry and trace linking travel with the weights (the predictor reuses them)."""
        kwargs: dict[str, Any] = {**self.window, **self.tracing}
        if self.grouping is not None:
            kwargs["grouping"] = dict(self.grouping)
        return kwargs
