"""Cross-validation folds: every sample tested once, groups never straddle parts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from deepms.datasets.folds import CVConfig, fold_labels, n_folds

GROUPS = [f"P{i // 2}" for i in range(40)]  # 20 peptides, two spectra each


def _parts_by_group(labels: np.ndarray) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for group, label in zip(GROUPS, labels, strict=True):
        seen.setdefault(group, set()).add(str(label))
    return seen


@pytest.mark.parametrize("scheme", ["kfold", "stratified_kfold"])
def test_each_sample_is_tested_exactly_once_and_groups_stay_whole(scheme: str) -> None:
    strata = [i % 2 for i in range(20) for _ in range(2)]  # class per peptide
    tested = np.zeros(len(GROUPS), dtype=int)
    for fold in range(4):
        cv = CVConfig(scheme=scheme, n_splits=4, fold=fold, seed=3)
        labels = fold_labels(cv, GROUPS, strata)
        tested += labels == "test"
        assert all(len(parts) == 1 for parts in _parts_by_group(labels).values())
        assert {"train", "val", "test"} == set(labels)
    assert tested.tolist() == [1] * len(GROUPS)


def test_kfold_deals_groups_evenly() -> None:
    sizes = [
        int((fold_labels(CVConfig(n_splits=4, fold=k, val_fraction=0.0), GROUPS) == "test").sum())
        for k in range(4)
    ]
    assert sizes == [10, 10, 10, 10]  # 20 groups dealt round-robin: 5 groups x 2 spectra


def test_leave_one_group_out_holds_out_each_site() -> None:
    sites = ["berlin"] * 16 + ["kiel"] * 10 + ["sweden"] * 14
    cv = CVConfig(scheme="leave_one_group_out", group_by="site", fold=1)
    assert n_folds(cv, sites) == 3
    labels = fold_labels(cv, GROUPS, group_columns={"site": sites})
    assert Counter(label for label, site in zip(labels, sites, strict=True) if site == "kiel") == {
        "test": 10
    }
    others = {label for label, site in zip(labels, sites, strict=True) if site != "kiel"}
    assert "test" not in others


def test_a_small_fold_still_gets_one_validation_group() -> None:
    groups = list("ABCDEFGH")  # 10 % of 5 or 6 training groups rounds to none by chance
    for fold in range(3):
        labels = fold_labels(CVConfig(n_splits=3, fold=fold, val_fraction=0.1, seed=1), groups)
        assert Counter(labels)["val"] >= 1


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"cv\.group_by"):
        CVConfig.from_config({"scheme": "leave_one_group_out"})
    with pytest.raises(ValueError, match=r"folds 0\.\.3"):
        fold_labels(CVConfig(n_splits=4, fold=4), GROUPS)
    with pytest.raises(ValueError, match="class labels"):
        fold_labels(CVConfig(scheme="stratified_kfold", n_splits=2), GROUPS)
