"""Pictures of a section for MLflow: TIC, ion images, embedding RGB, segment maps, H&E beside.

Pixels are drawn on the imzML grid (1-based x, y; unmeasured pixels transparent). The H&E image
is of the same section but not registered to the MSI grid: it is shown beside, downscaled, never
overlaid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def grid(x: np.ndarray, y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[H, W(, C)] image with NaN where no pixel was measured."""
    x, y = np.asarray(x, dtype=int), np.asarray(y, dtype=int)
    values = np.asarray(values, dtype=float)
    shape = (int(y.max()), int(x.max()), *values.shape[1:])
    image = np.full(shape, np.nan)
    image[y - 1, x - 1] = values
    return image


def rgb(embedding: np.ndarray) -> np.ndarray:
    """A 3-D embedding as colours: each axis min-max scaled (1st-99th percentile) to [0, 1]."""
    e = np.asarray(embedding, dtype=float)[:, :3]
    lo, hi = np.percentile(e, 1, axis=0), np.percentile(e, 99, axis=0)
    out = np.clip((e - lo) / np.where(hi > lo, hi - lo, 1.0), 0, 1)
    if out.shape[1] < 3:
        out = np.hstack([out, np.full((len(out), 3 - out.shape[1]), 0.5)])
    return out


def _figure(n: int, width: float = 4.5, height: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def _show(ax: Any, image: np.ndarray, title: str, **kwargs: Any) -> Any:
    shown = ax.imshow(image, interpolation="nearest", **kwargs)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def he_thumbnail(path: Path, max_side: int = 640) -> np.ndarray:
    """The H&E TIFF downscaled (PIL thumbnail, aspect kept) as an RGB array."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((max_side, max_side))
        return np.asarray(image)


def tic_and_he(x: np.ndarray, y: np.ndarray, tic: np.ndarray, he: Path | None) -> Any:
    fig, axes = _figure(2 if he else 1)
    shown = _show(axes[0], grid(x, y, tic), "TIC (MSI grid)", cmap="viridis")
    fig.colorbar(shown, ax=axes[0], shrink=0.8)
    if he:
        _show(axes[1], he_thumbnail(he), "H&E, same section (not registered)")
    fig.tight_layout()
    return fig


def ion_images(
    x: np.ndarray,
    y: np.ndarray,
    intensities: np.ndarray,
    mz: np.ndarray,
    chosen: Sequence[tuple[str, float]],
) -> Any:
    """One panel per chosen (label, m/z): that bin's intensity (TIC-normalised by the caller)."""
    fig, axes = _figure(max(1, len(chosen)))
    for ax, (label, target) in zip(axes, chosen, strict=False):
        j = int(np.argmin(np.abs(mz - target)))
        values = intensities[:, j]
        shown = _show(
            ax,
            grid(x, y, values),
            label,
            cmap="magma",
            vmax=float(np.percentile(values, 99)) or None,
        )
        fig.colorbar(shown, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def embedding_rgb(x: np.ndarray, y: np.ndarray, embedding: np.ndarray, title: str) -> Any:
    fig, axes = _figure(1, 6, 4)
    _show(axes[0], grid(x, y, rgb(embedding)), title)
    fig.tight_layout()
    return fig


def segment_maps(x: np.ndarray, y: np.ndarray, segments: Mapping[str, np.ndarray]) -> Any:
    """One categorical map per method (same k), cropped to the pixels given (a test block)."""
    x0, y0 = int(np.min(x)) - 1, int(np.min(y)) - 1
    fig, axes = _figure(len(segments))
    for ax, (name, seg) in zip(axes, segments.items(), strict=True):
        _show(ax, grid(x - x0, y - y0, seg), name, cmap="tab10", vmin=0, vmax=9)
    fig.tight_layout()
    return fig


def split_map(x: np.ndarray, y: np.ndarray, parts: np.ndarray) -> Any:
    codes = np.select([parts == "train", parts == "val", parts == "test"], [0, 1, 2], -1)
    fig, axes = _figure(1, 6, 4)
    _show(
        axes[0],
        grid(x, y, codes),
        "split: train (0) / val (1) / test (2)",
        cmap="Set2",
        vmin=0,
        vmax=7,
    )
    fig.tight_layout()
    return fig


def sensitivity_plot(
    mz: np.ndarray, sensitivity: np.ndarray, mean_spectrum: np.ndarray, marked: Sequence[int]
) -> Any:
    """Mean spectrum (top) and per-m/z |gradient x input| of the class decision (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    top.plot(mz, mean_spectrum, lw=0.6, color="0.3")
    top.set_ylabel("mean input")
    bottom.plot(mz, sensitivity, lw=0.6, color="C3")
    for j in marked:
        bottom.annotate(f"{mz[j]:.0f}", (mz[j], sensitivity[j]), fontsize=7)
    bottom.set_ylabel("|grad x input|")
    bottom.set_xlabel("m/z")
    fig.tight_layout()
    return fig


def probability_map(x: np.ndarray, y: np.ndarray, p: np.ndarray, title: str) -> Any:
    fig, axes = _figure(1, 6, 4)
    shown = _show(axes[0], grid(x, y, p), title, cmap="coolwarm", vmin=0, vmax=1)
    fig.colorbar(shown, ax=axes[0], shrink=0.8)
    fig.tight_layout()
    return fig


def oof_probability_plot(oof: Any) -> Any:
    """Out-of-fold P(positive) of every spectrum, one column per method, grouped by patient and
    coloured by the true class: which patients each method gets wrong."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [c for c in oof.columns if c.startswith("p_")]
    frame = oof.sort_values(["label", "group"]).reset_index(drop=True)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 4), sharey=True)
    for ax, column in zip(np.atleast_1d(axes), methods, strict=True):
        colours = np.where(frame["label"].to_numpy() == 1, "C3", "C0")
        ax.scatter(frame[column], np.arange(len(frame)), c=colours, s=18)
        ax.axvline(0.5, color="0.6", lw=0.8, ls="--")
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(column, fontsize=9)
        ax.set_xlabel("out-of-fold P(positive)")
    first = np.atleast_1d(axes)[0]
    first.set_yticks(np.arange(len(frame)), frame["group"].astype(str).str[-12:], fontsize=6)
    fig.suptitle("red: positive class, blue: negative; one row per spectrum", fontsize=9)
    fig.tight_layout()
    return fig
