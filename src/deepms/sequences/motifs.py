"""Read learned motifs out of convolutional filters, the way DeepBind's figures do.

For each filter, the window of each sequence where the filter responds most is taken if the
response reaches ``min_fraction`` of the filter's strongest response over all sequences; the letters
of those windows, counted per position, give a position probability matrix (a sequence logo).
"""

from __future__ import annotations

import numpy as np


def filter_motifs(
    activations: np.ndarray,
    onehot: np.ndarray,
    width: int,
    min_fraction: float = 0.5,
    pseudocount: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Position probability matrices [F, width, A] and the number of windows each one used.

    ``activations``: [N, F, W] filter responses, window ``w`` covering ``onehot[:, w : w + width]``;
    ``onehot``: [N, W + width - 1, A] the (padded) input the filters saw.
    """
    filters = activations.shape[1]
    best = activations.argmax(-1)  # [N, F]
    peak = activations.max(-1)  # [N, F]
    ceiling = peak.max(0)  # [F]
    letters = onehot.shape[-1]
    counts = np.full((filters, width, letters), pseudocount, dtype=np.float64)
    used = np.zeros(filters, dtype=np.int64)
    offsets = np.arange(width)
    for f in range(filters):
        rows = np.flatnonzero((peak[:, f] > 0) & (peak[:, f] >= min_fraction * ceiling[f]))
        if len(rows):
            windows = onehot[rows[:, None], best[rows, f][:, None] + offsets[None]]  # [k, w, A]
            counts[f] += windows.sum(0)
        used[f] = len(rows)
    return counts / counts.sum(-1, keepdims=True), used
