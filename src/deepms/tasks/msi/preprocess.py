"""Per-pixel normalisation and the feature transform shared by training and prediction.

TIC (or RMS) normalisation removes the pixel-to-pixel ionisation differences that otherwise
dominate every distance; a log (or square-root) transform keeps the few very intense peaks from
deciding every neighbourhood; per-bin standardisation is fitted on the training pixels only and
saved with the model, so a new section is scaled exactly as the training pixels were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NORMALIZE = ("tic", "rms", "none")
TRANSFORM = ("log1p", "sqrt", "none")


def normalize_rows(intensities: np.ndarray, how: str) -> np.ndarray:
    """Each spectrum scaled to mean intensity 1 (``tic``) or root mean square 1 (``rms``)."""
    x = np.asarray(intensities, dtype=np.float32)
    if how == "none":
        return x
    if how == "tic":
        scale = x.mean(1, keepdims=True)
    elif how == "rms":
        scale = np.sqrt((x * x).mean(1, keepdims=True))
    else:
        raise ValueError(f"normalize={how!r}: use one of {NORMALIZE}")
    return x / np.where(scale > 0, scale, 1.0)


def transform(x: np.ndarray, how: str) -> np.ndarray:
    if how == "log1p":
        return np.log1p(np.clip(x, 0, None))
    if how == "sqrt":
        return np.sqrt(np.clip(x, 0, None))
    if how == "none":
        return x
    raise ValueError(f"transform={how!r}: use one of {TRANSFORM}")


@dataclass
class Preprocessing:
    """normalise -> transform -> (x - mean) / std, with mean/std from the training pixels."""

    normalize: str = "tic"
    transform: str = "log1p"
    standardize: bool = True
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def fit(self, raw: np.ndarray) -> Preprocessing:
        z = transform(normalize_rows(raw, self.normalize), self.transform)
        if self.standardize:
            self.mean = z.mean(0).astype(np.float32)
            std = z.std(0).astype(np.float32)
            self.std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        return self

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        z = transform(normalize_rows(raw, self.normalize), self.transform).astype(np.float32)
        if self.standardize and self.mean is not None and self.std is not None:
            z = (z - self.mean) / self.std
        return z.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "normalize": self.normalize,
            "transform": self.transform,
            "standardize": self.standardize,
            "mean": None if self.mean is None else self.mean.tolist(),
            "std": None if self.std is None else self.std.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        mean, std = d.get("mean"), d.get("std")
        return cls(
            normalize=str(d.get("normalize", "tic")),
            transform=str(d.get("transform", "log1p")),
            standardize=bool(d.get("standardize", True)),
            mean=None if mean is None else np.asarray(mean, np.float32),
            std=None if std is None else np.asarray(std, np.float32),
        )


def tophat_baseline(x: np.ndarray, window: int) -> np.ndarray:
    """Each row minus its morphological opening (min then max filter over ``window`` bins): the
    slowly varying chemical-noise baseline of MALDI-TOF profiles, as MALDIquant's TopHat."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    if window <= 1:
        return x
    opened = maximum_filter1d(minimum_filter1d(x, window, axis=1), window, axis=1)
    return np.clip(x - opened, 0, None)


def featurize_spectra(
    binned: np.ndarray,
    normalize: str = "tic",
    transform_name: str = "sqrt",
    baseline_window: int = 0,
) -> np.ndarray:
    """MALDIquant's order on binned profiles: variance-stabilising transform, baseline removal
    (``baseline_window`` bins; 0: none), then per-spectrum normalisation."""
    z = transform(np.asarray(binned, dtype=np.float32), transform_name)
    z = tophat_baseline(z, int(baseline_window))
    return normalize_rows(z, normalize).astype(np.float32)
