"""The pictures of a cross-validated biomarker run: mean ROC with its band, the DBN's reliability
diagram, and the panel's selection frequency across folds (each returns a matplotlib Figure)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepms.plots import _pyplot

GRID = np.linspace(0, 1, 101)


def fold_rocs(oof: pd.DataFrame, column: str) -> np.ndarray:
    """[folds, 101] TPR on a common FPR grid, one row per fold with both classes."""
    from sklearn.metrics import roc_curve

    rows = []
    for _, part in oof.groupby("fold"):
        if part["label"].nunique() < 2:  # a one-class fold (a held-out site) has no ROC
            continue
        fpr, tpr, _ = roc_curve(part["label"], part[column])
        curve = np.interp(GRID, fpr, tpr)
        curve[0] = 0.0
        rows.append(curve)
    return np.array(rows).reshape(-1, len(GRID))


def roc_figure(oof: pd.DataFrame, columns: list[str]) -> Any:
    """Mean ROC over folds with a +-1 sd band per model; the legend gives mean +- sd AUROC."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for column, colour in zip(columns, ("tab:blue", "tab:orange", "tab:green"), strict=False):
        curves = fold_rocs(oof, column)
        if not len(curves):
            continue
        mean, sd = curves.mean(0), curves.std(0, ddof=1) if len(curves) > 1 else 0 * GRID
        aucs = np.trapezoid(curves, GRID, axis=1)
        name = "DBN" if column == columns[0] else column.removeprefix("p_")
        label = f"{name}: AUROC {aucs.mean():.3f} ± {aucs.std(ddof=1) if len(aucs) > 1 else 0:.3f}"
        ax.plot(GRID, mean, color=colour, label=label)
        ax.fill_between(GRID, np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1),
                        color=colour, alpha=0.2)  # fmt: skip
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"mean ROC over {oof['fold'].nunique()} folds (band: ±1 sd)", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def calibration_figure(oof: pd.DataFrame, column: str, n_bins: int = 10) -> Any:
    """Reliability diagram of the pooled out-of-fold probabilities, with their histogram."""
    from sklearn.calibration import calibration_curve

    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    observed, predicted = calibration_curve(oof["label"], oof[column], n_bins=n_bins)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", color="tab:blue", label="DBN (out of fold)")
    ax.set(ylabel="fraction positive", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("calibration of the out-of-fold probabilities", fontsize=9)
    hist.hist(oof[column], bins=n_bins, range=(0, 1), color="tab:blue", alpha=0.7)
    hist.set(xlabel="predicted probability", ylabel="samples")
    fig.tight_layout()
    return fig


def panel_figure(selection: pd.DataFrame, n_folds: int, top: int = 20) -> Any:
    """Horizontal bars: the share of folds whose top-k panel held each protein (most first)."""
    plt = _pyplot()
    shown = selection.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(shown) + 1.2))
    ax.barh(shown["feature"].astype(str), shown["fraction"], color="tab:blue")
    for y, (fraction, rank) in enumerate(zip(shown["fraction"], shown["mean_rank"], strict=True)):
        ax.text(fraction + 0.01, y, f"mean rank {rank:.1f}", va="center", fontsize=7)
    ax.set(xlabel=f"fraction of {n_folds} folds selecting it", xlim=(0, 1.25))
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("DBN panel: selection across folds", fontsize=9)
    fig.tight_layout()
    return fig
