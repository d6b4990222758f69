"""From per-row scores to an identification table, its error rates and the figures that judge it.

The same function judges deepms and every peer (:func:`assess`), so their counts differ only by
their scores. Identification units: ``peak_group`` = the best peak group of a ``group_id`` (one
precursor in one run), ``precursor`` = the best over runs of a ``precursor_id``, ``peptide`` = the
best of a ``peptide`` (the precursor when the file names no peptide). At each level, q-values
by target-decoy competition (TDC) and Storey's pi0-corrected q-values and PEP
(:mod:`deepms.metrics.fdr`, PyProphet's defaults); a row that is not its unit's best gets the
values of the best-unit threshold at its score (monotone, like PyProphet's all-peak-group table).
Counts are of *real* targets (entrapment rows are targets to the pipeline but never counted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepms.metrics.fdr import (
    PI0_LAMBDAS,
    best_per_group,
    decoy_pvalues,
    error_rates,
    pi0_storey,
    tdc_qvalues,
)
from deepms.tasks.dia.entrapment import entrapment_fdp

THRESHOLDS = (0.01, 0.05, 0.1)
LEVEL_PLURALS = {"peak_group": "peak_groups", "precursor": "precursors", "peptide": "peptides"}
OUTPUT_COLUMNS = (
    "feature_id",
    "group_id",
    "precursor_id",
    "pair_id",
    "run",
    "peptide",
    "charge",
    "rt",
    "decoy",
    "entrapment",
    "fold",
)


def pct(level: float) -> str:
    """0.01 -> "1pct" (metric names)."""
    return f"{round(level * 100, 6):g}pct"


def _unit_key(table: pd.DataFrame, level: str) -> str:
    if level == "peak_group":
        return "group_id"
    if level == "precursor":
        return "precursor_id"
    if "peptide" in table and table["peptide"].astype(str).str.len().gt(0).all():
        return "peptide"
    return "precursor_id"


def step_lookup(ref_scores: np.ndarray, ref_values: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The value of the highest reference score <= each score (values monotone in score); below
    every reference, the value of the lowest one."""
    order = np.argsort(ref_scores, kind="stable")
    ref_s, ref_v = ref_scores[order], ref_values[order]
    at = np.searchsorted(ref_s, scores, side="right") - 1
    return ref_v[np.clip(at, 0, len(ref_v) - 1)]


def standardise_by_fold(scores: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each fold's scores centred on their median and scaled by their interquartile range, over
    all its rows: a label-free alignment of the networks' scales (no decoy flag is read, so the
    held-out decoys stay an untouched null)."""
    out = np.asarray(scores, dtype=np.float64).copy()
    for k in np.unique(fold):
        rows = fold == k
        low, mid, high = np.quantile(out[rows], [0.25, 0.5, 0.75])
        out[rows] = (out[rows] - mid) / max(high - low, 1e-9)
    return out


def calibrate_by_fold(
    scores: np.ndarray,
    decoy: np.ndarray,
    fold: np.ndarray,
    groups: np.ndarray,
    fdr: float = 0.01,
) -> np.ndarray:
    """Put each fold's network on one scale before the folds are pooled (as mokapot does).

    It reads the fold's decoys: with small folds (a few dozen decoy groups) the threshold is set
    by the fold's top decoys, which pushes exactly those decoys below it -- the entrapment check
    showed the estimated FDR turning optimistic, so the task's default is ``none``.

    In fold k (scored by network k alone): the lowest best-per-group target score with TDC q <=
    ``fdr`` maps to 0 and the median best-per-group decoy score to -1. Without such a target the
    highest decoy score stands in for the threshold.
    """
    out = np.asarray(scores, dtype=np.float64).copy()
    for k in np.unique(fold):
        rows = np.flatnonzero(fold == k)
        sub = pd.DataFrame({"g": groups[rows], "score": out[rows], "decoy": decoy[rows]})
        best = best_per_group(sub, "g")
        q = tdc_qvalues(best["score"], best["decoy"])
        passed = best["score"].to_numpy()[(q <= fdr) & ~best["decoy"].to_numpy()]
        decoys = best.loc[best["decoy"], "score"].to_numpy()
        if len(decoys) == 0:
            continue
        threshold = passed.min() if len(passed) else decoys.max()
        centre = np.median(decoys)
        scale = threshold - centre if threshold - centre > 1e-9 else max(np.std(decoys), 1e-9)
        out[rows] = (out[rows] - threshold) / scale
    return out


def assess(
    frame: pd.DataFrame,
    scores: Sequence[float],
    thresholds: Sequence[float] = THRESHOLDS,
    plus_one: bool = False,
    pi0_lambdas: Sequence[float] = PI0_LAMBDAS,
    pi0_method: str = "bootstrap",
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The scored table (every target, decoy and entrapment row) and the metrics of ``scores``.

    Columns added: ``score``, ``rank`` (1 = best of its group_id), ``best`` and, per level,
    ``q_<level>`` (TDC), ``q_pi0_<level>`` (Storey) and ``pep_<level>``. Metrics (no prefix):
    ``<units>_at_<t>`` (TDC) and ``<units>_pi0_at_<t>`` per level and threshold, ``pi0``, and
    ``entrapment_fdp[_upper|_lower]_at_<t>`` at precursor level when entrapment rows exist.
    """
    table = frame[[c for c in OUTPUT_COLUMNS if c in frame.columns]].copy()
    if "entrapment" not in table:
        table["entrapment"] = False
    table["decoy"] = table["decoy"].astype(bool)
    table["score"] = np.asarray(scores, dtype=np.float64)
    table["rank"] = (
        table.groupby("group_id")["score"].rank(ascending=False, method="first").astype(int)
    )
    table["best"] = table["rank"] == 1
    metrics: dict[str, float] = {}
    real = ~table["decoy"] & ~table["entrapment"]
    for level, plural in LEVEL_PLURALS.items():
        best = best_per_group(table, _unit_key(table, level))
        rates, pi0 = error_rates(
            best["score"], best["decoy"], pi0_lambdas, pi0_method, plus_one=plus_one
        )
        ref = best["score"].to_numpy()
        for name, column in (("q", "q_tdc"), ("q_pi0", "q_storey"), ("pep", "pep")):
            values = rates[column].to_numpy()
            table[f"{name}_{level}"] = step_lookup(ref, values, table["score"].to_numpy())
        table.loc[table["decoy"], f"pep_{level}"] = 1.0
        unit_real = real.loc[best.index].to_numpy()
        for t in thresholds:
            metrics[f"{plural}_at_{pct(t)}"] = float((unit_real & (rates["q_tdc"] <= t)).sum())
            metrics[f"{plural}_pi0_at_{pct(t)}"] = float(
                (unit_real & (rates["q_storey"] <= t)).sum()
            )
        metrics[f"pi0_{level}"] = float(pi0)
        if level == "precursor":
            metrics.update(_entrapment(best, rates, thresholds, pi0_lambdas, pi0_method))
    metrics["pi0"] = metrics["pi0_precursor"]
    return table, metrics


def _entrapment(
    best: pd.DataFrame,
    rates: pd.DataFrame,
    thresholds: Sequence[float],
    pi0_lambdas: Sequence[float],
    pi0_method: str,
) -> dict[str, float]:
    """Observed entrapment FDP at each TDC threshold (definitions: entrapment.py)."""
    entrapment = best["entrapment"].to_numpy(bool)
    if not entrapment.any():
        return {}
    decoy = best["decoy"].to_numpy(bool)
    real = ~decoy & ~entrapment
    scores = best["score"].to_numpy()
    pi0_real = pi0_storey(decoy_pvalues(scores[real], scores[decoy]), pi0_lambdas, pi0_method)
    n_real, n_entrapment, n_decoy = int(real.sum()), int(entrapment.sum()), int(decoy.sum())
    # plain TDC assumes as many null targets as decoys; here the pool holds about
    # n_entrapment + pi0 * n_real nulls, so honest TDC q-values understate the FDP by this ratio
    out = {
        "entrapment_pi0_real": pi0_real,
        "entrapment_null_to_decoy_ratio": (n_entrapment + pi0_real * n_real) / max(n_decoy, 1),
    }
    for suffix, column in (("", "q_tdc"), ("_pi0", "q_storey")):
        q = rates[column].to_numpy()
        for t in thresholds:
            accepted = ~decoy & (q <= t)
            fdp = entrapment_fdp(entrapment[accepted], n_real, n_entrapment, pi0_real)
            for key, value in fdp.items():
                out[f"entrapment{suffix}_{key}_at_{pct(t)}"] = value
    return out


def identification_curve(table: pd.DataFrame, level: str = "precursor") -> tuple[Any, Any]:
    """(q-values sorted, cumulative real-target units) for the identifications-vs-q plot."""
    key = f"q_{level}"
    units = best_per_group(table, _unit_key(table, level))
    real = units[~units["decoy"] & ~units["entrapment"]]
    q = np.sort(real[key].to_numpy())
    return q, np.arange(1, len(q) + 1)


def figures(
    tables: Mapping[str, pd.DataFrame],
    metrics: Mapping[str, Mapping[str, float]],
    thresholds: Sequence[float] = THRESHOLDS,
    max_q: float = 0.15,
) -> dict[str, Any]:
    """``identifications_vs_q``, ``score_histogram`` (first table) and ``entrapment_calibration``
    (estimated vs observed FDP per method, when entrapment ran)."""
    from deepms.plots import _pyplot

    plt = _pyplot()
    out: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, table in tables.items():
        q, n = identification_curve(table)
        keep = q <= max_q
        ax.step(q[keep], n[keep], where="post", label=name)
    ax.set_xlabel("q-value (TDC, precursor level)")
    ax.set_ylabel("real target precursors")
    ax.axvline(0.01, color="grey", linestyle=":", linewidth=0.8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out["identifications_vs_q"] = fig

    name, table = next(iter(tables.items()))
    best = table[table["best"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(best["score"].min(), best["score"].max(), 60)
    parts = (
        ("targets", ~best["decoy"] & ~best["entrapment"], "tab:blue"),
        ("decoys", best["decoy"], "tab:red"),
        ("entrapment", best["entrapment"], "tab:green"),
    )
    for label, mask, colour in parts:
        if mask.any():
            ax.hist(best.loc[mask, "score"], bins=bins, alpha=0.5, label=label, color=colour)
    ax.set_xlabel(f"{name} score (best peak group per precursor and run)")
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out["score_histogram"] = fig

    if any(f"entrapment_fdp_at_{pct(thresholds[0])}" in m for m in metrics.values()):
        fig, ax = plt.subplots(figsize=(5, 5))
        top = max(thresholds) * 1.6
        ax.plot([0, top], [0, top], color="grey", linewidth=0.8, label="y = x")
        ax.plot(
            [0, top], [0, 1.5 * top], color="grey", linestyle=":", linewidth=0.8, label="y = 1.5 x"
        )
        for method, values in metrics.items():
            observed = [values.get(f"entrapment_fdp_at_{pct(t)}", np.nan) for t in thresholds]
            ax.plot(thresholds, observed, marker="o", label=method)
        ax.set_xlabel("estimated FDR (q-value threshold)")
        ax.set_ylabel("observed entrapment FDP")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top * 1.5)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out["entrapment_calibration"] = fig
    return out
