"""The msi datamodule for labelled spectra (Fiedler et al. 2009 serum MALDI-TOF, 16 spectra).

A spectrum is a technical replicate of a patient, so the leakage unit is the patient: every split
and every ``cv=`` fold is grouped by ``group`` (default ``patient``), never by spectrum, and
``cv=leave_one_group_out cv.group_by=patient`` is leave-one-patient-out. The raw profile spectra
(42,388 points, m/z 1,000-10,000) are binned to ``bin_width`` Da (mean per bin), normalised per
spectrum (TIC to mean 1) and square-root transformed (MALDIquant's variance stabilisation): a
1-D CNN and NMF then see a few thousand non-negative values per spectrum. These steps are per
spectrum, so nothing is fitted across samples and nothing leaks between folds.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from deepms.datasets.splits import grouped_split
from deepms.tasks.msi.preprocess import featurize_spectra
from deepms.tasks.msi.reading import bin_spectra, read_spectra
from deepms.training.datamodule import TaskDataModule

log = logging.getLogger(__name__)


class SpectraDataset(Dataset):
    """Binned spectra of one part: x [n, bins], y [n], ids and patients."""

    def __init__(self, x: np.ndarray, y: np.ndarray, ids: list[str], groups: list[str]) -> None:
        self.x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        self.y = np.asarray(y, dtype=np.int64)
        self.ids, self.groups = list(ids), list(groups)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "label": int(self.y[i]), "id": self.ids[i], "group": self.groups[i]}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "x": torch.stack([it["x"] for it in items]),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "ids": [it["id"] for it in items],
        "groups": [it["group"] for it in items],
    }


class SpectraDataModule(TaskDataModule):
    """Labelled spectra -> patient-grouped parts of binned, normalised spectra."""

    split_kind = "patient_grouped"

    def __init__(
        self,
        label: str = "label",
        positive: str = "tumor",
        group: str = "patient",
        group_columns: list[str] | tuple[str, ...] = ("patient", "site"),
        bin_width: float = 2.0,
        mz_range: list[float] | None = None,
        normalize: str = "tic",
        transform: str = "sqrt",
        baseline_window: int = 0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.label, self.positive, self.group = str(label), str(positive), str(group)
        self.group_column_names = [str(c) for c in group_columns]
        self.bin_width = float(bin_width)
        self.mz_range = [float(v) for v in mz_range] if mz_range else None
        self.normalize, self.transform = str(normalize), str(transform)
        self.baseline_window = int(baseline_window)
        self.mz: np.ndarray = np.zeros(0)
        self.classes: list[str] = []
        self.parts: np.ndarray = np.empty(0, dtype=object)
        self.patients: list[str] = []

    def split_labels(self, groups, fractions, seed) -> np.ndarray:
        """Without ``cv``: patients (never spectra) cut by the fractions."""
        return grouped_split(groups, fractions, seed=seed)

    def featurize(self, mass: np.ndarray, intensities: np.ndarray) -> np.ndarray:
        """Raw spectra -> binned, TIC-normalised, transformed rows (the predictor's path too)."""
        lo, hi = self.mz_range or (None, None)
        self.mz, binned = bin_spectra(mass, intensities, self.bin_width, lo, hi)
        return featurize_spectra(binned, self.normalize, self.transform, self.baseline_window)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        lineage = self.start_lineage()
        mass = intensities = meta = None
        for _, opened in self.open_sources():
            if mass is not None:
                raise ValueError("msi_classify: one spectra source per run")
            mass, intensities, meta = read_spectra(opened.paths)
        for column in (self.label, self.group, *self.group_column_names):
            if column not in meta.columns:
                raise ValueError(f"msi_classify: no column {column!r}; have {list(meta.columns)}")
        x = self.featurize(np.asarray(mass, float), np.asarray(intensities, np.float32))
        labels = meta[self.label].astype(str).to_numpy()
        if self.positive not in set(labels):
            raise ValueError(f"positive={self.positive!r} not among labels {sorted(set(labels))}")
        y = (labels == self.positive).astype(np.int64)
        negative = sorted(set(labels) - {self.positive})
        self.classes = ["/".join(negative), self.positive]
        groups = meta[self.group].astype(str).tolist()
        ids = (meta["name"] if "name" in meta.columns else meta.index).astype(str).tolist()
        columns = {c: meta[c].astype(str).tolist() for c in self.group_column_names}
        parts = self.assign_parts(groups, strata=y, group_columns=columns)
        self.parts, self.patients = parts, groups
        for part in ("train", "val", "test"):
            rows = np.flatnonzero(parts == part)
            self.datasets[part] = SpectraDataset(
                x[rows], y[rows], [ids[i] for i in rows], [groups[i] for i in rows]
            )
        lineage.n_samples = {k: len(v) for k, v in self.datasets.items()}
        lineage.extras.update(
            unit="spectrum",
            leakage_unit=self.group,
            classes=self.classes,
            groups={k: sorted(set(v.groups)) for k, v in self.datasets.items()},
            class_counts={
                k: {c: int((v.y == j).sum()) for j, c in enumerate(self.classes)}
                for k, v in self.datasets.items()
            },
            n_bins=int(x.shape[1]),
            bin_width=self.bin_width,
            mz_range=[float(self.mz.min()), float(self.mz.max())],
            normalize=self.normalize,
            transform=self.transform,
            baseline_window=self.baseline_window,
        )
        log.info("msi spectra: %s spectra, %d bins", lineage.n_samples, x.shape[1])

    def loader(self, part, shuffle: bool = False) -> DataLoader:
        data = self.datasets[part] if isinstance(part, str) else part
        generator = torch.Generator().manual_seed(self.split_seed)
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=collate,
            generator=generator,
            num_workers=self.num_workers,
        )

    def matrix(self, part: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(x [n, bins], y, ids) of a part, for the baselines on the same fold."""
        data = self.datasets[part]
        return data.x.numpy(), data.y.copy(), list(data.ids)

    def model_kwargs(self) -> dict[str, Any]:
        if not len(self.mz):
            raise RuntimeError("SpectraDataModule.model_kwargs before setup()")
        return {
            "n_bins": len(self.mz),
            "mz": [float(m) for m in self.mz],
            "classes": list(self.classes),
            "featurize": {
                "bin_width": self.bin_width,
                "normalize": self.normalize,
                "transform": self.transform,
                "baseline_window": self.baseline_window,
            },
        }
