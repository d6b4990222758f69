"""Cross-fitting folds and the entrapment split keep a target and its decoy together."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.tasks.dia.data import DiaConfigError, crossfit_folds, standardise
from deepms.tasks.dia.entrapment import entrapment_fdp, split_entrapment
from tests.tasks.dia.synthetic import SCORES, peak_groups


def test_folds_keep_pairs_together_and_are_balanced() -> None:
    frame = peak_groups(90)
    folds = crossfit_folds(frame["pair_id"], 3, seed=7)
    assert frame.assign(fold=folds).groupby("pair_id")["fold"].nunique().eq(1).all()
    per_pair = frame.assign(fold=folds).drop_duplicates("pair_id")["fold"].value_counts()
    assert sorted(per_pair.tolist()) == [30, 30, 30]
    assert np.array_equal(folds, crossfit_folds(frame["pair_id"], 3, seed=7))  # seeded
    with pytest.raises(DiaConfigError):
        crossfit_folds(frame["pair_id"], 1, seed=0)


def test_entrapment_takes_whole_decoy_pairs() -> None:
    frame = peak_groups(100)
    out = split_entrapment(frame, 0.5, seed=3)
    assert not out["entrapment"][~frame["decoy"]].any()  # only decoys become entrapment
    flagged = out[out["entrapment"]]
    assert not flagged["decoy"].any()  # the pipeline sees them as targets
    assert flagged["pair_id"].nunique() == 50
    by_pair = out[frame["decoy"]].groupby("pair_id")["entrapment"].nunique()
    assert by_pair.eq(1).all()  # all peak groups of one decoy precursor go the same way
    assert out["decoy"].sum() + out["entrapment"].sum() == frame["decoy"].sum()


def test_entrapment_fdp_by_hand() -> None:
    # 2 entrapments and 18 real targets accepted; 100 real and 50 entrapment units; pi0 0.2:
    # fdp = (2 + 2 * 0.2 * 100 / 50) / 20 = 0.14; upper (pi0 1) = (2 + 4) / 20; lower 2 / 20
    fdp = entrapment_fdp([True] * 2 + [False] * 18, 100, 50, 0.2)
    assert fdp == pytest.approx({"fdp": 0.14, "fdp_upper": 0.3, "fdp_lower": 0.1})


def test_standardise_uses_given_statistics() -> None:
    frame = peak_groups(10)
    mean = frame[list(SCORES)].mean().tolist()
    std = frame[list(SCORES)].std(ddof=0).tolist()
    z = standardise(frame, SCORES, mean, std)
    assert z.dtype == np.float32 and np.allclose(z.mean(0), 0, atol=1e-5)
