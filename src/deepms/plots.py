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
