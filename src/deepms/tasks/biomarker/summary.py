"""Pooled figures of a cross-validated biomarker run, on the parent's out-of-fold table.

Fold means hide how few samples a cohort has; a user comparing the DBN with a baseline needs an
interval on the out-of-fold AUROC and a test on the SAME samples. Under repeated CV every sample
is predicted once per repeat, so the AUROC is computed per repeat and averaged over repeats (the
point estimate). The bootstrap resamples samples (patients), stratified by class, and applies the
same resample to every repeat and every model: its interval reflects which patients were in the
cohort, the paired difference cancels what both models share. The two-sided p-value inverts the
percentile interval: 2 * min(share of differences <= 0, share >= 0), with +1 smoothing, capped
at 1. The best baseline is chosen on these same predictions, which favours the baseline.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from deepms.tasks.biomarker.baselines import BASELINES

N_BOOTSTRAP = 2000


def probability_columns(oof: pd.DataFrame) -> tuple[str, list[str]]:
    """(the DBN's ``p_<positive class>`` column, the ``p_<baseline>`` columns)."""
    baselines = [f"p_{name}" for name in BASELINES if f"p_{name}" in oof.columns]
    dbn = [c for c in oof.columns if c.startswith("p_") and c not in baselines]
    if len(dbn) != 1:
        raise ValueError(f"out-of-fold table: expected one DBN probability column, got {dbn}")
    return dbn[0], baselines


def auroc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row of ``scores`` [B, n] against ``labels`` [B, n] (ties count 1/2); NaN
    for a row with one class."""
    labels = np.atleast_2d(labels).astype(bool)
    ranks = rankdata(np.atleast_2d(scores), axis=-1)
    n_pos = labels.sum(-1)
    n_neg = labels.shape[-1] - n_pos
    u = (ranks * labels).sum(-1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def _wide(oof: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(labels [n], column -> probabilities [n, repeats]) over the samples of every repeat."""
    frame = oof.assign(repeat=oof.get("repeat", 0))
    n_repeats = frame["repeat"].nunique()
    counts = frame.groupby("id")["repeat"].nunique()
    ids = counts.index[counts == n_repeats]  # a sample missing from a repeat is left out
    labels = frame.groupby("id")["label"].first().loc[ids].to_numpy().astype(int)
    wide = {c: frame.pivot_table(index="id", columns="repeat", values=c).loc[ids] for c in columns}
    return labels, {c: w.to_numpy(dtype=float) for c, w in wide.items()}


def bootstrap_auroc(
    oof: pd.DataFrame, columns: list[str], n_boot: int = N_BOOTSTRAP, seed: int = 0
) -> dict[str, tuple[float, np.ndarray]]:
    """column -> (AUROC averaged over repeats, its ``n_boot`` paired bootstrap replicates)."""
    labels, wide = _wide(oof, columns)
    rng = np.random.default_rng(seed)
    index = np.empty((n_boot, len(labels)), dtype=int)
    for value in np.unique(labels):  # stratified: every replicate keeps the class counts
        rows = np.flatnonzero(labels == value)
        index[:, rows] = rng.choice(rows, size=(n_boot, len(rows)), replace=True)
    out = {}
    for column, p in wide.items():
        point = np.mean([auroc_rows(labels, p[:, r])[0] for r in range(p.shape[1])])
        boot = np.mean([auroc_rows(labels[index], p[index, r]) for r in range(p.shape[1])], 0)
        out[column] = (float(point), boot)
    return out


def paired_difference(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """Percentile interval and two-sided p-value of paired bootstrap replicates' difference."""
    diff = np.asarray(first) - np.asarray(second)
    below, above = int((diff <= 0).sum()), int((diff >= 0).sum())
    p = min(1.0, 2 * (min(below, above) + 1) / (len(diff) + 1))
    low, high = np.percentile(diff, [2.5, 97.5])
    return {"ci95_low": float(low), "ci95_high": float(high), "p": p}


def site_table(oof: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per site: n samples, n positive and each column's AUROC (mean over repeats), or the
    words "one class only" where a site holds one class (Bader's Kiel: controls only)."""
    rows = []
    frame = oof.assign(repeat=oof.get("repeat", 0))
    for site, part in frame.groupby("site", sort=True):
        labels = part.groupby("id")["label"].first()
        row: dict[str, Any] = {"site": site, "n": len(labels), "n_positive": int(labels.sum())}
        for column in columns:
            name = "auroc" if column == columns[0] else f"auroc_{column.removeprefix('p_')}"
            if labels.nunique() < 2:
                row[name] = "one class only"
                continue
            values = [auroc_rows(r["label"].to_numpy(), r[column].to_numpy())[0]
                      for _, r in part.groupby("repeat")]  # fmt: skip
            row[name] = round(float(np.nanmean(values)), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def panel_selection(oof: pd.DataFrame) -> pd.DataFrame:
    """How often each protein was in a fold's panel: feature, n_folds, fraction, mean_rank."""
    panels = oof.groupby("fold")["panel"].first().map(json.loads)
    records = [(f, rank) for panel in panels for rank, f in enumerate(panel, start=1)]
    table = pd.DataFrame(records, columns=["feature", "rank"])
    out = table.groupby("feature")["rank"].agg(n_folds="count", mean_rank="mean").reset_index()
    out.insert(2, "fraction", out["n_folds"] / len(panels))
    return out.sort_values(["n_folds", "mean_rank"], ascending=[False, True], ignore_index=True)


def summarize_folds(
    oof: pd.DataFrame, folds: pd.DataFrame, n_boot: int = N_BOOTSTRAP, seed: int = 0
) -> tuple[dict[str, float], dict[str, Any]]:
    """The cv hook (:mod:`deepms.training.cv_hook`): metrics ``oof_auroc`` (+ ``_ci95_low/high``),
    ``oof_auroc_<baseline>``, ``oof_auroc_diff_<best>`` (+ interval) and ``oof_auroc_diff_p``;
    plots ``roc``, ``calibration``, ``panel_selection``; tables ``site_performance`` (if the
    table has sites) and ``panel_frequency``."""
    from deepms.tasks.biomarker.summary_plots import calibration_figure, panel_figure, roc_figure

    dbn, baselines = probability_columns(oof)
    boot = bootstrap_auroc(oof, [dbn, *baselines], n_boot, seed)
    point, replicates = boot[dbn]
    low, high = np.percentile(replicates, [2.5, 97.5])
    metrics = {"oof_auroc": point, "oof_auroc_ci95_low": low, "oof_auroc_ci95_high": high}
    metrics |= {f"oof_auroc_{c.removeprefix('p_')}": boot[c][0] for c in baselines}
    compared = [dbn]
    if baselines:
        best = max(baselines, key=lambda c: boot[c][0])
        name = best.removeprefix("p_")
        test = paired_difference(replicates, boot[best][1])
        metrics[f"oof_auroc_diff_{name}"] = point - boot[best][0]
        metrics[f"oof_auroc_diff_{name}_ci95_low"] = test["ci95_low"]
        metrics[f"oof_auroc_diff_{name}_ci95_high"] = test["ci95_high"]
        metrics["oof_auroc_diff_p"] = test["p"]
        compared.append(best)
    artifacts: dict[str, Any] = {
        "roc": roc_figure(oof, compared),
        "calibration": calibration_figure(oof, dbn),
    }
    if "site" in oof:
        artifacts["site_performance"] = site_table(oof, compared)
    if "panel" in oof:
        selection = panel_selection(oof)
        artifacts["panel_frequency"] = selection  # cv/panel_frequency.csv
        artifacts["panel_selection"] = panel_figure(selection, len(folds))
    return {k: float(v) for k, v in metrics.items()}, artifacts
