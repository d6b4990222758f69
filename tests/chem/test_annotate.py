"""Peak annotation: inclusive tolerance edge (ppm and Da), most intense peak wins, losses."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.chem import annotate, fragment_mz, match_peaks

PEPTIDE = "PEPM[Oxidation]K"
Y1 = 128.09496 + 18.010565 + 1.007276  # 147.112801, hand-computed
B2 = 97.05276 + 129.04259 + 1.007276  # 227.102626


def test_exact_peaks_are_found_at_hand_computed_mz() -> None:
    out = annotate(PEPTIDE, np.array([Y1, B2]), np.array([5.0, 7.0]), tolerance=10, unit="ppm")
    assert out.dtype == np.float32 and out.shape == (4, 2, 2, 1)
    assert out[3, 1, 0, 0] == 5.0  # y1+
    assert out[1, 0, 0, 0] == 7.0  # b2+
    assert out.sum() == 12.0


@pytest.mark.parametrize("tol", [5.0, 20.0])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_ppm_edge_inclusive(tol: float, sign: float) -> None:
    theo = fragment_mz(PEPTIDE)[3, 1, 0, 0]
    at_edge = theo * (1 + sign * tol * 1e-6)
    beyond = theo * (1 + sign * tol * 1.01 * 1e-6)
    hit = annotate(PEPTIDE, np.array([at_edge]), np.array([3.0]), tolerance=tol, unit="ppm")
    miss = annotate(PEPTIDE, np.array([beyond]), np.array([3.0]), tolerance=tol, unit="ppm")
    assert hit[3, 1, 0, 0] == 3.0
    assert miss[3, 1, 0, 0] == 0.0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_da_edge_inclusive(sign: float) -> None:
    theo = fragment_mz(PEPTIDE)[1, 0, 0, 0]
    tol = 0.02
    hit = annotate(PEPTIDE, np.array([theo + sign * tol]), np.array([4.0]), tol, unit="Da")
    miss = annotate(PEPTIDE, np.array([theo + sign * tol * 1.01]), np.array([4.0]), tol, unit="Da")
    assert hit[1, 0, 0, 0] == 4.0
    assert miss[1, 0, 0, 0] == 0.0


def test_most_intense_peak_in_window_wins_even_if_unsorted() -> None:
    mz = np.array([Y1 + 0.005, Y1 - 0.004, 500.0, Y1, Y1 + 0.5])
    intensity = np.array([10.0, 30.0, 99.0, 20.0, 1000.0])
    out = annotate(PEPTIDE, mz, intensity, tolerance=0.01, unit="Da")
    assert out[3, 1, 0, 0] == 30.0
    values, index = match_peaks(np.array([Y1, 1000.0]), mz, intensity, 0.01, "Da")
    assert values.tolist() == [30.0, 0.0]
    assert index.tolist() == [1, -1]  # index into the caller's (unsorted) arrays


def test_neutral_loss_peaks() -> None:
    b2_h2o = B2 - 18.010565  # 209.092061
    y1_nh3 = Y1 - 17.026549  # 130.086252
    out = annotate(
        PEPTIDE,
        np.array([y1_nh3, b2_h2o]),
        np.array([2.0, 6.0]),
        tolerance=20,
        losses=(None, "H2O", "NH3"),
    )
    assert out.shape == (4, 2, 2, 3)
    assert out[1, 0, 0, 1] == 6.0
    assert out[3, 1, 0, 2] == 2.0
    assert out[..., 0].sum() == 0.0


def test_empty_spectrum_and_bad_unit() -> None:
    out = annotate(PEPTIDE, np.array([]), np.array([]))
    assert out.shape == (4, 2, 2, 1) and not out.any()
    with pytest.raises(ValueError, match="unit"):
        annotate(PEPTIDE, np.array([Y1]), np.array([1.0]), unit="mmu")
    with pytest.raises(ValueError, match="equal length"):
        annotate(PEPTIDE, np.array([Y1, B2]), np.array([1.0]))
