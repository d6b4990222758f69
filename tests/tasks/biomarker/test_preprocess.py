"""The in-fold preprocessor: statistics from the rows it is fitted on, and nothing else."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepms.tasks.biomarker.preprocess import Preprocessor

NAMES = ["A", "B", "C"]
# A: observed 2, 8 (log2: 1, 3); B: missing in 2 of 3 rows; C: 4, 16, 64 (log2: 2, 4, 6)
TRAIN = np.array([[2.0, np.nan, 4.0], [8.0, np.nan, 16.0], [np.nan, 1.0, 64.0]])


def test_missing_filter_and_min_half_imputation_by_hand() -> None:
    pre = Preprocessor(log2=True, max_missing=0.5, impute="min_half", scale=False)
    out = pre.fit_transform(TRAIN, [0, 1, 0], NAMES)
    assert pre.output_names == ["A", "C"]  # B is missing in 2/3 > 0.5 of the rows
    assert pre.n_missing_filtered == 1
    np.testing.assert_allclose(pre.fill, [0.0, 1.0])  # log2(2 / 2) = 0, log2(4 / 2) = 1
    np.testing.assert_allclose(out, [[1, 2], [3, 4], [0, 6]])


def test_median_and_unlogged_min_half() -> None:
    med = Preprocessor(log2=False, max_missing=1.0, impute="median", scale=False)
    med.fit(TRAIN, [0, 1, 0], NAMES)
    np.testing.assert_allclose(med.fill, [5.0, 1.0, 16.0])
    low = Preprocessor(log2=False, max_missing=1.0, impute="min_half", scale=False)
    low.fit(np.array([[-4.0], [np.nan], [2.0]]), [0, 1, 0], ["x"])
    np.testing.assert_allclose(low.fill, [-6.0])  # below the smallest value, also when negative


def test_knn_imputes_from_the_nearest_training_row() -> None:
    train = np.array([[0.0, 0.0], [10.0, 100.0], [0.2, 7.0]])
    pre = Preprocessor(log2=False, impute="knn", scale=False, knn_neighbors=1)
    pre.fit(train, [0, 1, 0], ["a", "b"])
    np.testing.assert_allclose(pre.transform(np.array([[9.5, np.nan]])), [[9.5, 100.0]])


def test_scaler_uses_fit_rows_only() -> None:
    pre = Preprocessor(log2=False, impute="none", scale=True)
    pre.fit(np.array([[1.0], [3.0]]), [0, 1], ["a"])
    np.testing.assert_allclose(pre.transform(np.array([[5.0], [2.0]])), [[3.0], [0.0]])


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Noise features, a weakly informative one, and a planted one: constant on the training
    rows and equal to the label on the test rows (a leak only a fit on test rows can see)."""
    rng = np.random.default_rng(seed)
    y_train, y_test = np.tile([0, 1], 20), np.tile([0, 1], 20)
    noise_train, noise_test = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    weak_train = y_train * 0.8 + rng.normal(size=40)
    weak_test = y_test * 0.8 + rng.normal(size=40)
    x_train = np.column_stack([noise_train, weak_train, np.full(40, 1.0)])
    x_test = np.column_stack([noise_test, weak_test, y_test.astype(float) * 10])
    return x_train, y_train, x_test, y_test


PLANTED_NAMES = [*(f"noise{i}" for i in range(5)), "weak", "planted"]


@pytest.mark.parametrize("method", ["univariate", "extra_trees", "dbn"])
def test_planted_test_only_feature_is_ignored(method: str) -> None:
    x_train, y_train, x_test, y_test = _planted()
    pre = Preprocessor(log2=False, impute="median", select={"method": method, "k": 1})
    pre.fit(x_train, y_train, PLANTED_NAMES)
    assert pre.output_names == ["weak"]  # the informative feature, not the planted one
    assert pre.mean[-1] == 1.0 and pre.std[-1] == 1.0  # the training constant, nothing else
    # the same selector fitted on every row (the leak) would pick the planted feature
    leaky = Preprocessor(log2=False, impute="median", select={"method": method, "k": 1})
    leaky.fit(np.vstack([x_train, x_test]), np.concatenate([y_train, y_test]), PLANTED_NAMES)
    assert leaky.output_names == ["planted"]


def test_planted_feature_leaves_a_trained_classifier_at_chance_on_it() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    x_train, y_train, x_test, y_test = _planted()
    only = [PLANTED_NAMES.index("planted")]
    pre = Preprocessor(log2=False, impute="median")
    model = LogisticRegression().fit(pre.fit_transform(x_train[:, only], y_train, ["p"]), y_train)
    scores = model.predict_proba(pre.transform(x_test[:, only]))[:, 1]
    assert roc_auc_score(y_test, scores) == 0.5


def test_to_dict_round_trip_through_json_gives_the_same_transform() -> None:
    rng = np.random.default_rng(1)
    x = np.exp(rng.normal(size=(12, 4)))
    x[rng.random(x.shape) < 0.2] = np.nan
    y = np.tile([0, 1], 6)
    for impute in ("min_half", "knn"):
        pre = Preprocessor(impute=impute, select={"method": "univariate", "k": 2}, no_log=["d"])
        pre.fit(x, y, ["a", "b", "c", "d"])
        back = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
        np.testing.assert_allclose(back.transform(x), pre.transform(x))
        assert back.output_names == pre.output_names


def test_log2_of_non_positive_value_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"log2 of a non-positive value.*feature 'b'"):
        Preprocessor().fit(np.array([[1.0, 0.0]]), [0], ["a", "b"])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="impute"):
        Preprocessor(impute="mean")
    with pytest.raises(ValueError, match="select"):
        Preprocessor(select={"method": "lasso", "k": 3})
