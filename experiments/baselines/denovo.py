"""deepnovo baseline: the training peptide whose mass is nearest the precursor.

A lookup, not a model: it can only be right by sharing prefix or suffix masses with the true
peptide (the split is peptide-disjoint), so it shows how much of the network's amino-acid recall
comes from learning fragment ladders rather than from the mass and composition of tryptic peptides.
By default every spectrum gets its nearest peptide (the training set rarely holds one within
20 ppm); with ``tolerance_ppm`` set, peptides outside it leave the spectrum unsequenced, as the
beam search does. Scores fall with the mass error, for the precision-coverage curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepms.chem.peptide import PROTON
from deepms.metrics.denovo import denovo_metrics


def nearest_mass_peptide(datamodule: Any, tolerance_ppm: float | None = None) -> dict[str, float]:
    """Casanovo-style ``test_*`` metrics of the nearest-mass training peptide."""
    vocab = datamodule.vocab
    train = datamodule.datasets["train"].samples
    tokens = {}
    for sample in train:
        tokens.setdefault(sample.peptide.monoisotopic_mass, vocab.label_tokens(sample.peptide))
    masses = np.array(sorted(tokens))
    preds, trues, scores = [], [], []
    for sample in datamodule.datasets["test"].samples:
        observed = (sample.precursor_mz - PROTON) * sample.charge
        i = int(np.clip(np.searchsorted(masses, observed), 1, len(masses) - 1))
        nearest = min(masses[i - 1], masses[i], key=lambda m: abs(m - observed))
        ppm = abs(nearest - observed) / observed * 1e6
        trues.append(vocab.label_tokens(sample.peptide))
        inside = tolerance_ppm is None or ppm <= tolerance_ppm
        preds.append(tokens[nearest] if inside else None)
        scores.append(-ppm if inside else -np.inf)
    metrics = denovo_metrics(preds, trues, scores, vocab.aa_masses, equate_il=vocab.equate_il)
    return {f"test_{k}": float(v) for k, v in metrics.items()}
