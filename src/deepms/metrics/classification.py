"""Classification metrics as the sequence papers report them, on torchmetrics (DDP-synchronised).

* Binary (Deep-RBPPred, DeepBind, DeepLoc's membrane head): accuracy, Matthews correlation,
  sensitivity (recall of positives), specificity (recall of negatives), AUROC and AUPRC (average
  precision). Targets equal to ``ignore_index`` (e.g. DeepLoc's unknown ``-U``) are left out.
* Multi-class (DeepLoc): accuracy, the multi-class MCC (Gorodkin 2004), a one-vs-rest MCC per class
  (DeepLoc's Table 2) and the confusion matrix (rows = true class, columns = predicted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryAveragePrecision,
    BinaryMatthewsCorrCoef,
    BinaryRecall,
    BinarySpecificity,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassMatthewsCorrCoef,
)


def mcc_from_counts(
    tp: torch.Tensor, fp: torch.Tensor, tn: torch.Tensor, fn: torch.Tensor
) -> torch.Tensor:
    """(TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)); 0 where a margin is empty."""
    tp, fp, tn, fn = (t.double() for t in (tp, fp, tn, fn))
    denominator = torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    value = (tp * tn - fp * fn) / denominator.clamp(min=1e-300)
    return torch.where(denominator > 0, value, torch.zeros_like(value)).float()


def per_class_mcc(confusion: torch.Tensor) -> torch.Tensor:
    """One-vs-rest MCC per class from a [C, C] confusion matrix (rows true, columns predicted)."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    tn = confusion.sum() - tp - fp - fn
    return mcc_from_counts(tp, fp, tn, fn)


class PerClassMCC(Metric):
    """One-vs-rest Matthews correlation per class, accumulated as a confusion matrix."""

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, num_classes: int, ignore_index: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state(
            "confusion", default=torch.zeros(num_classes, num_classes), dist_reduce_fx="sum"
        )

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """``preds``: [N, C] scores or [N] class indices; ``target``: [N] class indices."""
        if preds.ndim == 2:
            preds = preds.argmax(-1)
        keep = target != self.ignore_index if self.ignore_index is not None else target >= 0
        index = target[keep].long() * self.num_classes + preds[keep].long()
        counts = torch.bincount(index, minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes).to(self.confusion)

    def compute(self) -> torch.Tensor:
        return per_class_mcc(self.confusion)


def binary_metrics(ignore_index: int | None = None, threshold: float = 0.5) -> MetricCollection:
    """acc, mcc, sensitivity, specificity (at ``threshold``), auroc, auprc, over probabilities."""
    kw: dict[str, Any] = {"ignore_index": ignore_index}
    cut = {**kw, "threshold": threshold}
    return MetricCollection(
        {
            "acc": BinaryAccuracy(**cut),
            "mcc": BinaryMatthewsCorrCoef(**cut),
            "sensitivity": BinaryRecall(**cut),
            "specificity": BinarySpecificity(**cut),
            "auroc": BinaryAUROC(**kw),
            "auprc": BinaryAveragePrecision(**kw),
        }
    )


def multiclass_metrics(num_classes: int, ignore_index: int | None = None) -> MetricCollection:
    """acc (micro), mcc (multi-class), per_class_mcc and confusion over [N, C] scores."""
    kw = {"num_classes": num_classes, "ignore_index": ignore_index}
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(average="micro", **kw),
            "mcc": MulticlassMatthewsCorrCoef(**kw),
            "per_class_mcc": PerClassMCC(**kw),
            "confusion": MulticlassConfusionMatrix(**kw),
        }
    )


def flatten_metrics(
    values: dict[str, torch.Tensor], prefix: str, class_names: Sequence[str] = ()
) -> dict[str, float]:
    """Scalars as ``<prefix>_<name>``, per-class vectors as ``<prefix>_<name>_<class>``.

    Matrices (the confusion matrix) are skipped: they are plotted, not logged as metrics.
    """
    flat: dict[str, float] = {}
    for name, value in values.items():
        value = torch.as_tensor(value)
        if value.ndim == 0:
            flat[f"{prefix}_{name}"] = float(value)
        elif value.ndim == 1:
            labels = list(class_names) or [str(i) for i in range(len(value))]
            for label, item in zip(labels, value.tolist(), strict=True):
                flat[f"{prefix}_{name.removeprefix('per_class_')}_{safe_name(label)}"] = item
    return flat


def safe_name(label: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . /`` and spaces; keep it simple."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in label)
