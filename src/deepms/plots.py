"""Plots a user would rather look at than read; each returns a matplotlib Figure.

matplotlib is imported inside the functions with the Agg backend so that importing this module is
cheap and works without a display.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mirror_plot(
    mz: np.ndarray,
    observed: np.ndarray,
    predicted: np.ndarray,
    labels: Sequence[str] | None = None,
    title: str = "",
):
    """Observed intensities up, predicted down, at the same m/z: the usual spectrum comparison."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    observed = observed / max(float(np.max(observed, initial=0)), 1e-12)
    predicted = np.clip(predicted, 0, None) / max(float(np.max(predicted, initial=0)), 1e-12)
    is_b = np.array([lab.startswith("b") for lab in labels]) if labels else np.zeros(len(mz), bool)
    for sign, values in ((1, observed), (-1, predicted)):
        for selection, colour in ((is_b, "tab:blue"), (~is_b, "tab:red")):
            ax.vlines(mz[selection], 0, sign * values[selection], colors=colour, linewidth=1.2)
    if labels:
        for x, y, text in zip(mz, observed, labels, strict=True):
            if y > 0.15:
                ax.text(x, y + 0.02, text, fontsize=7, ha="center", rotation=90)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylim(-1.15, 1.3)
    ax.set_xlabel("m/z")
    ax.set_ylabel("relative intensity (observed up, predicted down)")
    ax.set_title(title, fontsize=9)
    ax.legend(
        handles=[
            plt.Line2D([], [], color="tab:blue", label="b ions"),
            plt.Line2D([], [], color="tab:red", label="y ions"),
        ],
        loc="upper right",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def histogram(values: np.ndarray, xlabel: str, title: str = "", bins: int = 40):
    """Distribution of a per-item score with its median marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(values, bins=bins, color="tab:gray", edgecolor="white")
    if len(values):
        median = float(np.median(values))
        ax.axvline(median, color="tab:red", label=f"median {median:.3f}")
        ax.legend()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def confusion_matrix_plot(matrix: np.ndarray, labels: Sequence[str], title: str = ""):
    """Rows true, columns predicted; colour is the row share (recall), text the count."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=np.float64)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 1.8 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            colour = "white" if share[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7, c=colour)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    return fig


LOGO_COLOURS = {"A": "tab:green", "C": "tab:blue", "G": "orange", "T": "tab:red", "U": "tab:red"}


def _draw_letter(ax, letter: str, x: float, y: float, height: float, colour: str) -> None:
    """A glyph stretched to fill [x, x+0.9] x [y, y+height] (matplotlib TextPath, no logomaker)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    path = TextPath(
        (0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold")
    )
    box = path.get_extents()
    transform = (
        Affine2D()
        .translate(-box.x0, -box.y0)
        .scale(0.9 / box.width, height / box.height)
        .translate(x + 0.05, y)
    )
    ax.add_patch(PathPatch(transform.transform_path(path), facecolor=colour, linewidth=0))


def information_content(probabilities: np.ndarray) -> np.ndarray:
    """Letter heights in bits: p * (log2(A) - H) per position (Schneider & Stephens 1990)."""
    p = np.asarray(probabilities, dtype=np.float64)
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-12)
    entropy = -(p * np.log2(np.where(p > 0, p, 1.0))).sum(1, keepdims=True)
    return p * (np.log2(p.shape[1]) - entropy)


def sequence_logo(probabilities: np.ndarray, letters: str, title: str = "", ax=None):
    """Sequence logo of a [positions, letters] probability matrix, letters stacked by height."""
    plt = _pyplot()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(3.0, 0.32 * len(probabilities)), 1.8))
    heights = information_content(probabilities)
    for x, column in enumerate(heights):
        y = 0.0
        for index in np.argsort(column):
            if column[index] > 1e-3:
                colour = LOGO_COLOURS.get(letters[index], "tab:gray")
                _draw_letter(ax, letters[index], x, y, column[index], colour)
                y += column[index]
    ax.set_xlim(0, len(heights))
    ax.set_ylim(0, np.log2(len(letters)))
    ax.set_ylabel("bits", fontsize=8)
    ax.set_xticks([])
    ax.set_title(title, fontsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def motif_logos(motifs: Sequence[np.ndarray], letters: str, titles: Sequence[str], ncols: int = 2):
    """A grid of sequence logos (e.g. the motifs learned by a DeepBind model's filters)."""
    plt = _pyplot()
    nrows = max(1, -(-len(motifs) // ncols))
    width = max(3.0, 0.3 * max((len(m) for m in motifs), default=10))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * width, 1.9 * nrows), squeeze=False)
    for ax, motif, title in zip(axes.flat, motifs, titles, strict=False):
        sequence_logo(motif, letters, title, ax=ax)
    for ax in list(axes.flat)[len(motifs) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def predicted_vs_observed(observed: np.ndarray, predicted: np.ndarray, label: str, title: str = ""):
    """Scatter of predicted against observed values with the diagonal (e.g. retention times)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(observed, predicted, s=3, alpha=0.4, color="tab:blue", linewidths=0)
    if len(observed):
        ends = [min(np.min(observed), np.min(predicted)), max(np.max(observed), np.max(predicted))]
        ax.plot(ends, ends, color="black", linewidth=0.8)
    ax.set_xlabel(f"observed {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
