"""Matcher at the tolerance edges (ppm, RT span, charge), one-to-one greedy, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepms.tasks.deepiso.matching import (
    evaluate_features,
    match_features,
    quantification_error,
    reproducibility,
)

TRUTH_MZ = 600.0


def _truth(**extra: object) -> pd.DataFrame:
    row = {"feature_id": 0, "mono_mz": TRUTH_MZ, "charge": 2, "rt_apex": 100.0}
    row.update({"summed_intensity": 1e6, **extra})
    return pd.DataFrame([row])


def _detected(
    ppm: float = 0.0, charge: int = 2, span: tuple[float, float] = (90.0, 110.0)
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mz": [TRUTH_MZ * (1 + ppm * 1e-6)],
            "charge": [charge],
            "rt_start": [span[0]],
            "rt_apex": [(span[0] + span[1]) / 2],
            "rt_end": [span[1]],
            "intensity_sum": [2e6],
        }
    )


@pytest.mark.parametrize(
    ("ppm", "matched"), [(9.9, True), (-9.9, True), (10.1, False), (-10.1, False)]
)
def test_ppm_edge(ppm: float, matched: bool) -> None:
    pairs = match_features(_detected(ppm=ppm), _truth())
    assert (len(pairs) == 1) is matched
    if matched:
        assert pairs["ppm_error"][0] == pytest.approx(ppm, abs=1e-6)


@pytest.mark.parametrize(
    ("span", "matched"),
    [
        ((99.99, 120.0), True),  # apex just inside
        ((100.0, 120.0), True),  # apex on the boundary (inclusive)
        ((80.0, 100.0), True),
        ((100.01, 120.0), False),  # apex just before the span
        ((80.0, 99.99), False),  # apex just after it
    ],
)
def test_apex_inside_span_edge(span: tuple[float, float], matched: bool) -> None:
    assert (len(match_features(_detected(span=span), _truth())) == 1) is matched


def test_wrong_charge_does_not_match() -> None:
    assert match_features(_detected(charge=3), _truth()).empty


def test_one_to_one_greedy_by_mz_error() -> None:
    detected = pd.concat([_detected(ppm=4.0), _detected(ppm=-1.0), _detected(ppm=8.0)])
    truth = pd.concat([_truth(), _truth(mono_mz=TRUTH_MZ * (1 + 7e-6))], ignore_index=True)
    pairs = match_features(detected.reset_index(drop=True), truth)
    # -1 ppm takes truth 0 first (smallest error), 8 ppm is 1 ppm from truth 1, 4 ppm is left over
    assert sorted(zip(pairs["detected_index"], pairs["truth_index"], strict=True)) == [
        (1, 0),
        (2, 1),
    ]
    result = evaluate_features(detected.reset_index(drop=True), truth)
    assert result.true_positives == 2 and result.precision == pytest.approx(2 / 3)
    assert result.recall == 1.0 and result.f1 == pytest.approx(0.8)


def test_quantification_error_ignores_global_scale() -> None:
    truth = np.array([1e5, 1e6, 1e7, 3e4])
    assert quantification_error(truth * 3.7, truth) == (pytest.approx(0.0), pytest.approx(0.0))
    mae, _ = quantification_error(truth * np.array([1, 1, 2, 1]), truth)
    assert mae == pytest.approx(0.0)  # median of |0,0,1,0| after centring on 0
    assert np.isnan(quantification_error(np.array([0.0]), np.array([1.0]))[0])


def test_empty_inputs_give_zero_scores() -> None:
    empty = _detected().iloc[:0]
    result = evaluate_features(empty, _truth())
    assert result.true_positives == 0 and result.precision == 0 and result.recall == 0
    assert result.as_dict()["n_truth"] == 1.0


def _run(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mz": rng.uniform(400, 1200, n),
            "charge": rng.integers(1, 5, n),
            "rt_apex": rng.uniform(2000, 4000, n),
            "intensity_sum": 10 ** rng.uniform(4, 8, n),
        }
    )


def test_reproducibility_after_linear_rt_alignment() -> None:
    rng = np.random.default_rng(0)
    a = _run(rng, 400)
    b = a.copy()
    b["rt_apex"] = 1.01 * a["rt_apex"] + 40.0 + rng.normal(0, 2.0, len(a))
    b["mz"] = a["mz"] * (1 + rng.normal(0, 2e-6, len(a)))
    b = pd.concat([b.iloc[:300], _run(rng, 150)], ignore_index=True)  # 100 lost, 150 new
    result = reproducibility(a, b)
    assert result["rt_slope"] == pytest.approx(1.01, abs=2e-3)
    assert result["rt_intercept"] == pytest.approx(40.0, abs=6.0)
    assert result["reproducibility"] == pytest.approx(0.75, abs=0.02)
    unaligned = reproducibility(a, b, rt_shift_fit="none")
    assert unaligned["reproducibility"] < 0.2
    with pytest.raises(ValueError, match="rt_shift_fit"):
        reproducibility(a, b, rt_shift_fit="loess")
