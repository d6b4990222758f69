"""grouped_split: deterministic, group-pure, approximately the requested fractions."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.datasets import group_uniform, grouped_split


def test_groups_never_cross_and_fractions_met() -> None:
    groups = [f"PEPTIDE{i % 5000}" for i in range(20000)]  # 5000 groups, 4 items each
    labels = grouped_split(groups, fractions=(0.8, 0.1, 0.1), seed=1)
    assert labels.shape == (20000,)
    by_group: dict[str, set[str]] = {}
    for g, label in zip(groups, labels, strict=True):
        by_group.setdefault(g, set()).add(str(label))
    assert all(len(s) == 1 for s in by_group.values())
    counts = {name: float(np.mean(labels == name)) for name in ("train", "val", "test")}
    assert counts["train"] == pytest.approx(0.8, abs=0.02)
    assert counts["val"] == pytest.approx(0.1, abs=0.015)
    assert counts["test"] == pytest.approx(0.1, abs=0.015)


def test_deterministic_and_order_independent() -> None:
    groups = [f"G{i}" for i in range(1000)]
    a = grouped_split(groups, seed=3)
    b = grouped_split(list(reversed(groups)), seed=3)[::-1]
    np.testing.assert_array_equal(a, b)
    # adding groups does not move existing ones
    c = grouped_split([*groups, "NEW1", "NEW2"], seed=3)[:1000]
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, grouped_split(groups, seed=4))


def test_known_assignment() -> None:
    # frozen: blake2b("0:PEPTIDE") -> 0.6034...; a group's split must never change between versions
    assert group_uniform("PEPTIDE", seed=0) == pytest.approx(0.6034317794576968, abs=1e-15)
    labels = grouped_split(["G0", "G4", "G13", "PEPTIDE"], seed=0)
    assert labels.tolist() == ["train", "val", "test", "train"]


def test_bad_fractions() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        grouped_split(["a"], fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="split names"):
        grouped_split(["a"], fractions=(0.5, 0.5))
    assert grouped_split([]).shape == (0,)


def test_custom_names() -> None:
    labels = grouped_split(["a", "b", "c"], fractions=(1.0, 0.0), names=("fit", "holdout"))
    assert labels.tolist() == ["fit", "fit", "fit"]
