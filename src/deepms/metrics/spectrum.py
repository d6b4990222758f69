"""Spectrum-similarity metrics used to judge fragment-intensity predictors.

Inputs are batches of flattened fragment-intensity vectors ``[batch, n_ions]`` with a boolean
``mask`` of the same shape that is False for impossible ions (e.g. b ions beyond the peptide length
or fragment charges above the precursor charge). Masked entries never contribute.

* Pearson correlation per spectrum, as pDeep reports it (Zhou et al. 2017, Anal Chem 89:12690).
* Normalised spectral angle, as Prosit defines it (Gessulat et al. 2019, Nat Methods 16:509):
  ``SA = 1 - 2 * arccos(cos_sim) / pi`` on L2-normalised vectors, 1 = identical, 0 = orthogonal.
* PCC90: the share of spectra whose PCC exceeds 0.9 (pDeep's headline figure).

The metric classes keep per-spectrum values (``cat`` states) so that the median, which does not
decompose over batches, is exact and synchronised across DDP ranks.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def _masked(values: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    values = values if values.dtype == torch.float64 else values.float()
    if mask is None:
        mask = torch.ones_like(values, dtype=torch.bool)
    return torch.where(mask, values, torch.zeros_like(values)), mask.bool()


def masked_pearson(
    preds: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    """Per-row Pearson correlation over the unmasked entries; 0 where a row has no variance."""
    preds, mask = _masked(preds, mask)
    target, _ = _masked(target, mask)
    n = mask.sum(dim=-1).clamp(min=1)
    p_mean = preds.sum(-1, keepdim=True) / n.unsqueeze(-1)
    t_mean = target.sum(-1, keepdim=True) / n.unsqueeze(-1)
    p_c = torch.where(mask, preds - p_mean, torch.zeros_like(preds))
    t_c = torch.where(mask, target - t_mean, torch.zeros_like(target))
    cov = (p_c * t_c).sum(-1)
    denom = torch.sqrt((p_c**2).sum(-1) * (t_c**2).sum(-1))
    return torch.where(denom > eps, cov / denom.clamp(min=eps), torch.zeros_like(cov))


def spectral_angle(
    preds: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    """Per-row normalised spectral angle (Prosit), in [0, 1]; negative predictions clipped to 0.

    Computed in float64: arccos is steep near 1, so float32 rounding would cap identical spectra
    at ~0.9998 instead of 1.
    """
    preds, mask = _masked(preds.double().clamp(min=0), mask)
    target, _ = _masked(target.double().clamp(min=0), mask)
    p = preds / preds.norm(dim=-1, keepdim=True).clamp(min=eps)
    t = target / target.norm(dim=-1, keepdim=True).clamp(min=eps)
    cos = (p * t).sum(-1).clamp(-1.0, 1.0)
    return (1.0 - 2.0 * torch.arccos(cos) / math.pi).float()


class _PerSpectrumMetric(Metric):
    """Collects one score per spectrum; subclasses define the score and the summary."""

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    def _score(self, preds: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None):
        raise NotImplementedError

    def update(
        self, preds: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> None:
        self.scores.append(self._score(preds.detach(), target.detach(), mask).float())

    def per_spectrum(self) -> torch.Tensor:
        """All per-spectrum scores seen so far (for plots and per-source breakdowns)."""
        scores = self.scores  # a list locally, one tensor once synchronised across DDP ranks
        if isinstance(scores, list) and not scores:
            return torch.empty(0)
        return dim_zero_cat(scores)

    def compute(self) -> torch.Tensor:
        scores = self.per_spectrum()
        if scores.numel() == 0:
            return torch.tensor(float("nan"))
        return self._summary(scores)

    def _summary(self, scores: torch.Tensor) -> torch.Tensor:
        # torch.median returns the lower of the two middle values; use the textbook median.
        return torch.quantile(scores, 0.5)


class MedianPearson(_PerSpectrumMetric):
    """Median over spectra of the per-spectrum Pearson correlation (pDeep)."""

    def _score(self, preds, target, mask):
        return masked_pearson(preds, target, mask)


class MedianSpectralAngle(_PerSpectrumMetric):
    """Median over spectra of the normalised spectral angle (Prosit)."""

    def _score(self, preds, target, mask):
        return spectral_angle(preds, target, mask)


class PCCAbove(_PerSpectrumMetric):
    """Share of spectra whose Pearson correlation exceeds ``threshold`` (PCC90 for 0.9)."""

    def __init__(self, threshold: float = 0.9, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold

    def _score(self, preds, target, mask):
        return masked_pearson(preds, target, mask)

    def _summary(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores > self.threshold).float().mean()
