"""Baselines for the sequence tasks: logistic regression on k-mer composition.

Protein tasks (deeploc, rbppred) get amino-acid and dipeptide composition plus log length (the
features of the pre-deep-learning localisation and RBP predictors); deepbind gets 4-mer
frequencies, summed over both strands for DNA as the model scans both. What the network adds
over these is what motif order and position are worth on the same split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from deepms.metrics import binary_metrics, flatten_metrics, multiclass_metrics


def kmer_frequencies(sequences: Sequence[str], letters: str, k: int) -> np.ndarray:
    """Frequency of every k-mer over ``letters`` per sequence; windows with other letters skip."""
    n = len(letters)
    lookup = np.full(256, -1, dtype=np.int64)
    for i, letter in enumerate(letters):
        lookup[ord(letter)] = lookup[ord(letter.lower())] = i
    out = np.zeros((len(sequences), n**k))
    for row, sequence in enumerate(sequences):
        index = lookup[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]
        if len(index) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(index, k)
        windows = windows[(windows >= 0).all(1)]
        codes = windows @ (n ** np.arange(k - 1, -1, -1))
        out[row] = np.bincount(codes, minlength=n**k) / max(len(codes), 1)
    return out


def _both_strands(
    freqs: np.ndarray, letters: str, complement: dict[str, str], k: int
) -> np.ndarray:
    """Add each k-mer's reverse complement column (strand-symmetric features)."""
    n = len(letters)
    partner = []
    for code in range(n**k):
        digits = [(code // n**p) % n for p in range(k - 1, -1, -1)]
        rc = [letters.index(complement[letters[d]]) for d in reversed(digits)]
        partner.append(sum(d * n**p for d, p in zip(rc, range(k - 1, -1, -1), strict=True)))
    return freqs + freqs[:, partner]


def features(dataset: Any, k: int) -> np.ndarray:
    """k-mer frequencies (protein: 1-mers and 2-mers when k=2) and log length per sequence."""
    alphabet = dataset.encoder.alphabet
    sequences = dataset.sequences
    if alphabet.name == "protein":
        parts = [kmer_frequencies(sequences, alphabet.letters, j) for j in range(1, k + 1)]
    else:
        letters = alphabet.letters
        swap = str.maketrans("U", "T") if "T" in letters else str.maketrans("T", "U")
        seqs = [s.upper().translate(swap) for s in sequences]
        parts = [kmer_frequencies(seqs, letters, k)]
        if alphabet.name == "dna" and alphabet.complement:
            parts = [_both_strands(parts[0], letters, alphabet.complement, k)]
    lengths = np.log1p([len(s) for s in sequences])[:, None]
    return np.hstack([*parts, lengths])


def _classifier(class_weight: str | None) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight=class_weight)
    )


def binary_logreg(datamodule: Any, k: int = 2, class_weight: str | None = None) -> dict:
    """Bound/unbound or RBP/non-RBP: ``test_acc``, ``_mcc``, ``_auroc``... as the models log."""
    train, test = datamodule.datasets["train"], datamodule.datasets["test"]
    model = _classifier(class_weight).fit(features(train, k), train.targets["label"])
    probs = torch.as_tensor(model.predict_proba(features(test, k))[:, 1])
    metrics = binary_metrics()
    metrics.update(probs, torch.as_tensor(test.targets["label"]).long())
    return flatten_metrics(metrics.compute(), "test")


def deeploc_logreg(datamodule: Any, k: int = 2, class_weight: str | None = None) -> dict:
    """Ten-class location and membrane (``-U`` left out) on each test set, DeepLoc's names."""
    train = datamodule.datasets["train"]
    x_train = features(train, k)
    location = _classifier(class_weight).fit(x_train, train.targets["location"])
    known = train.targets["membrane"] >= 0  # SCL2205 has no membrane flag at all
    membrane = None
    if len(set(train.targets["membrane"][known].tolist())) == 2:
        membrane = _classifier(None).fit(x_train[known], train.targets["membrane"][known])
    classes = datamodule.model_kwargs()["classes"]
    scores: dict[str, float] = {}
    for part in datamodule.test_parts:
        test = datamodule.datasets[part]
        prefix = "test" if part == "test" else f"test_{part}"
        x_test = features(test, k)
        probs = np.zeros((len(test), len(classes)))
        probs[:, location.classes_] = location.predict_proba(x_test)
        metrics = multiclass_metrics(len(classes))
        metrics.update(torch.as_tensor(probs), torch.as_tensor(test.targets["location"]).long())
        scores.update(flatten_metrics(metrics.compute(), prefix, classes))
        target = torch.as_tensor(test.targets["membrane"]).long()
        if membrane is not None and (target >= 0).any():
            binary = binary_metrics(ignore_index=-1)
            binary.update(torch.as_tensor(membrane.predict_proba(x_test)[:, 1]), target)
            scores.update(flatten_metrics(binary.compute(), f"{prefix}_membrane"))
    return scores
