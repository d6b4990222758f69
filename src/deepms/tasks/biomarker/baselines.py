"""The comparators biomarker studies use, fitted on the DBN's own fold and preprocessing.

OmicLearn's default protocol (ExtraTrees importance picks 20 features, AdaBoost with 100
estimators classifies), L1 and L2 logistic regression, random forest, XGBoost (gradient-boosted
trees, the CPU build ``xgboost-cpu``), an SVM, kNN and a plain MLP (An et al.'s comparators). Every
model sees the fold's training rows after the same in-fold preprocessing, and is scored on the
fold's test rows with :func:`binary_scores`, the function the DBN's own metrics come from, so the
figures compare like for like (and ``cv=`` aggregates ``test_<baseline>_<metric>`` over folds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from deepms.metrics import binary_metrics

METRICS = ("auroc", "auprc", "balanced_accuracy", "mcc", "brier")


def binary_scores(
    probabilities: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, threshold=0.5
) -> dict[str, float]:
    """auroc, auprc, balanced accuracy and MCC (at ``threshold``) and the Brier score.

    AUROC, AUPRC, MCC, sensitivity and specificity are deepms's binary metrics; balanced accuracy
    is the mean of sensitivity and specificity, Brier the mean squared error of the probability.
    With one class present only Brier is defined: the others are NaN (``cv=`` then reports no
    interval for them rather than a made-up number).
    """
    p = torch.as_tensor(np.asarray(probabilities, dtype=np.float32)).reshape(-1)
    y = torch.as_tensor(np.asarray(labels)).reshape(-1).long()
    brier = float(((p - y.float()) ** 2).mean())
    if len(torch.unique(y)) < 2:  # e.g. a held-out site of controls only: ranks are undefined
        return {name: math.nan for name in METRICS[:-1]} | {"brier": brier}
    values = {k: float(v) for k, v in binary_metrics(threshold=threshold)(p, y).items()}
    return {
        "auroc": values["auroc"],
        "auprc": values["auprc"],
        "balanced_accuracy": (values["sensitivity"] + values["specificity"]) / 2,
        "mcc": values["mcc"],
        "brier": brier,
    }


def _omiclearn(seed: int) -> Any:
    from sklearn.ensemble import AdaBoostClassifier, ExtraTreesClassifier
    from sklearn.feature_selection import SelectFromModel
    from sklearn.pipeline import make_pipeline

    trees = ExtraTreesClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    select = SelectFromModel(trees, max_features=20, threshold=-np.inf)  # the top 20 by importance
    return make_pipeline(select, AdaBoostClassifier(n_estimators=100, random_state=seed))


def _logistic(penalty: str) -> Callable[[int], Any]:
    def build(seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression

        if penalty == "l1":  # scikit-learn >= 1.8 spells the penalty as l1_ratio
            return LogisticRegression(l1_ratio=1.0, C=1.0, solver="liblinear", max_iter=2000)
        return LogisticRegression(C=1.0, max_iter=2000)

    return build


def _random_forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)


def _xgboost(seed: int) -> Any:
    from xgboost import XGBClassifier

    # library defaults but one thread (a fold is small; CV runs many) and a fixed seed
    return XGBClassifier(n_estimators=200, n_jobs=1, random_state=seed, eval_metric="logloss")


def _svm(seed: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    # Platt-scaled RBF SVM: what SVC(probability=True) did before scikit-learn 1.9 deprecated it
    return CalibratedClassifierCV(SVC(kernel="rbf", random_state=seed), ensemble=False)


def _knn(seed: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=5)


def _mlp(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, early_stopping=False,
                         alpha=1e-3, random_state=seed)  # fmt: skip


#: name (as in ``test_<name>_<metric>``) -> a fresh scikit-learn classifier for a seed
BASELINES: dict[str, Callable[[int], Any]] = {
    "omiclearn": _omiclearn,
    "logreg_l1": _logistic("l1"),
    "logreg_l2": _logistic("l2"),
    "random_forest": _random_forest,
    "xgboost": _xgboost,
    "svm": _svm,
    "knn": _knn,
    "mlp": _mlp,
}


def fit_predict(
    name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int = 0
) -> np.ndarray:
    """P(positive) on ``x_test`` of baseline ``name`` fitted on the training rows."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}: use some of {sorted(BASELINES)}")
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    model = BASELINES[name](seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return model.predict_proba(x_test)[:, list(model.classes_).index(1)]


def evaluate_baselines(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    names: Sequence[str],
    seed: int = 0,
) -> dict[str, float]:
    """``<name>_<metric>`` for each baseline, fitted on ``train`` and scored on ``test``."""
    return score_baselines(fit_baselines(train, test[0], names, seed), test[1])


def fit_baselines(
    train: tuple[np.ndarray, np.ndarray], x_test: np.ndarray, names: Sequence[str], seed: int = 0
) -> dict[str, np.ndarray]:
    """Each baseline's P(positive) on ``x_test`` (kept per sample for the out-of-fold table)."""
    return {name: fit_predict(name, train[0], train[1], x_test, seed) for name in names}


def score_baselines(probabilities: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """``<name>_<metric>`` of each baseline's test probabilities."""
    out: dict[str, float] = {}
    for name, p in probabilities.items():
        out |= {f"{name}_{k}": v for k, v in binary_scores(p, labels).items()}
    return out


def panel_scores(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    columns: Sequence[int],
) -> dict[str, float]:
    """L2 logistic regression on the panel's columns only (chosen on this fold's training rows
    by the DBN's ranking): how well the top-k proteins alone classify the fold's test rows."""
    columns = list(columns)
    probabilities = fit_predict("logreg_l2", train[0][:, columns], train[1], test[0][:, columns])
    return {f"panel_{k}": v for k, v in binary_scores(probabilities, test[1]).items()}
