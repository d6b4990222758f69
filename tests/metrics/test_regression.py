"""Retention-time metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from deepms.metrics import MAE, R2, DeltaT95, MedianAE, PearsonR, RelativeMAE, delta_t95
from deepms.metrics.regression import regression_report

OBS = torch.tensor([10.0, 20.0, 30.0, 40.0])
PRED = torch.tensor([12.0, 19.0, 33.0, 40.0])  # errors +2, -1, +3, 0


def test_mae_and_median_absolute_error() -> None:
    report = regression_report(PRED, OBS)
    assert report["mae"] == pytest.approx(1.5)  # (2 + 1 + 3 + 0) / 4
    assert report["median_ae"] == pytest.approx(1.5)  # median of 0, 1, 2, 3


def test_pearson_and_r2() -> None:
    # Perfect line with slope 2: r = 1 but R2 (against the identity) is far below 1.
    assert regression_report(2 * OBS, OBS)["r"] == pytest.approx(1.0)
    assert regression_report(-OBS, OBS)["r"] == pytest.approx(-1.0)
    # SS_res = 4 + 1 + 9 + 0 = 14; SS_tot = 225 + 25 + 25 + 225 = 500 -> R2 = 1 - 14/500
    assert regression_report(PRED, OBS)["r2"] == pytest.approx(1 - 14 / 500)
    assert regression_report(torch.full((4,), 25.0), OBS)["r2"] == pytest.approx(0.0)


def test_delta_t95_is_twice_the_ceil_95_percent_absolute_error() -> None:
    # 20 peptides with |errors| 1..20: k = ceil(0.95 * 20) = 19 -> window 2 * 19 = 38.
    obs = torch.zeros(20)
    errors = torch.arange(1.0, 21.0) * torch.tensor([1.0, -1.0] * 10)
    assert delta_t95(errors, obs) == pytest.approx(38.0)
    # 10 peptides: k = ceil(9.5) = 10, the largest error counts.
    assert delta_t95(torch.arange(1.0, 11.0), torch.zeros(10)) == pytest.approx(20.0)
    assert delta_t95(OBS, OBS) == 0.0


def test_relative_mae_is_percent_of_the_latest_elution_or_of_the_range() -> None:
    assert regression_report(PRED, OBS)["rel_mae"] == pytest.approx(100 * 1.5 / 40)
    metric = RelativeMAE("range")
    metric.update(PRED, OBS)
    assert float(metric.compute()) == pytest.approx(100 * 1.5 / 30)
    with pytest.raises(ValueError, match="reference"):
        RelativeMAE("median")


def test_metric_classes_accumulate_batches_exactly() -> None:
    metrics = {
        "mae": MAE(),
        "median_ae": MedianAE(),
        "r": PearsonR(),
        "r2": R2(),
        "delta_t95": DeltaT95(),
        "rel_mae": RelativeMAE(),
    }
    for metric in metrics.values():
        metric.update(PRED[:1], OBS[:1])
        metric.update(PRED[1:], OBS[1:])
    expected = regression_report(PRED, OBS)
    for name, metric in metrics.items():
        assert float(metric.compute()) == pytest.approx(expected[name], rel=1e-6), name


def test_undefined_cases_are_nan_not_zero() -> None:
    assert math.isnan(float(MAE().compute()))  # nothing seen
    assert math.isnan(regression_report(torch.ones(3), torch.tensor([1.0, 2.0, 3.0]))["r"])
    with pytest.raises(ValueError, match="differ"):
        regression_report(torch.ones(3), torch.ones(4))
