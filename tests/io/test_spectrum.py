"""Spectrum/AnnotatedSpectrum invariants that downstream code relies on."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.chem import Peptide
from deepms.io import AnnotatedSpectrum, Spectrum


def test_peaks_sorted_with_annotations() -> None:
    s = Spectrum("a", [3.0, 1.0, 2.0], [30, 10, 20], metadata={"annotations": ["c", "a", "b"]})
    np.testing.assert_array_equal(s.mz, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(s.intensity, [10, 20, 30])
    assert s.metadata["annotations"] == ["a", "b", "c"]
    assert s.mz.dtype == np.float64 and s.intensity.dtype == np.float32


def test_length_mismatches_rejected() -> None:
    with pytest.raises(ValueError, match="2 m/z values but 1 intensities"):
        Spectrum("a", [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="1 annotations for 2 peaks"):
        Spectrum("a", [1.0, 2.0], [1.0, 2.0], metadata={"annotations": ["x"]})


def test_annotated_shape_checked() -> None:
    peptide = Peptide.unmodified("PEPTIDE")
    ok = AnnotatedSpectrum("a", peptide, 2, np.zeros((6, 2, 3)))
    assert ok.intensities.dtype == np.float32
    with pytest.raises(ValueError, match=r"expected \(6, 2, 3\)"):
        AnnotatedSpectrum("a", peptide, 2, np.zeros((7, 2, 3)))
