"""Target-decoy q-values, p-values, pi0 and PEP on hand-made score lists (values by hand below)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepms.metrics.fdr import (
    best_per_group,
    decoy_pvalues,
    error_rates,
    identifications_at,
    pep_lfdr,
    pi0_storey,
    storey_qvalues,
    tdc_qvalues,
)

# scores high to low, T = target, D = decoy
SCORES = [10, 9, 8, 7, 6, 5, 4, 3]
DECOY = [False, False, True, False, False, True, False, True]


def test_tdc_qvalues_by_hand() -> None:
    # threshold:   10   9    8    7    6    5    4    3
    # targets>=:    1   2    2    3    4    4    5    5
    # decoys>=:     0   0    1    1    1    2    2    3
    # D/T:          0   0   .5  1/3  .25   .5   .4   .6
    # min below:    0   0  .25  .25  .25   .4   .4   .6
    q = tdc_qvalues(SCORES, DECOY)
    assert q == pytest.approx([0, 0, 0.25, 0.25, 0.25, 0.4, 0.4, 0.6])
    assert identifications_at(q, 0.01, DECOY) == 2
    assert identifications_at(q, 0.25, DECOY) == 4  # 10, 9, 7, 6


def test_tdc_plus_one_by_hand() -> None:
    # (D+1)/T:      1  .5    1  2/3   .5  .75   .6   .8
    # min below:   .5  .5   .5   .5   .5   .6   .6   .8
    q = tdc_qvalues(SCORES, DECOY, plus_one=True)
    assert q == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.6, 0.8])


def test_tdc_ties_pass_together() -> None:
    # the target tied with a decoy at 5 cannot pass alone: block {5 T, 5 D}: 1/1; at 4: 1/2
    q = tdc_qvalues([5, 5, 4], [False, True, False])
    assert q == pytest.approx([0.5, 0.5, 0.5])


def test_tdc_is_monotone_and_order_free() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=500), 1)  # many ties
    decoy = rng.random(500) < 0.4
    q = tdc_qvalues(scores, decoy)
    order = np.argsort(-scores, kind="stable")
    assert np.all(np.diff(q[order]) >= -1e-12)  # lower score, never lower q
    perm = rng.permutation(500)
    assert tdc_qvalues(scores[perm], decoy[perm]) == pytest.approx(q[perm])
    assert q.max() <= 1


def test_decoy_pvalues_and_storey_by_hand() -> None:
    # decoys 8, 5, 3; targets 10, 9, 7, 6, 4: decoys >= score 0, 0, 1, 1, 2 of 3
    # -> p = 1/3 (floored), 1/3, 1/3, 1/3, 2/3
    s, d = np.array(SCORES), np.array(DECOY)
    p = decoy_pvalues(s[~d], s[d])
    assert p == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1 / 3, 2 / 3])
    # Storey, m = 5, tied p share the largest rank (4): q = pi0 * 5 * (1/3) / 4, pi0 * 5 * (2/3) / 5
    assert storey_qvalues(p, 1.0) == pytest.approx([5 / 12] * 4 + [2 / 3])
    assert storey_qvalues(p, 0.5) == pytest.approx([5 / 24] * 4 + [1 / 3])


P = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.55, 0.65, 0.75, 0.85]


def test_pi0_single_lambda_by_hand() -> None:
    # 4 of 10 p-values >= 0.5: pi0 = 0.4 / (1 - 0.5) = 0.8
    assert pi0_storey(P, [0.5]) == pytest.approx(0.8)
    assert pi0_storey([0.9] * 10, [0.5]) == 1.0  # capped


def test_pi0_bootstrap_by_hand() -> None:
    # lambdas .1 .2 .3 .4: W = 4 each; pi0 = .4/.9, .4/.8, .4/.7, .4/.6 = .444 .5 .571 .667
    # minpi0 = 10th percentile = .444 + .3 (.5 - .444) = .4611
    # mse = 4 (1 - .4) / (100 (1 - l)^2) + (pi0 - minpi0)^2 = .0299, .0390, .0502, .0708
    # -> the first: pi0 = 4/9
    assert pi0_storey(P, [0.1, 0.2, 0.3, 0.4]) == pytest.approx(4 / 9)


def test_pi0_default_grid_uniform_is_near_one() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(5000)
    assert pi0_storey(p) == pytest.approx(1.0, abs=0.06)
    assert pi0_storey(p, method="smoother") == pytest.approx(1.0, abs=0.08)
    mixed = np.r_[rng.random(3000), rng.random(2000) * 1e-3]  # 60 % null
    assert pi0_storey(mixed) == pytest.approx(0.6, abs=0.05)


def test_pep_is_bounded_and_monotone() -> None:
    rng = np.random.default_rng(2)
    p = np.r_[rng.random(2000), rng.beta(0.2, 20, 1000)]
    pep = pep_lfdr(p, pi0=pi0_storey(p))
    order = np.argsort(p)
    assert np.all((pep >= 0) & (pep <= 1))
    assert np.all(np.diff(pep[order]) >= 0)
    assert pep[order][:100].mean() < 0.2 and pep[order][-100:].mean() > 0.8


def test_error_rates_columns() -> None:
    out, pi0 = error_rates(SCORES, DECOY)
    assert list(out.columns) == ["q_tdc", "p_value", "q_storey", "pep"]
    assert 0 < pi0 <= 1
    targets = ~np.array(DECOY)
    assert out["q_storey"].notna().all() and out.loc[~targets, "pep"].eq(1).all()
    order = np.argsort(-np.array(SCORES))
    assert np.all(np.diff(out["q_storey"].to_numpy()[order]) >= -1e-12)


def test_best_per_group() -> None:
    frame = pd.DataFrame({"g": ["a", "a", "b", "b", "c"], "score": [1.0, 3.0, 2.0, 2.0, 0.5]})
    best = best_per_group(frame, "g")
    assert best.index.tolist() == [1, 2, 4]  # b: tie, the first row
