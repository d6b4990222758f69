"""Transfer of a trained RT model to a new LC system: its calibration map and vocabulary remap.

``finetune.mode=calibrate`` keeps the pretrained network and maps its output through a
continuous piecewise-linear fit (:func:`fit_piecewise_linear`, evaluated by
:func:`piecewise_linear`), the classic baseline for a new column; :func:`remap_columns` carries
the pretrained modification columns over by name when the new set's vocabulary differs;
:func:`collect_outputs` gathers network outputs over a loader (for the calibration and the
DeepRT stack, always from the training part).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def remap_columns(
    old: torch.Tensor, new: torch.Tensor, old_keys: Sequence[str], new_keys: Sequence[str]
) -> torch.Tensor:
    """``new`` with every column whose key both vocabularies hold copied from ``old``.

    For input layers over a data-dependent vocabulary (e.g. modifications): columns past the
    vocabulary (shared channels such as a mass shift) are matched from the end.
    """
    out = new.detach().clone()
    index = {key: i for i, key in enumerate(new_keys)}
    for i, key in enumerate(old_keys):
        if key in index:
            out[:, index[key]] = old[:, i]
    extra = old.shape[1] - len(old_keys)
    if extra > 0 and new.shape[1] - len(new_keys) == extra:
        out[:, -extra:] = old[:, -extra:]
    return out


@torch.no_grad()
def collect_outputs(module: Any, loader: Any, *fns: Any) -> tuple[np.ndarray, ...]:
    """Each ``fn(batch)`` over a loader, in eval mode on the module's device, as numpy arrays."""
    was_training = module.training
    module.eval()
    outputs: list[list[np.ndarray]] = [[] for _ in fns]
    for batch in loader:
        batch = {k: v.to(module.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        for out, fn in zip(outputs, fns, strict=True):
            out.append(fn(batch).float().cpu().numpy())
    module.train(was_training)
    return tuple(np.concatenate(out) for out in outputs)


def fit_piecewise_linear(
    x: np.ndarray, y: np.ndarray, n_knots: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares continuous piecewise-linear map ``x -> y`` with ``n_knots`` knots at
    quantiles of x (nudged apart when x repeats, so the count is fixed for model buffers).

    Returns the knots and the fitted values there; :func:`piecewise_linear` evaluates it and
    extends the end segments linearly.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2:
        raise ValueError(f"a piecewise-linear fit needs at least 2 points, got {len(x)}")
    knots = np.quantile(x, np.linspace(0, 1, max(2, n_knots)))
    knots = knots + np.arange(len(knots)) * 1e-6 * (np.ptp(x) + 1.0)
    inner = knots[1:-1]
    basis = np.column_stack([np.ones_like(x), x, *[np.maximum(x - k, 0) for k in inner]])
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    at = np.column_stack([np.ones_like(knots), knots, *[np.maximum(knots - k, 0) for k in inner]])
    return knots, at @ coef


def piecewise_linear(x: torch.Tensor, knots: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Evaluate the map from :func:`fit_piecewise_linear` (linear beyond the end knots)."""
    knots, values = knots.to(x), values.to(x)
    segment = torch.searchsorted(knots.contiguous(), x.contiguous()).clamp(1, len(knots) - 1)
    x0, x1 = knots[segment - 1], knots[segment]
    y0, y1 = values[segment - 1], values[segment]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0).clamp(min=1e-12)
