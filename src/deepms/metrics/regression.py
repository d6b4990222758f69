"""Retention-time (regression) metrics with the definitions the RT papers publish.

All take predicted and observed values in the same unit (minutes, seconds or iRT) and report in
that unit, except the correlations and the relative MAE:

* MAE and median absolute error: mean / median of ``|pred - obs|`` (DeepLC, Bouwmeester et al.
  2021, Nat Methods 18:1363, reports both).
* Pearson R and R2 (coefficient of determination ``1 - SS_res / SS_tot``; DeepRT+, Ma et al.
  2018, Anal Chem 90:10881, reports R2 0.994 on its RPLC set).
* delta-t95: the full width of the window around the diagonal that holds 95 % of the peptides,
  ``2 * e_(k)`` where ``e_(k)`` is the k-th smallest absolute error and ``k = ceil(0.95 n)``.
  This is DeepRT's ``Delta_t95`` (horsepurve/DeepRTplus, ``RTdata_emb.py``) and DeepLC's
  "Delta t95%"; note it is symmetric by construction (twice the 95th percentile of ``|error|``),
  not the narrowest asymmetric window.
* Relative MAE: ``100 * MAE / max(obs)``, in percent, DeepLC's MAE relative to the gradient
  length (``deeplc/plot.py``: ``mae / max(observed) * 100``). For iRT, whose scale starts below
  zero, ``reference="range"`` divides by ``max(obs) - min(obs)`` instead.

The classes keep every value (``cat`` states) so that medians and percentiles are exact and
synchronised across DDP ranks; RT test sets are small enough for that.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def _pair(preds: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    preds = torch.as_tensor(preds).double().flatten()
    target = torch.as_tensor(target).double().flatten()
    if preds.shape != target.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ")
    return preds, target


def mean_absolute_error(preds: torch.Tensor, target: torch.Tensor) -> float:
    preds, target = _pair(preds, target)
    return float((preds - target).abs().mean())


def median_absolute_error(preds: torch.Tensor, target: torch.Tensor) -> float:
    preds, target = _pair(preds, target)
    return float(torch.quantile((preds - target).abs(), 0.5))


def pearson_r(preds: torch.Tensor, target: torch.Tensor) -> float:
    """Pearson correlation; NaN when either side has no variance (undefined, not zero)."""
    preds, target = _pair(preds, target)
    p, t = preds - preds.mean(), target - target.mean()
    denom = math.sqrt(float((p * p).sum()) * float((t * t).sum()))
    return float((p * t).sum()) / denom if denom > 0 else math.nan


def r2_score(preds: torch.Tensor, target: torch.Tensor) -> float:
    """``1 - SS_res / SS_tot``; can be negative for a model worse than the mean."""
    preds, target = _pair(preds, target)
    total = float(((target - target.mean()) ** 2).sum())
    residual = float(((target - preds) ** 2).sum())
    return 1.0 - residual / total if total > 0 else math.nan


def delta_t95(preds: torch.Tensor, target: torch.Tensor, coverage: float = 0.95) -> float:
    """Full width of the diagonal window holding ``coverage`` of peptides (DeepRT's Delta_t95)."""
    preds, target = _pair(preds, target)
    if preds.numel() == 0:
        return math.nan
    errors = torch.sort((preds - target).abs()).values
    k = math.ceil(len(errors) * coverage)
    return 2.0 * float(errors[max(k, 1) - 1])


def relative_mae(preds: torch.Tensor, target: torch.Tensor, reference: str = "max") -> float:
    """MAE as a percentage of the gradient: of ``max(obs)`` (DeepLC) or of the observed range."""
    preds, target = _pair(preds, target)
    if reference == "max":
        span = float(target.max())
    elif reference == "range":
        span = float(target.max() - target.min())
    else:
        raise ValueError(f"reference must be 'max' or 'range', got {reference!r}")
    return 100.0 * mean_absolute_error(preds, target) / span if span > 0 else math.nan


def regression_report(preds: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Every metric above at once (for studies and baselines outside Lightning)."""
    return {
        "mae": mean_absolute_error(preds, target),
        "median_ae": median_absolute_error(preds, target),
        "r": pearson_r(preds, target),
        "r2": r2_score(preds, target),
        "delta_t95": delta_t95(preds, target),
        "rel_mae": relative_mae(preds, target),
    }


class _PairMetric(Metric):
    """Collects (pred, obs) pairs; subclasses name the function that summarises them."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        preds, target = _pair(preds.detach(), target.detach())
        self.preds.append(preds)
        self.target.append(target)

    def _summary(self, preds: torch.Tensor, target: torch.Tensor) -> float:
        raise NotImplementedError

    def compute(self) -> torch.Tensor:
        if not self.preds:
            return torch.tensor(float("nan"))
        preds, target = dim_zero_cat(self.preds), dim_zero_cat(self.target)
        return torch.tensor(self._summary(preds, target), dtype=torch.float32)


class MAE(_PairMetric):
    """Mean absolute error, in the RT unit."""

    def _summary(self, preds, target):
        return mean_absolute_error(preds, target)


class MedianAE(_PairMetric):
    """Median absolute error, in the RT unit."""

    def _summary(self, preds, target):
        return median_absolute_error(preds, target)


class PearsonR(_PairMetric):
    """Pearson correlation of predicted and observed RT."""

    higher_is_better = True

    def _summary(self, preds, target):
        return pearson_r(preds, target)


class R2(_PairMetric):
    """Coefficient of determination ``1 - SS_res / SS_tot``."""

    higher_is_better = True

    def _summary(self, preds, target):
        return r2_score(preds, target)


class DeltaT95(_PairMetric):
    """DeepRT/DeepLC delta-t95: ``2 *`` the ``ceil(0.95 n)``-th smallest absolute error."""

    def __init__(self, coverage: float = 0.95, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.coverage = coverage

    def _summary(self, preds, target):
        return delta_t95(preds, target, self.coverage)


class RelativeMAE(_PairMetric):
    """MAE in percent of ``max(obs)`` (DeepLC) or of ``max - min`` (``reference="range"``)."""

    def __init__(self, reference: str = "max", **kwargs: object) -> None:
        super().__init__(**kwargs)
        if reference not in ("max", "range"):
            raise ValueError(f"reference must be 'max' or 'range', got {reference!r}")
        self.reference = reference

    def _summary(self, preds, target):
        return relative_mae(preds, target, self.reference)


def regression_metrics(reference: str = "max") -> dict[str, _PairMetric]:
    """One of each RT metric, keyed as the ``<stage>_<name>`` metrics tasks log."""
    return {
        "mae": MAE(),
        "median_ae": MedianAE(),
        "r": PearsonR(),
        "r2": R2(),
        "delta_t95": DeltaT95(),
        "rel_mae": RelativeMAE(reference),
    }
