"""assess(): one table for every row, counts of real targets only, per-fold calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepms.tasks.dia.scoring import assess, calibrate_by_fold, step_lookup


def frame() -> pd.DataFrame:
    # groups: t1 (2 peak groups), t2, t3, e1 (entrapment), d1, d2 (decoys); one run
    return pd.DataFrame(
        {
            "feature_id": list("abcdefgh"),
            "group_id": ["t1", "t1", "t2", "t3", "e1", "d1", "d2", "d2"],
            "precursor_id": ["t1", "t1", "t2", "t3", "e1", "d1", "d2", "d2"],
            "pair_id": ["1", "1", "2", "3", "4", "5", "6", "6"],
            "run": "0",
            "peptide": ["P1", "P1", "P2", "P3", "E1", "D1", "D2", "D2"],
            "decoy": [False, False, False, False, False, True, True, True],
            "entrapment": [False, False, False, False, True, False, False, False],
        }
    )


def test_assess_by_hand() -> None:
    scores = [9.0, 1.0, 8.0, 3.0, 7.0, 5.0, 2.0, 0.0]
    table, metrics = assess(frame(), scores, thresholds=(0.01, 0.5))
    # best per group, high to low: t1 9, t2 8, e1 7 (a target to TDC), d1 5, t3 3, d2 2
    # TDC q: t1, t2, e1 -> 0; t3: (1 decoy / 4 targets) = .25; d2 at 2: 2/4 = .5
    assert len(table) == 8 and table["rank"].tolist() == [1, 2, 1, 1, 1, 1, 1, 2]
    assert metrics["precursors_at_1pct"] == 2  # t1, t2: e1 passes but is not counted
    assert metrics["precursors_at_50pct"] == 3
    assert table.loc[table["feature_id"] == "d", "q_precursor"].item() == pytest.approx(0.25)
    # entrapment accepted at 1 %: e1 of {t1, t2, e1}: lower bound 1/3
    assert metrics["entrapment_fdp_lower_at_1pct"] == pytest.approx(1 / 3)
    # a non-best row gets the threshold's values at its score: b (score 1) below d2 (2): q .5
    assert table.loc[table["feature_id"] == "b", "q_precursor"].item() == pytest.approx(0.5)
    assert table.loc[table["decoy"], "pep_precursor"].eq(1).all()


def test_step_lookup() -> None:
    ref = np.array([3.0, 1.0, 2.0])
    values = np.array([0.1, 0.5, 0.3])
    assert step_lookup(ref, values, np.array([3.5, 2.5, 1.0, 0.0])).tolist() == [0.1, 0.3, 0.5, 0.5]


def test_calibration_puts_folds_on_one_scale() -> None:
    rng = np.random.default_rng(0)
    n = 400
    fold = np.repeat([0, 1], n // 2)
    decoy = rng.random(n) < 0.5
    groups = np.arange(n)
    raw = np.where(decoy, rng.normal(0, 1, n), rng.normal(4, 1, n))
    raw[fold == 1] = raw[fold == 1] * 10 + 100  # network 1 on another scale
    calibrated = calibrate_by_fold(raw, decoy, fold, groups, fdr=0.01)
    for k in (0, 1):
        rows = (fold == k) & decoy
        assert np.median(calibrated[rows]) == pytest.approx(-1.0)
