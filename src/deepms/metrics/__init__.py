"""Metrics with their published definitions, as torchmetrics classes (DDP-synchronised)."""

from deepms.metrics.spectrum import (
    MedianPearson,
    MedianSpectralAngle,
    PCCAbove,
    masked_pearson,
    spectral_angle,
)

__all__ = ["MedianPearson", "MedianSpectralAngle", "PCCAbove", "masked_pearson", "spectral_angle"]
