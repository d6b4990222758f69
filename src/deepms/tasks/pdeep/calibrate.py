"""Collision-energy calibration: the NCE at which a model best explains a user's identified spectra.

Why: an instrument's nominal NCE is not the training data's (instruments and vendors differ in
how they set it, and some sources record none). Prosit and AlphaPeptDeep calibrate the NCE to a
user's run from a few hundred identified spectra before predicting a library; so does
``deepms predict MODEL --calibrate-ce identified.mgf``. The model predicts every identified
spectrum at each NCE of a grid; the NCE with the highest median Pearson correlation against the
observed b/y intensities (annotated as in training) is kept, and the library is predicted at it.
The whole curve goes into the output's provenance (``<output>.calibration.json``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepms.tasks.pdeep.data import MAX_CHARGE, Sample, make_sample, record_targets

DEFAULT_GRID = tuple(float(x) for x in range(18, 43, 1))


@dataclass
class Calibration:
    """What calibration chose and why (written beside the output)."""

    source: str
    n_spectra: int
    n_unusable: int
    nce: float
    median_pcc: float
    median_pcc_unknown_nce: float  # the model with the NCE flagged unknown (no calibration)
    curve: dict[str, float]  # NCE -> median PCC

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_identified(
    path: str | os.PathLike[str],
    fragment_charges: Sequence[int],
    tolerance: float = 20.0,
    unit: str = "ppm",
    limit: int | None = None,
    reject: Callable[[str, str], None] | str = "raise",
    encoder: Any = None,
) -> tuple[list[Sample], int]:
    """(samples, unusable count) from an MGF whose spectra carry ``SEQ=`` and ``CHARGE=``.

    Spectra without a label, a charge or any annotated b/y ion, or (given the model's
    ``encoder``) with a modification the model cannot encode, are counted as unusable: a
    calibration set is a sample of the run, and they are not errors. Bad records go to
    ``reject``."""
    from deepms.io import read_mgf

    samples: list[Sample] = []
    unusable = 0
    for spectrum in read_mgf(path, require_charge=False, on_error=reject):
        if spectrum.peptide is None or not spectrum.precursor_charge:
            unusable += 1
            continue
        if encoder is not None:
            try:
                encoder.encode(spectrum.peptide)
            except ValueError:
                unusable += 1
                continue
        raw = record_targets(spectrum, fragment_charges, tolerance, unit)
        sample = make_sample(spectrum, raw, fragment_charges, 0, {})
        if sample is None:
            unusable += 1
            continue
        samples.append(sample)
        if limit is not None and len(samples) >= limit:
            break
    if not samples:
        raise ValueError(
            f"{path}: no identified spectrum with an annotated b/y ion to calibrate on"
        )
    return samples, unusable


def with_nce(meta: np.ndarray, nce: float | None) -> np.ndarray:
    """Acquisition features with the NCE set (``None``: flagged unknown, as for a source that
    records none)."""
    out = meta.copy()
    out[..., MAX_CHARGE] = 0.0 if nce is None else nce / 100.0
    out[..., MAX_CHARGE + 1] = 0.0 if nce is None else 1.0
    return out


def spectrum_pcc(predictor: Any, samples: Sequence[Sample], nce: float | None) -> np.ndarray:
    """Per-spectrum Pearson correlation of the model's prediction at ``nce`` with the observed
    intensities, over the ions training scores (the sample's mask)."""
    import torch

    from deepms.metrics.spectrum import masked_pearson

    peptides = [s.peptide for s in samples]
    meta = with_nce(np.stack([s.meta for s in samples]), nce)

    def run(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred = predictor._forward(predictor._encode(peptides, meta, rows))  # [B, bonds, channels]
        target, mask = np.zeros_like(pred), np.zeros(pred.shape, dtype=bool)
        for i, r in enumerate(rows):  # pad targets to the batch's bonds; padding stays masked
            n = len(samples[r].target)
            target[i, :n], mask[i, :n] = samples[r].target, samples[r].mask
        flat = [torch.from_numpy(a.reshape(len(rows), -1)) for a in (pred, target, mask)]
        return rows, masked_pearson(*flat).numpy()

    parts = predictor._batched([len(p.sequence) for p in peptides], run)
    return predictor._in_input_order(parts, len(samples), np.float64)


def calibrate(
    predictor: Any,
    samples: Sequence[Sample],
    source: str,
    grid: Sequence[float] = DEFAULT_GRID,
    n_unusable: int = 0,
) -> Calibration:
    """The grid NCE with the highest median PCC (ties: the lowest NCE)."""
    curve = {f"{nce:g}": float(np.median(spectrum_pcc(predictor, samples, nce))) for nce in grid}
    best = max(curve, key=lambda k: (curve[k], -float(k)))
    unknown = float(np.median(spectrum_pcc(predictor, samples, None)))
    return Calibration(
        source=str(Path(source)),
        n_spectra=len(samples),
        n_unusable=n_unusable,
        nce=float(best),
        median_pcc=curve[best],
        median_pcc_unknown_nce=unknown,
        curve=curve,
    )
