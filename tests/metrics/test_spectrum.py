"""Spectrum metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from deepms.metrics import (
    MedianPearson,
    MedianSpectralAngle,
    PCCAbove,
    masked_pearson,
    spectral_angle,
)


def test_pearson_of_scaled_copy_is_one_and_of_reversal_is_minus_one() -> None:
    preds = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    target = torch.tensor([[2.0, 4.0, 6.0], [1.0, 2.0, 3.0]])
    assert masked_pearson(preds, target).tolist() == pytest.approx([1.0, -1.0], abs=1e-6)


def test_pearson_ignores_masked_ions() -> None:
    # Unmasked: x=(1,2,3), y=(1,3,2): means 2; cov = (-1)(-1)+0+(1)(0) = 1; var = 2 and 2 -> r = 0.5
    preds = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    target = torch.tensor([[1.0, 3.0, 2.0, -5.0]])
    mask = torch.tensor([[True, True, True, False]])
    assert masked_pearson(preds, target, mask).item() == pytest.approx(0.5, abs=1e-6)


def test_pearson_is_zero_without_variance() -> None:
    assert masked_pearson(torch.ones(1, 4), torch.arange(4.0)[None]).item() == 0.0


def test_spectral_angle_published_definition() -> None:
    # (1,0) vs (1,1): cos = 1/sqrt(2), angle = pi/4 -> SA = 1 - 2*(pi/4)/pi = 0.5
    value = spectral_angle(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
    assert value.item() == pytest.approx(0.5, abs=1e-6)
    # identical up to scale -> 1; orthogonal -> 0
    assert spectral_angle(torch.tensor([[0.2, 0.4]]), torch.tensor([[1.0, 2.0]])).item() == 1.0
    assert spectral_angle(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])).item() == 0.0


def test_spectral_angle_masks_and_clips_negative_predictions() -> None:
    preds = torch.tensor([[1.0, -3.0, 9.0]])
    target = torch.tensor([[1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    # masked third entry dropped, negative clipped to 0 -> (1, 0) vs (1, 0) -> 1
    assert spectral_angle(preds, target, mask).item() == pytest.approx(1.0)


def test_median_metrics_accumulate_over_batches() -> None:
    target = torch.tensor([[1.0, 2.0, 3.0]])
    metric, pcc90 = MedianPearson(), PCCAbove(0.9)
    for preds in ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 3.0, 2.0]):  # r = 1, -1, 0.5
        metric.update(torch.tensor([preds]), target)
        pcc90.update(torch.tensor([preds]), target)
    assert metric.compute().item() == pytest.approx(0.5, abs=1e-6)
    assert pcc90.compute().item() == pytest.approx(1 / 3)


def test_median_spectral_angle_of_even_count_is_midpoint() -> None:
    metric = MedianSpectralAngle()
    metric.update(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]]))
    # scores 0.5 and 1.0 -> median 0.75
    assert metric.compute().item() == pytest.approx(0.75, abs=1e-6)
    assert math.isnan(MedianSpectralAngle().compute().item())
