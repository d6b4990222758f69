"""pdeep baseline: the mean training spectrum, scored with the task's own spectrum metrics."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from deepms.metrics import MedianPearson, MedianSpectralAngle, PCCAbove


def mean_spectrum_baseline(datamodule: Any) -> dict[str, float]:
    """Predict the mean training spectrum of the same (length, charge), nearest length otherwise."""
    sums: dict[tuple[int, int], np.ndarray] = {}
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for sample in datamodule.datasets["train"].samples:
        key = (len(sample.peptide.sequence), sample.charge)
        sums[key] = sums.get(key, 0) + sample.target
        counts[key] += 1
    means = {key: total / counts[key] for key, total in sums.items()}
    metrics = {
        "test_median_pcc": MedianPearson(),
        "test_median_sa": MedianSpectralAngle(),
        "test_pcc90": PCCAbove(0.9),
    }
    for sample in datamodule.datasets["test"].samples:
        length = len(sample.peptide.sequence)
        candidates = [k for k in means if k[1] == sample.charge] or list(means)
        key = min(candidates, key=lambda k: (abs(k[0] - length), k[0]))
        mean = means[key]
        pred = np.zeros_like(sample.target)
        rows = min(len(pred), len(mean))
        pred[:rows] = mean[:rows]
        for metric in metrics.values():
            metric.update(
                torch.from_numpy(pred).flatten()[None],
                torch.from_numpy(sample.target).flatten()[None],
                torch.from_numpy(sample.mask).flatten()[None],
            )
    return {name: float(metric.compute()) for name, metric in metrics.items()}
