"""Classification metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from deepms.metrics import (
    PerClassMCC,
    binary_metrics,
    flatten_metrics,
    mcc_from_counts,
    multiclass_metrics,
    per_class_mcc,
)


def test_mcc_from_counts() -> None:
    # TP=6 FP=2 TN=3 FN=1: (18 - 2) / sqrt(8 * 7 * 5 * 4) = 16 / sqrt(1120)
    value = mcc_from_counts(*(torch.tensor(float(v)) for v in (6, 2, 3, 1)))
    assert value.item() == pytest.approx(16 / math.sqrt(1120), abs=1e-6)
    assert mcc_from_counts(*(torch.tensor(v) for v in (5.0, 0.0, 0.0, 0.0))).item() == 0.0


def test_per_class_mcc_one_vs_rest() -> None:
    confusion = torch.tensor([[5, 1, 0], [2, 3, 1], [0, 0, 4]])
    # class 0: TP 5, FN 1, FP 2, TN 8 -> (40 - 2) / sqrt(7 * 6 * 10 * 9)
    expected0 = 38 / math.sqrt(7 * 6 * 10 * 9)
    assert per_class_mcc(confusion)[0].item() == pytest.approx(expected0, abs=1e-6)
    metric = PerClassMCC(3)
    preds = torch.tensor([0] * 5 + [1] + [0, 0, 1, 1, 1, 2] + [2] * 4)
    target = torch.tensor([0] * 6 + [1] * 6 + [2] * 4)
    metric.update(preds, target)
    assert torch.equal(metric.confusion.long(), confusion)


def test_binary_metrics_at_cutoff_and_ranking() -> None:
    probs = torch.tensor([0.9, 0.8, 0.3, 0.6, 0.2, 0.1])
    target = torch.tensor([1, 1, 1, 0, 0, 0])
    values = binary_metrics().forward(probs, target)
    # at 0.5: TP 2, FN 1, FP 1, TN 2
    assert values["acc"].item() == pytest.approx(4 / 6)
    assert values["sensitivity"].item() == pytest.approx(2 / 3)
    assert values["specificity"].item() == pytest.approx(2 / 3)
    assert values["mcc"].item() == pytest.approx(1 / 3, abs=1e-6)
    assert values["auroc"].item() == pytest.approx(8 / 9)  # 8 of 9 pos/neg pairs ordered


def test_ignore_index_drops_unknown_labels() -> None:
    values = binary_metrics(ignore_index=-1).forward(
        torch.tensor([0.9, 0.1, 0.9]), torch.tensor([1, 0, -1])
    )
    assert values["acc"].item() == 1.0 and values["auroc"].item() == 1.0


def test_multiclass_collection_and_flat_names() -> None:
    metrics = multiclass_metrics(3)
    scores = torch.eye(3)[torch.tensor([0, 1, 2, 2])]
    values = metrics.forward(scores, torch.tensor([0, 1, 2, 1]))
    assert values["acc"].item() == pytest.approx(0.75)
    flat = flatten_metrics(values, "test", ["Nucleus", "Lysosome/Vacuole", "Cell.membrane"])
    assert flat["test_acc"] == pytest.approx(0.75)
    assert "test_mcc_Lysosome_Vacuole" in flat and "test_mcc_Cell.membrane" in flat
    assert not any("confusion" in key for key in flat)
