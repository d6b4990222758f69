"""Motifs read out of filter responses, logo letter heights, and the plots that show them."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.plots import confusion_matrix_plot, information_content, motif_logos
from deepms.sequences import DNA
from deepms.sequences.motifs import filter_motifs


def test_information_content_in_bits() -> None:
    heights = information_content(np.array([[1, 0, 0, 0], [0.25] * 4, [0.5, 0.5, 0, 0]]))
    assert heights[0].tolist() == pytest.approx([2, 0, 0, 0])  # certain letter: 2 bits
    assert heights[1].sum() == pytest.approx(0)  # uniform: nothing
    assert heights[2].tolist() == pytest.approx([0.5, 0.5, 0, 0])  # 1 bit, shared


def test_filter_motif_counts_the_strongest_windows() -> None:
    sequences = ["TTACGTT", "GACGTAA", "CCCCCCC"]
    onehot = np.stack([DNA.profile(s) for s in sequences])  # [3, 7, 4]
    width = 4
    activations = np.zeros((3, 1, 7 - width + 1))
    activations[0, 0, 1] = 2.0  # TTACGTT -> window 1 = TACG
    activations[1, 0, 1] = 1.5  # GACGTAA -> window 1 = ACGT
    activations[2, 0, 0] = 0.5  # below half of the strongest response: not used
    ppm, used = filter_motifs(activations, onehot, width, pseudocount=0.0)
    assert used.tolist() == [2]
    assert ppm[0, 0].tolist() == [0.5, 0, 0, 0.5]  # T (TACG) and A (ACGT)
    assert ppm[0, 2].tolist() == [0, 0.5, 0.5, 0]  # C and G


def test_plots_render() -> None:
    import matplotlib.pyplot as plt

    confusion = confusion_matrix_plot(np.array([[5, 1], [2, 3]]), ["a", "b"], "t")
    logos = motif_logos([np.full((6, 4), 0.25), np.eye(4)], "ACGT", ["flat", "sharp"])
    assert len(confusion.axes) == 2 and len(logos.axes) == 2
    assert len(logos.axes[1].patches) == 4  # one glyph per informative position
    plt.close("all")
