"""Calibration of a trained RT model to a new LC system from the user's reference peptides.

A lab's gradient, column and unit differ from every system the model was trained on, but the
elution *order* mostly carries over. Given reference peptides with observed RT (in the user's
unit), :meth:`RTCalibration.fit` learns a map from the model's outputs to that unit:

* ``linear``: ``a * head + b`` on the model's default head;
* ``piecewise``: a continuous piecewise-linear map of the default head (knots at quantiles),
  for a gradient that is not linear in the training system's time;
* ``ridge``: ridge regression over *every* head of a multi-system model (DeepLC 4.5's multihead
  calibration: the new column is explained as a mix of the columns the model knows), then a
  piecewise-linear correction of that mix.

The fitted map is plain numbers (:meth:`to_dict`), written beside the predictions as provenance
and reusable without the reference file. The number of knots shrinks with few references, so
100 peptides do not get a map that follows their noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from deepms.tasks.deeprt.transfer import fit_piecewise_linear, piecewise_linear

METHODS = ("linear", "piecewise", "ridge")
#: reference peptides per knot of a piecewise map (and at least 2 knots: a line)
PEPTIDES_PER_KNOT = 40
RIDGE_ALPHAS = np.logspace(-3, 3, 13)  # candidate penalties (on standardised head outputs)


def _knots_for(n: int, n_knots: int) -> int:
    return int(max(2, min(n_knots, n // PEPTIDES_PER_KNOT)))


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float | None = None) -> tuple[np.ndarray, float]:
    """Ridge on standardised columns (the intercept is not penalised): (weights, intercept).

    ``alpha`` None picks the penalty by leave-one-out error (scikit-learn's RidgeCV): heads of
    one model are strongly correlated, and an unpenalised mix of them follows the references'
    noise with large opposite weights.
    """
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    if alpha is None:
        from sklearn.linear_model import RidgeCV

        fitted = RidgeCV(alphas=RIDGE_ALPHAS).fit(z, y)
        beta, offset = fitted.coef_, float(fitted.intercept_)
    else:
        gram = z.T @ z + alpha * len(y) * np.eye(z.shape[1])
        beta, offset = np.linalg.solve(gram, z.T @ (y - y.mean())), float(y.mean())
    weights = beta / std
    return weights, float(offset - mean @ weights)


@dataclass
class RTCalibration:
    """A fitted map from a model's head outputs ``[n, n_heads]`` to RT in the reference's unit."""

    method: str
    head: int = 0
    weights: list[float] = field(default_factory=list)
    intercept: float = 0.0
    knots: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    n_reference: int = 0
    reference: str = ""
    heads: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # averaged with the model (--average-with)
    fit_mae: float = float("nan")

    @classmethod
    def fit(
        cls,
        outputs: np.ndarray,
        observed: np.ndarray,
        method: str = "ridge",
        head: int = 0,
        n_knots: int = 8,
        alpha: float | None = None,
        **info: Any,
    ) -> RTCalibration:
        """Fit on the reference peptides' head outputs and observed RT."""
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}; use one of {METHODS}")
        x = np.asarray(outputs, np.float64).reshape(len(observed), -1)
        y = np.asarray(observed, np.float64)
        if len(y) < 3:
            raise ValueError(f"calibration needs at least 3 reference peptides, got {len(y)}")
        if not np.isfinite(y).all():
            raise ValueError("calibration: the reference RTs contain missing or infinite values")
        calibration = cls(method, head=head, n_reference=len(y), **info)
        if method == "ridge":
            weights, intercept = ridge_fit(x, y, alpha)
        else:
            slope, intercept = np.polyfit(x[:, head], y, 1)
            weights = np.zeros(x.shape[1])
            weights[head] = slope
        calibration.weights, calibration.intercept = weights.tolist(), float(intercept)
        if method != "linear":
            mixed = x @ weights + intercept
            knots, values = fit_piecewise_linear(mixed, y, _knots_for(len(y), n_knots))
            calibration.knots, calibration.values = knots.tolist(), values.tolist()
        calibration.fit_mae = float(np.abs(calibration.apply(x) - y).mean())
        return calibration

    def apply(self, outputs: np.ndarray) -> np.ndarray:
        """RT in the reference's unit for head outputs ``[n, n_heads]``."""
        x = np.asarray(outputs, np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.weights):
            raise ValueError(
                f"calibration fitted on {len(self.weights)} heads, got outputs of shape {x.shape}"
            )
        mixed = x @ np.asarray(self.weights) + self.intercept
        if not self.knots:
            return mixed
        knots, values = (torch.as_tensor(v, dtype=torch.float64) for v in (self.knots, self.values))
        return piecewise_linear(torch.as_tensor(mixed), knots, values).numpy()

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> RTCalibration:
        return cls(**state)
