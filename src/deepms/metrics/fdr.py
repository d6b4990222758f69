"""Target-decoy error rates: q-values, p-values, Storey's pi0, PEP, and best-per-group aggregation.

Task-independent: scores are "higher = more target-like", ``decoy`` is a boolean per row.

* :func:`tdc_qvalues` -- plain target-decoy competition (Elias & Gygi 2007; what mokapot and
  Percolator report): at threshold ``s``, FDR(s) = #decoys >= s / #targets >= s, and the q-value of
  a row is the minimum FDR(t) over thresholds t <= its score (so q never decreases as the score
  falls). ``plus_one=True`` gives the conservative variant (#decoys + 1) / #targets of Levitsky et
  al. / He et al. that provably controls FDR in finite samples; the default is the plain ratio,
  which is PyProphet's and mokapot's point estimate. Ties: every row sharing a score is counted
  before the ratio is taken (all or none of a tied block passes a threshold).
* :func:`decoy_pvalues` -- the empirical p-value of a score against the decoy scores (PyProphet's
  non-parametric ``pemp``): the fraction of decoys scoring >= it, floored at 1 / #decoys.
* :func:`pi0_storey` -- Storey's proportion of null targets. PyProphet's ``score`` default is
  ``--pi0_lambda 0.1 0.5 0.05`` (lambda = 0.10, 0.15, ..., 0.45) with ``--pi0_method bootstrap``:
  implemented here as the closed-form bootstrap of Storey's qvalue >= 2.0 (``pi0est``; PyProphet
  1.x ran 100 random resamples of the same criterion): for each lambda, pi0(l) = #(p >= l) /
  (m (1 - l)); its mean squared error against the 10th percentile of the pi0(l), ``minpi0``, is
  W (1 - W/m) / (m^2 (1 - l)^2) + (pi0(l) - minpi0)^2 with W = #(p >= l); the pi0 of least MSE
  is taken. ``method="smoother"`` (qvalue's spline over lambda, df 3) is offered as well; a
  single lambda gives Storey's plain estimate. pi0 is capped at 1.
* :func:`storey_qvalues` -- q = pi0 m p / rank(p), made monotone from the largest p down
  (Storey 2002); with pi0 = 1 this is Benjamini-Hochberg on the decoy p-values.
* :func:`pep_lfdr` -- posterior error probabilities as PyProphet's ``lfdr`` (qvalue's local FDR,
  PyProphet's defaults: probit transform, Gaussian kernel density with bandwidth adjust 1.5,
  truncated at 1, monotone in p): PEP = pi0 * phi(x) / f(x), x = Phi^-1(p).
* :func:`best_per_group` -- one row per group (a peak group per precursor in a run, a precursor
  across runs, a peptide): its highest score; the identification units FDR is quoted at.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: PyProphet ``score`` defaults (checked against its CLI: pyprophet/cli/score.py)
PI0_LAMBDAS: tuple[float, ...] = tuple(np.round(np.arange(0.1, 0.5, 0.05), 2).tolist())
LEVELS = ("peak_group", "precursor", "peptide")


def _arrays(scores: Sequence[float], decoy: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    d = np.asarray(decoy, dtype=bool).reshape(-1)
    if s.shape != d.shape:
        raise ValueError(f"{len(s)} scores for {len(d)} decoy flags")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; score every row before computing q-values")
    return s, d


def tdc_qvalues(
    scores: Sequence[float], decoy: Sequence[bool], plus_one: bool = False
) -> np.ndarray:
    """Target-decoy competition q-value of every row (targets and decoys alike).

    FDR(s) = (D(s) [+1]) / max(T(s), 1) with D, T the decoys and targets scoring >= s; q of a row
    is min FDR(t) over t <= score. Rows of equal score get the same q (ties counted as a block).
    Values are capped at 1.
    """
    s, d = _arrays(scores, decoy)
    if len(s) == 0:
        return np.zeros(0)
    order = np.argsort(-s, kind="stable")
    sorted_s, sorted_d = s[order], d[order]
    n_decoys = np.cumsum(sorted_d)
    n_targets = np.cumsum(~sorted_d)
    # the last row of each tied block carries the block's counts
    last_of_block = np.r_[sorted_s[1:] != sorted_s[:-1], True]
    block_end = np.flatnonzero(last_of_block)
    block_of_row = np.searchsorted(block_end, np.arange(len(s)))
    ends = block_end[block_of_row]
    fdr = (n_decoys[ends] + (1 if plus_one else 0)) / np.maximum(n_targets[ends], 1)
    # q = min FDR over all thresholds at or below the row's score: a running min from the bottom
    q_sorted = np.minimum.accumulate(fdr[::-1])[::-1]
    q = np.empty(len(s))
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def decoy_pvalues(scores: Sequence[float], decoy_scores: Sequence[float]) -> np.ndarray:
    """P(decoy score >= s) for each ``s``: the empirical null p-value (floored at 1/#decoys)."""
    null = np.sort(np.asarray(decoy_scores, dtype=np.float64))
    if len(null) == 0:
        raise ValueError("no decoy scores: p-values need a null distribution")
    s = np.asarray(scores, dtype=np.float64)
    at_least = len(null) - np.searchsorted(null, s, side="left")
    return np.maximum(at_least, 1) / len(null)


def pi0_storey(
    pvalues: Sequence[float],
    lambdas: Sequence[float] = PI0_LAMBDAS,
    method: str = "bootstrap",
    smooth_df: int = 3,
) -> float:
    """Storey's estimate of the share of null p-values (PyProphet's default settings)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        raise ValueError("pi0 of no p-values")
    lam = np.sort(np.asarray(lambdas, dtype=np.float64))
    if len(lam) == 1:
        return float(min(1.0, np.mean(p >= lam[0]) / (1 - lam[0])))
    if len(lam) < 4:
        raise ValueError("give one lambda or at least four (as qvalue requires)")
    pi0 = np.array([np.mean(p >= lv) / (1 - lv) for lv in lam])
    if method == "bootstrap":
        minpi0 = float(np.quantile(pi0, 0.1))
        w = np.array([np.sum(p >= lv) for lv in lam], dtype=np.float64)
        mse = w / (m**2 * (1 - lam) ** 2) * (1 - w / m) + (pi0 - minpi0) ** 2
        return float(min(1.0, pi0[np.argmin(mse)]))
    if method == "smoother":
        from scipy.interpolate import make_smoothing_spline

        # a cubic smoothing spline of pi0 over lambda (qvalue: smooth.spline df=3), read at max
        spline = make_smoothing_spline(lam, pi0, lam=_df_penalty(lam, pi0, smooth_df))
        return float(min(1.0, max(0.0, spline(lam[-1]))))
    raise ValueError(f"pi0 method {method!r}: use bootstrap or smoother")


def _df_penalty(x: np.ndarray, y: np.ndarray, df: int) -> float:
    """The smoothing penalty whose spline has ``df`` effective degrees of freedom (bisection)."""
    from scipy.interpolate import make_smoothing_spline

    def effective_df(penalty: float) -> float:
        eye = np.eye(len(x))
        hat = np.column_stack([make_smoothing_spline(x, e, lam=penalty)(x) for e in eye])
        return float(np.trace(hat))

    low, high = -12.0, 6.0
    for _ in range(40):
        mid = (low + high) / 2
        if effective_df(10**mid) > df:
            low = mid
        else:
            high = mid
    return 10 ** ((low + high) / 2)


def storey_qvalues(pvalues: Sequence[float], pi0: float = 1.0) -> np.ndarray:
    """Storey's q-values: pi0 m p_(i) / i, monotone (cumulative min from the largest p)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return np.zeros(0)
    order = np.argsort(p, kind="stable")
    ranks = np.empty(m)
    # tied p-values share the largest rank of their block (as R's rank(ties="max"))
    ranks[order] = np.searchsorted(p[order], p[order], side="right")
    q = pi0 * m * p / ranks
    q_sorted = np.minimum.accumulate(q[order][::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q_sorted, 1.0)
    return out


def pep_lfdr(
    pvalues: Sequence[float],
    pi0: float,
    adjust: float = 1.5,
    eps: float = 1e-8,
    grid: int = 512,
) -> np.ndarray:
    """Local FDR (posterior error probability) of each p-value, PyProphet/qvalue style.

    x = probit(p) (clipped to [eps, 1 - eps]); f = Gaussian KDE of x with R's ``bw.nrd0`` times
    ``adjust``, evaluated on a grid and interpolated (as R's ``density``); PEP = pi0 phi(x) / f(x),
    truncated at 1 and made non-decreasing in p (a worse p never gets a better PEP).
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if len(p) == 0:
        return np.zeros(0)
    x = stats.norm.ppf(np.clip(p, eps, 1 - eps))
    n = len(x)
    spread = min(np.std(x, ddof=1) if n > 1 else 1.0, stats.iqr(x) / 1.34 if n > 1 else 1.0)
    spread = spread if spread > 0 else (np.std(x, ddof=1) if n > 1 and np.std(x) > 0 else 1.0)
    bandwidth = 0.9 * spread * n ** (-0.2) * adjust
    points = np.linspace(x.min() - 3 * bandwidth, x.max() + 3 * bandwidth, grid)
    density = np.zeros(grid)
    for start in range(0, n, 4096):  # bounded memory: grid x 4096 at a time
        chunk = x[start : start + 4096]
        density += stats.norm.pdf((points[:, None] - chunk[None, :]) / bandwidth).sum(1)
    density /= n * bandwidth
    f = np.interp(x, points, density)
    lfdr = np.minimum(pi0 * stats.norm.pdf(x) / np.maximum(f, 1e-300), 1.0)
    order = np.argsort(p, kind="stable")
    lfdr[order] = np.maximum.accumulate(lfdr[order])
    return lfdr


def error_rates(
    scores: Sequence[float],
    decoy: Sequence[bool],
    lambdas: Sequence[float] = PI0_LAMBDAS,
    pi0_method: str = "bootstrap",
    plus_one: bool = False,
) -> tuple[pd.DataFrame, float]:
    """Per-row q-values (TDC and Storey), p-value and PEP of one identification level.

    Returns a frame aligned with the input (columns ``q_tdc``, ``p_value``, ``q_storey``,
    ``pep``; decoys get their TDC q and, against the decoy null, a p-value too) and pi0.
    """
    s, d = _arrays(scores, decoy)
    q_tdc = tdc_qvalues(s, d, plus_one=plus_one)
    out = pd.DataFrame({"q_tdc": q_tdc, "p_value": np.nan, "q_storey": np.nan, "pep": np.nan})
    if not d.any() or d.all():
        return out, 1.0
    p = decoy_pvalues(s, s[d])
    targets = ~d
    pi0 = pi0_storey(p[targets], lambdas, pi0_method)
    out["p_value"] = p
    q_storey = np.full(len(s), np.nan)
    q_storey[targets] = storey_qvalues(p[targets], pi0)
    # a decoy's Storey q: that of the targets at or above its score (monotone in score)
    t_order = np.argsort(-s[targets], kind="stable")
    t_scores, t_q = s[targets][t_order], q_storey[targets][t_order]
    running = np.minimum.accumulate(t_q[::-1])[::-1]
    at = np.searchsorted(-t_scores, -s[d], side="right") - 1
    q_storey[d] = np.where(at >= 0, running[np.clip(at, 0, None)], 1.0)
    out["q_storey"] = q_storey
    pep = np.ones(len(s))
    pep[targets] = pep_lfdr(p[targets], pi0)
    out["pep"] = pep
    return out, pi0


def best_per_group(
    frame: pd.DataFrame, group: str | Sequence[str], score: str = "score"
) -> pd.DataFrame:
    """The highest-scoring row of each group (ties: the first row in frame order)."""
    keys = [group] if isinstance(group, str) else list(group)
    order = frame.sort_values(score, ascending=False, kind="stable")
    return order.drop_duplicates(keys, keep="first").sort_index()


def identifications_at(
    q: Sequence[float], level: float, decoy: Sequence[bool] | None = None
) -> int:
    """Targets (``decoy`` False; all rows when not given) with q-value <= ``level``."""
    q = np.asarray(q, dtype=np.float64)
    passed = q <= level
    if decoy is not None:
        passed &= ~np.asarray(decoy, dtype=bool)
    return int(passed.sum())
