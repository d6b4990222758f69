"""Metrics with their published definitions, as torchmetrics classes (DDP-synchronised)."""

from deepms.metrics.classification import (
    PerClassMCC,
    binary_metrics,
    flatten_metrics,
    mcc_from_counts,
    multiclass_metrics,
    per_class_mcc,
)
from deepms.metrics.regression import (
    MAE,
    R2,
    DeltaT95,
    MedianAE,
    PearsonR,
    RelativeMAE,
    delta_t95,
    regression_metrics,
    regression_report,
)
from deepms.metrics.spectrum import (
    MedianPearson,
    MedianSpectralAngle,
    PCCAbove,
    masked_pearson,
    spectral_angle,
)

__all__ = [
    "MAE",
    "R2",
    "DeltaT95",
    "MedianAE",
    "MedianPearson",
    "MedianSpectralAngle",
    "PCCAbove",
    "PearsonR",
    "PerClassMCC",
    "RelativeMAE",
    "binary_metrics",
    "delta_t95",
    "flatten_metrics",
    "masked_pearson",
    "mcc_from_counts",
    "multiclass_metrics",
    "per_class_mcc",
    "regression_metrics",
    "regression_report",
    "spectral_angle",
]
