"""deeprt baseline: ridge regression of RT on residue composition, modifications and length.

Composition models are the classic RT predictors (SSRCalc-style retention coefficients); the gap
between this and the network is what sequence order and context add.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from deepms.metrics import regression_metrics

RESIDUES = "ACDEFGHIKLMNPQRSTVWY"


def score_rt(predicted: Sequence[float], observed: Sequence[float], rt_unit: str) -> dict:
    """``test_*`` RT metrics exactly as the deeprt model logs them (relative MAE of the range
    for iRT, of the latest elution otherwise)."""
    reference = "range" if rt_unit == "irt" else "max"
    preds = torch.as_tensor(np.array(predicted, dtype=np.float64))
    target = torch.as_tensor(np.array(observed, dtype=np.float64))
    scores = {}
    for name, metric in regression_metrics(reference).items():
        metric.update(preds, target)
        scores[f"test_{name}"] = float(metric.compute())
    return scores


def composition(samples: Sequence[Any], modifications: Sequence[str]) -> np.ndarray:
    """Per peptide: counts of the 20 residues, of each modification name, length, log length."""
    residue_index = {aa: i for i, aa in enumerate(RESIDUES)}
    mod_index = {name: len(RESIDUES) + i for i, name in enumerate(modifications)}
    features = np.zeros((len(samples), len(RESIDUES) + len(modifications) + 2))
    for row, sample in enumerate(samples):
        peptide = sample.peptide
        for aa in peptide.sequence:
            features[row, residue_index[aa]] += 1
        for mod in peptide.mods:
            if mod is not None and mod.name in mod_index:
                features[row, mod_index[mod.name]] += 1
        features[row, -2:] = len(peptide.sequence), np.log(len(peptide.sequence))
    return features


def ridge_composition(datamodule: Any) -> dict[str, float]:
    """Ridge (alpha chosen by efficient leave-one-out CV) on scaled composition features."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = datamodule.datasets["train"].samples
    test = datamodule.datasets["test"].samples
    mods = sorted({m.name for s in train for m in s.peptide.mods if m is not None})
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    model.fit(composition(train, mods), [s.rt for s in train])
    predicted = model.predict(composition(test, mods))
    return score_rt(predicted, [s.rt for s in test], datamodule.rt_unit)
