"""Evaluation of detected features without hand labels: against simulated truth, and between runs.

Match rule (issue 16, Build 5): a detected feature matches a truth feature when their
monoisotopic m/z differ by at most ``ppm`` (10) relative to the truth m/z, the charges are equal,
and the truth apex lies inside the detected feature's RT span ``[rt_start, rt_end]`` (inclusive).

One-to-one assignment is greedy by m/z error: all candidate pairs are sorted by absolute ppm
error (ties by RT distance of the apexes) and accepted when neither side is taken yet. Why greedy
and not optimal (Hungarian): with a 10 ppm window and a charge match, conflicts are rare and
local, greedy is deterministic, explainable and O(n log n); a split feature (two detections of one
truth) counts one true positive and one false positive, which is the penalty we want.

What the metrics can and cannot show: precision/recall/F1 on simulated maps measure detection of
what the simulator can produce (its isotope model, EMG shapes, noise) and not the chemistry or
instrument effects it lacks; the quantification error is a log ratio after median normalisation,
so a detector's constant scale does not count, only its feature-to-feature consistency.
``reproducibility`` between replicate runs needs no truth but rewards a detector that finds the
same (possibly wrong) signals twice; it says nothing about correctness, only consistency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class MatchResult:
    """Counts, rates and the quantification error of one detected-vs-truth comparison."""

    n_truth: int
    n_detected: int
    true_positives: int
    precision: float
    recall: float
    f1: float
    quant_log2_mae: float  # median |log2 ratio| after median normalisation; NaN without pairs
    quant_log2_sd: float  # sd of the normalised log2 ratios

    def as_dict(self) -> dict[str, float]:
        """Flat dict for MLflow logging."""
        return {k: float(v) for k, v in asdict(self).items()}


def match_features(
    detected: pd.DataFrame,
    truth: pd.DataFrame,
    ppm: float = 10.0,
    detected_mz: str = "mz",
    truth_mz: str = "mono_mz",
) -> pd.DataFrame:
    """One-to-one pairs ``(detected_index, truth_index, ppm_error)`` under the match rule.

    ``detected`` needs ``mz`` (monoisotopic), ``charge``, ``rt_start``, ``rt_end`` (and
    ``rt_apex`` for tie breaking when present); ``truth`` needs ``mono_mz``, ``charge``,
    ``rt_apex``. Row positions (not index labels) are returned.
    """
    d_mz = detected[detected_mz].to_numpy(float)
    t_mz = truth[truth_mz].to_numpy(float)
    t_order = np.argsort(t_mz, kind="stable")
    t_sorted = t_mz[t_order]
    d_charge = detected["charge"].to_numpy(int)
    t_charge = truth["charge"].to_numpy(int)
    t_apex = truth["rt_apex"].to_numpy(float)
    starts = detected["rt_start"].to_numpy(float)
    ends = detected["rt_end"].to_numpy(float)
    d_apex = detected["rt_apex"].to_numpy(float) if "rt_apex" in detected else (starts + ends) / 2
    pairs: list[tuple[float, float, int, int]] = []
    tolerance = ppm * 1e-6
    for i, mz in enumerate(d_mz):
        # |d - t| <= ppm * t  <=>  d / (1 + tol) <= t <= d / (1 - tol)
        lo = np.searchsorted(t_sorted, mz / (1 + tolerance) * (1 - 1e-12), side="left")
        hi = np.searchsorted(t_sorted, mz / (1 - tolerance) * (1 + 1e-12), side="right")
        for j in t_order[lo:hi]:
            error = (mz - t_mz[j]) / t_mz[j] * 1e6
            if abs(error) > ppm or d_charge[i] != t_charge[j]:
                continue
            if not starts[i] <= t_apex[j] <= ends[i]:
                continue
            pairs.append((abs(error), abs(d_apex[i] - t_apex[j]), i, int(j)))
    pairs.sort()
    used_d: set[int] = set()
    used_t: set[int] = set()
    rows: list[tuple[int, int, float]] = []
    for _, _, i, j in pairs:
        if i in used_d or j in used_t:
            continue
        used_d.add(i)
        used_t.add(j)
        rows.append((i, j, (d_mz[i] - t_mz[j]) / t_mz[j] * 1e6))
    return pd.DataFrame(rows, columns=["detected_index", "truth_index", "ppm_error"])


def quantification_error(
    detected_intensity: np.ndarray, truth_intensity: np.ndarray
) -> tuple[float, float]:
    """(median |log2 ratio|, sd) of matched intensities after removing the median log2 ratio.

    Median normalisation removes a detector's global scale (apex vs area, units), which label-free
    quantification cancels anyway; what remains is per-feature error. Non-positive values are
    dropped (a log ratio is undefined for them).
    """
    d = np.asarray(detected_intensity, float)
    t = np.asarray(truth_intensity, float)
    ok = (d > 0) & (t > 0)
    if not ok.any():
        return float("nan"), float("nan")
    ratio = np.log2(d[ok]) - np.log2(t[ok])
    ratio -= np.median(ratio)
    return float(np.median(np.abs(ratio))), float(np.std(ratio))


def evaluate_features(
    detected: pd.DataFrame,
    truth: pd.DataFrame,
    ppm: float = 10.0,
    detected_intensity: str = "intensity_sum",
    truth_intensity: str = "summed_intensity",
) -> MatchResult:
    """Precision, recall, F1 and quantification error of ``detected`` against ``truth``."""
    pairs = match_features(detected, truth, ppm)
    tp = len(pairs)
    precision = tp / len(detected) if len(detected) else 0.0
    recall = tp / len(truth) if len(truth) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    mae = sd = float("nan")
    if tp and detected_intensity in detected and truth_intensity in truth:
        mae, sd = quantification_error(
            detected[detected_intensity].to_numpy(float)[pairs["detected_index"]],
            truth[truth_intensity].to_numpy(float)[pairs["truth_index"]],
        )
    return MatchResult(len(truth), len(detected), tp, precision, recall, f1, mae, sd)


def _apex(features: pd.DataFrame) -> np.ndarray:
    if "rt_apex" in features:
        return features["rt_apex"].to_numpy(float)
    return ((features["rt_start"] + features["rt_end"]) / 2).to_numpy(float)


def _nearest_pairs(
    a: pd.DataFrame, b: pd.DataFrame, ppm: float, rt_a: np.ndarray, rt_tol: float
) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs: same charge, m/z within ppm, |rt_a - rt_b| <= rt_tol."""
    a_mz, b_mz = a["mz"].to_numpy(float), b["mz"].to_numpy(float)
    a_z, b_z = a["charge"].to_numpy(int), b["charge"].to_numpy(int)
    rt_b = _apex(b)
    order = np.argsort(b_mz, kind="stable")
    b_sorted = b_mz[order]
    candidates: list[tuple[float, float, int, int]] = []
    for i, mz in enumerate(a_mz):
        lo = np.searchsorted(b_sorted, mz * (1 - ppm * 1e-6), side="left")
        hi = np.searchsorted(b_sorted, mz * (1 + ppm * 1e-6), side="right")
        for j in order[lo:hi]:
            drt = abs(rt_a[i] - rt_b[j])
            if a_z[i] == b_z[j] and drt <= rt_tol:
                candidates.append((abs(mz - b_mz[j]) / mz, drt, i, int(j)))
    candidates.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for _, _, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return pairs


def reproducibility(
    features_a: pd.DataFrame,
    features_b: pd.DataFrame,
    rt_shift_fit: str = "linear",
    ppm: float = 10.0,
    rt_tolerance: float = 30.0,
    anchor_rt_window: float = 300.0,
    anchor_min_intensity_quantile: float = 0.5,
) -> dict[str, float]:
    """Share of run A's features found again in run B after a linear RT alignment.

    Alignment: confident anchor pairs (same charge, m/z within ``ppm / 2``, apexes within
    ``anchor_rt_window`` s, both in the upper intensity half, unique best match) give a robust
    linear fit ``rt_b = slope * rt_a + intercept`` (least squares, refitted once without pairs
    beyond 3 MADs). Then A's apexes are mapped into B and matched one-to-one within ``ppm`` and
    ``rt_tolerance``. ``rt_shift_fit='none'`` skips the alignment (identity). Needs ``mz``,
    ``charge`` and ``rt_apex`` (or ``rt_start``/``rt_end``); ``intensity_sum`` is optional.
    """
    if rt_shift_fit not in ("linear", "none"):
        raise ValueError(f"rt_shift_fit must be 'linear' or 'none', got {rt_shift_fit!r}")
    rt_a = _apex(features_a)
    slope, intercept, n_anchors = 1.0, 0.0, 0
    if rt_shift_fit == "linear" and len(features_a) and len(features_b):
        strong_a, strong_b = (
            _strong(features_a, anchor_min_intensity_quantile),
            _strong(features_b, anchor_min_intensity_quantile),
        )
        anchors = _nearest_pairs(
            features_a[strong_a].reset_index(drop=True),
            features_b[strong_b].reset_index(drop=True),
            ppm / 2,
            rt_a[strong_a],
            anchor_rt_window,
        )
        if len(anchors) >= 3:
            x = rt_a[strong_a][[i for i, _ in anchors]]
            y = _apex(features_b)[strong_b][[j for _, j in anchors]]
            slope, intercept = np.polyfit(x, y, 1)
            residual = y - (slope * x + intercept)
            mad = np.median(np.abs(residual - np.median(residual))) * 1.4826 or 1.0
            keep = np.abs(residual) <= 3 * mad
            if keep.sum() >= 3:
                slope, intercept = np.polyfit(x[keep], y[keep], 1)
            n_anchors = int(keep.sum())
    mapped = slope * rt_a + intercept
    pairs = _nearest_pairs(features_a, features_b, ppm, mapped, rt_tolerance)
    n_a = len(features_a)
    return {
        "n_features_a": float(n_a),
        "n_features_b": float(len(features_b)),
        "n_reproduced": float(len(pairs)),
        "reproducibility": len(pairs) / n_a if n_a else 0.0,
        "rt_slope": float(slope),
        "rt_intercept": float(intercept),
        "n_anchors": float(n_anchors),
    }


def _strong(features: pd.DataFrame, quantile: float) -> np.ndarray:
    """Boolean mask of features at or above the intensity quantile (all when no intensity)."""
    if "intensity_sum" not in features or not len(features):
        return np.ones(len(features), dtype=bool)
    values = features["intensity_sum"].to_numpy(float)
    return values >= np.quantile(values, quantile)
