"""The msi datamodule for embeddings: the pixels of one imzML section, split in space.

A single section has no patients, so pixels are the samples and the split names how they were
cut. ``split.rule: spatial`` (default) orders the pixels by x (then y) and cuts contiguous column
blocks (train | val | test from left to right): the test block was never seen by the encoder and
is the honest proxy for "a new section" (neighbouring pixels share tissue, so a random-pixel
split would let the encoder memorise the test pixels' neighbours). ``split.rule: random`` is a
random-pixel split, named as such. Beside the pixels, the source may carry the unregistered H&E
image (.tif) and a table of annotated m/z (.csv with a ``Theoretical m/z`` column) for pictures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from deepms.tasks.msi.preprocess import Preprocessing
from deepms.tasks.msi.reading import Section, imzml_path, read_section
from deepms.training.datamodule import TaskDataModule

log = logging.getLogger(__name__)
RULES = ("spatial", "random")


def spatial_split(x: np.ndarray, y: np.ndarray, fractions: tuple[float, ...]) -> np.ndarray:
    """train/val/test as contiguous blocks of x columns, sized by pixel counts (a column is never
    cut between two parts, so the test block's left edge is a straight vertical line)."""
    order = np.lexsort((y, x))
    bounds = np.cumsum(np.asarray(fractions, dtype=float) / sum(fractions)) * len(x)
    labels = np.empty(len(x), dtype=object)
    position = np.empty(len(x), dtype=int)
    position[order] = np.arange(len(x))
    columns = np.unique(x)
    first = {c: int(position[x == c].min()) for c in columns}  # first rank of each column
    names = ("train", "val", "test")
    for c in columns:
        part = int(np.searchsorted(bounds[:-1], first[c], side="right"))
        labels[x == c] = names[min(part, 2)]
    return labels


def random_split(n: int, fractions: tuple[float, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cut = np.cumsum(np.asarray(fractions, dtype=float) / sum(fractions))
    u = rng.random(n)
    return np.array(["train", "val", "test"], dtype=object)[np.searchsorted(cut[:-1], u, "right")]


class CyclingPermutations(Sampler[int]):
    """``sets`` fixed shuffles of the training pixels, one per epoch in turn: each batch's
    affinities are computed once per set and reused, while the batches still change from epoch
    to epoch (one fixed set lets the encoder fit the particular batch neighbourhoods)."""

    def __init__(self, n: int, sets: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.orders = [rng.permutation(n) for _ in range(max(1, int(sets)))]
        self.count = 0

    def __len__(self) -> int:
        return len(self.orders[0])

    def __iter__(self) -> Iterator[int]:
        order = self.orders[self.count % len(self.orders)]
        self.count += 1
        return iter(order.tolist())


class MsiDataModule(TaskDataModule):
    """One section's pixels -> preprocessed train / val / test tensors plus the whole section."""

    test_parts = ("test",)

    def __init__(
        self,
        normalize: str = "tic",
        transform: str = "log1p",
        standardize: bool = True,
        ion_images: int = 3,
        annotation_tolerance_da: float = 0.3,
        batch_sets: int = 1,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        rule = str(self.config.split.get("rule", "spatial"))
        if rule not in RULES:
            raise ValueError(f"data.split.rule={rule!r}: use one of {RULES}")
        self.rule = rule
        self.split_kind = "pixel_spatial_xblock" if rule == "spatial" else "pixel_random"
        if len(self.sources) != 1:
            raise ValueError("msi: one imzML source (one section) per run")
        self.preprocessing = Preprocessing(normalize, transform, bool(standardize))
        self.ion_images = int(ion_images)
        self.annotation_tolerance_da = float(annotation_tolerance_da)
        self.batch_sets = int(batch_sets)
        self._sampler: CyclingPermutations | None = None
        self.section: Section | None = None
        self.parts: np.ndarray = np.empty(0, dtype=object)
        self.features: np.ndarray = np.empty((0, 0), np.float32)
        self.he_image: Path | None = None
        self.annotations: list[tuple[str, float]] = []

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.cv is not None:
            raise ValueError("msi: one section has no groups to cross-validate; drop cv=")
        lineage = self.start_lineage()
        ((_, opened),) = list(self.open_sources())
        section = read_section(imzml_path(opened.paths))
        if self.limit_per_source:
            section = _crop(section, int(self.limit_per_source))
        self.section = section
        self.he_image = next(
            (p for p in opened.paths if p.suffix.lower() in (".tif", ".tiff")), None
        )
        table = next((p for p in opened.paths if p.suffix.lower() == ".csv"), None)
        self.annotations = (
            _annotations(table, section.mz, self.annotation_tolerance_da) if table else []
        )
        if self.rule == "spatial":
            parts = spatial_split(section.x, section.y, self.split_fractions)
        else:
            parts = random_split(len(section.x), self.split_fractions, self.split_seed)
        self.parts = parts
        self.preprocessing.fit(section.intensities[parts == "train"])
        self.features = self.preprocessing(section.intensities)
        for part in ("train", "val", "test"):
            rows = np.flatnonzero(parts == part)
            self.datasets[part] = TensorDataset(
                torch.from_numpy(self.features[rows]), torch.from_numpy(rows)
            )
        lineage.n_samples = {k: len(v) for k, v in self.datasets.items()}
        lineage.extras.update(
            unit="pixel",
            split_rule=self.rule,
            why=(
                "one section, no patients: pixels are the samples; the test block is a "
                "contiguous x-range never seen in training (new-section proxy)"
                if self.rule == "spatial"
                else "random pixels: neighbours of test pixels train"
            ),
            n_pixels=len(section.x),
            grid=[int(section.x.max()), int(section.y.max())],
            n_mz=len(section.mz),
            mz_range=[float(section.mz.min()), float(section.mz.max())],
            test_x_range=_x_range(section.x, parts == "test"),
            normalize=self.preprocessing.normalize,
            transform=self.preprocessing.transform,
        )
        log.info("msi data: %s pixels, %d m/z", lineage.n_samples, len(section.mz))

    def _loader(self, part: str) -> DataLoader:
        return DataLoader(
            self.datasets[part],
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        """Whole batches from ``batch_sets`` fixed shuffles cycled by epoch (the model caches
        each batch's affinities); a batch's perplexity needs enough neighbours."""
        if self._sampler is None:
            n = len(self.datasets["train"])
            self._sampler = CyclingPermutations(n, self.batch_sets, self.split_seed)
        return DataLoader(
            self.datasets["train"],
            batch_size=self.batch_size,
            sampler=self._sampler,
            drop_last=True,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def model_kwargs(self) -> dict[str, Any]:
        """The m/z axis and the fitted preprocessing travel with the weights (prediction)."""
        if self.section is None:
            raise RuntimeError("MsiDataModule.model_kwargs before setup()")
        return {
            "n_features": int(self.features.shape[1]),
            "mz": [float(m) for m in self.section.mz],
            "preprocessing": self.preprocessing.to_dict(),
        }


def _x_range(x: np.ndarray, mask: np.ndarray) -> list[int]:
    return [int(x[mask].min()), int(x[mask].max())] if mask.any() else []


def _crop(section: Section, limit: int) -> Section:
    """The first ``limit`` pixels in x order (a contiguous piece of tissue, for smoke runs)."""
    keep = np.lexsort((section.y, section.x))[:limit]
    return Section(section.x[keep], section.y[keep], section.intensities[keep], section.mz)


def _annotations(path: Path, mz: np.ndarray, tolerance_da: float) -> list[tuple[str, float]]:
    """(label, axis m/z) of annotated m/z with an axis value within ``tolerance_da``, closest
    first. The label gives the theoretical m/z and the offset in ppm: a centroided export can
    sit a few hundred ppm off theory (MSIght's prostate: about -0.2 Da), so a match is the
    nearest measured feature, not an identification."""
    import pandas as pd

    table = pd.read_csv(path)
    column = next(
        (c for c in table.columns if "m/z" in c.lower() and "theoretical" in c.lower()), None
    )
    if column is None or not len(mz):
        return []
    name_col = "Peptide" if "Peptide" in table.columns else column
    found = []
    for _, row in table.iterrows():
        target = float(row[column])
        j = int(np.argmin(np.abs(mz - target)))
        if abs(mz[j] - target) <= tolerance_da:
            ppm = (mz[j] - target) / target * 1e6
            label = f"{row[name_col]} (theo {target:.2f}; m/z {mz[j]:.2f}, {ppm:+.0f} ppm)"
            found.append((abs(ppm), label, float(mz[j])))
    return [(label, value) for _, label, value in sorted(found)]
