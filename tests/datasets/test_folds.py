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


def test_nested_folds_cut_only_the_outer_training_rows() -> None:
    """Brute force over every outer and inner fold: an inner fit never labels an outer test row,
    each outer non-test row is inner-tested exactly once, and groups stay whole."""
    rng = np.random.default_rng(3)
    groups = [f"p{i // 2}" for i in range(120)]  # two samples per patient
    strata = np.repeat(rng.integers(0, 2, 60), 2)
    outer = {"scheme": "stratified_kfold", "n_splits": 4, "seed": 5, "val_fraction": 0.0}
    for outer_fold in range(4):
        outer_test = (
            fold_labels(CVConfig(**{**outer, "fold": outer_fold}), groups, strata) == "test"
        )
        tested = Counter()
        for inner_fold in range(3):
            cv = CVConfig.from_config(
                {
                    "scheme": "stratified_kfold",
                    "n_splits": 3,
                    "fold": inner_fold,
                    "seed": 9,
                    "within": {**outer, "fold": outer_fold},
                }
            )
            labels = fold_labels(cv, groups, strata)
            assert all(label is None for label in labels[outer_test])
            assert all(label in ("train", "val", "test") for label in labels[~outer_test])
            parts: dict[str, set] = {}
            for group, label in zip(groups, labels, strict=True):
                parts.setdefault(group, set()).add(label)
            assert all(len(p) == 1 for p in parts.values())  # a patient is never split
            tested.update(np.flatnonzero(labels == "test").tolist())
            assert cv.name.startswith("inner_stratified_kfold3_seed9_of_stratified_kfold4")
        assert sorted(tested) == np.flatnonzero(~outer_test).tolist()
        assert set(tested.values()) == {1}


def test_nested_inner_scheme_must_be_k_fold() -> None:
    with pytest.raises(ValueError, match="inner scheme must be a k-fold"):
        CVConfig.from_config(
            {"scheme": "leave_one_group_out", "group_by": "site", "within": {"scheme": "kfold"}}
        )
