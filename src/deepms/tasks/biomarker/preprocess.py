"""In-fold preprocessing of a cohort matrix: log2, missing filter, imputation, scaling, selection.

Every statistic (missing fractions, imputation values, kNN donors, means and deviations, the
selected features) comes from the rows given to :meth:`Preprocessor.fit`: the datamodule passes
the training rows of the fold only, so nothing about validation or test samples leaks into the
features. The fitted steps serialise to a JSON-safe dict (:meth:`Preprocessor.to_dict`) that the
model saves, so prediction applies exactly the same transformation.

Steps, in order (each optional except the missing filter):

1. ``log2``: intensities to log2 (columns named in ``no_log``, e.g. covariates, stay linear);
   a non-positive value is an error, not a silent NaN.
2. ``max_missing``: features missing in more than this fraction of training rows are dropped.
3. ``impute``: ``min_half`` (half the smallest observed training value: on the log2 scale
   ``log2(min) - 1``; on unlogged data ``min - |min| / 2``), ``median`` or ``knn``
   (scikit-learn's KNNImputer over the training rows), or ``none``.
4. ``scale``: standardise with the training mean and deviation (deviation 0 counts as 1).
5. ``select``: ``{"method": "univariate" | "extra_trees" | "dbn", "k": K}`` keeps the top K
   features by ANOVA F on the training rows, by ExtraTrees importance (seeded), or by An et al.'s
   weight ranking of a small DBN trained on those rows (:func:`dbn.dbn_feature_scores`; its
   settings under ``select.dbn``, e.g. ``{hidden_sizes: [64, 16], finetune_epochs: 30}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

IMPUTERS = ("min_half", "median", "knn", "none")
SELECTORS = ("univariate", "extra_trees", "dbn")


def _json_floats(values: np.ndarray) -> list:
    """Floats for JSON (NaN becomes None, which ``json`` cannot otherwise write portably)."""
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64)]


def _from_json(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


class Preprocessor:
    """Fitted on a fold's training rows; ``transform`` applies the same steps to any rows."""

    def __init__(
        self,
        log2: bool = True,
        max_missing: float = 0.5,
        impute: str = "min_half",
        scale: bool = True,
        select: Mapping[str, Any] | None = None,
        seed: int = 0,
        no_log: Sequence[str] = (),
        knn_neighbors: int = 5,
    ) -> None:
        if impute not in IMPUTERS:
            raise ValueError(f"preprocess.impute={impute!r}: use one of {IMPUTERS}")
        if not 0 <= float(max_missing) <= 1:
            raise ValueError(f"preprocess.max_missing={max_missing}: must be in [0, 1]")
        select = dict(select) if select else None
        if select is not None:
            if select.get("method") not in SELECTORS:
                raise ValueError(f"preprocess.select.method: use one of {SELECTORS}; got {select}")
            if int(select.get("k", 0)) < 1:
                raise ValueError(f"preprocess.select.k must be >= 1; got {select}")
        self.log2, self.max_missing, self.impute = bool(log2), float(max_missing), impute
        self.scale, self.select, self.seed = bool(scale), select, int(seed)
        self.no_log, self.knn_neighbors = tuple(no_log), int(knn_neighbors)
        self.input_names: list[str] = []
        self.kept: np.ndarray | None = None  # input column indices after the missing filter
        self.fill: np.ndarray | None = None  # per kept column (min_half / median)
        self.knn_donors: np.ndarray | None = None  # training rows (knn)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.selected: np.ndarray | None = None  # indices into the kept columns
        self.n_missing_filtered = 0

    # --- fit / transform -------------------------------------------------------------------------

    def _log(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=np.float64, copy=True)
        if not self.log2:
            return X
        cols = [i for i, name in enumerate(self.input_names) if name not in self.no_log]
        part = X[:, cols]
        bad = np.argwhere(part <= 0)
        if len(bad):
            row, col = bad[0]
            raise ValueError(
                f"log2 of a non-positive value ({part[row, col]:g}, feature "
                f"{self.input_names[cols[col]]!r}, row {row}): mark missing values as empty, or "
                "set preprocess.log2: false for data already on a log scale"
            )
        X[:, cols] = np.log2(part)
        return X

    def _impute(self, X: np.ndarray) -> np.ndarray:
        if self.impute == "knn" and self.knn_donors is not None:
            from sklearn.impute import KNNImputer

            imputer = KNNImputer(n_neighbors=self.knn_neighbors, keep_empty_features=True)
            imputer.fit(self.knn_donors)
            return imputer.transform(X)
        if self.fill is not None:
            X = X.copy()
            rows, cols = np.nonzero(np.isnan(X))
            X[rows, cols] = self.fill[cols]
        return X

    def fit(
        self, X: np.ndarray, y: Sequence[int] | np.ndarray, feature_names: Sequence[str]
    ) -> Preprocessor:
        """Learn every step from these rows (the fold's training rows only)."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if X.ndim != 2 or X.shape[1] != len(feature_names):
            raise ValueError(f"X has shape {X.shape}; expected [rows, {len(feature_names)}]")
        self.input_names = [str(n) for n in feature_names]
        X = self._log(X)
        missing = np.isnan(X).mean(axis=0) if len(X) else np.ones(X.shape[1])
        self.kept = np.flatnonzero(missing <= self.max_missing)
        self.n_missing_filtered = int(X.shape[1] - len(self.kept))
        X = X[:, self.kept]
        if self.impute == "knn":
            self.knn_donors = X.copy()
        elif self.impute != "none":
            self.fill = self._fill_values(X)
        X = self._impute(X)
        if self.scale:
            self.mean = np.nanmean(X, axis=0) if len(X) else np.zeros(X.shape[1])
            std = np.nanstd(X, axis=0) if len(X) else np.ones(X.shape[1])
            self.std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
            self.mean = np.where(np.isfinite(self.mean), self.mean, 0.0)
            X = (X - self.mean) / self.std
        self.selected = self._select(X, y) if self.select else None
        return self

    def _fill_values(self, X: np.ndarray) -> np.ndarray:
        """Per-column imputation value from the observed training values (0 if none)."""
        fill = np.zeros(X.shape[1])
        for j in range(X.shape[1]):
            seen = X[~np.isnan(X[:, j]), j]
            if not len(seen):
                continue
            if self.impute == "median":
                fill[j] = np.median(seen)
            elif self.log2 and self.input_names[self.kept[j]] not in self.no_log:
                fill[j] = seen.min() - 1.0  # log2(min / 2)
            else:
                fill[j] = seen.min() - abs(seen.min()) / 2
        return fill

    def _select(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        k = min(int(self.select["k"]), X.shape[1])
        X = np.nan_to_num(X)  # without imputation, missing counts as the mean (0 after scaling)
        if self.select["method"] == "univariate":
            from sklearn.feature_selection import f_classif

            with np.errstate(divide="ignore", invalid="ignore"):
                scores, _ = f_classif(X, y)
        elif self.select["method"] == "extra_trees":
            from sklearn.ensemble import ExtraTreesClassifier

            trees = ExtraTreesClassifier(n_estimators=100, random_state=self.seed, n_jobs=1)
            scores = trees.fit(X, y).feature_importances_
        else:
            import torch

            from deepms.tasks.biomarker.dbn import dbn_feature_scores

            settings = dict(self.select.get("dbn") or {})
            x, labels = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
            scores = dbn_feature_scores(x, labels, **settings, seed=self.seed).numpy()
        scores = np.where(np.isfinite(scores), scores, -np.inf)  # constant features rank last
        order = np.argsort(-scores, kind="stable")[:k]
        return np.sort(order)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The fitted steps applied to rows with the input columns of ``fit``."""
        if self.kept is None:
            raise RuntimeError("Preprocessor.transform before fit (or from_dict)")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.input_names):
            raise ValueError(f"X has shape {X.shape}; expected [rows, {len(self.input_names)}]")
        X = self._impute(self._log(X)[:, self.kept])
        if self.scale:
            X = (X - self.mean) / self.std
        if self.selected is not None:
            X = X[:, self.selected]
        return X.astype(np.float32)

    def fit_transform(self, X: np.ndarray, y: Sequence[int], names: Sequence[str]) -> np.ndarray:
        return self.fit(X, y, names).transform(X)

    @property
    def output_names(self) -> list[str]:
        """Names of the columns ``transform`` returns."""
        kept = [self.input_names[i] for i in (self.kept if self.kept is not None else [])]
        return kept if self.selected is None else [kept[i] for i in self.selected]

    # --- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the settings and the fitted statistics (rebuilt by :meth:`from_dict`)."""

        def floats(a: np.ndarray | None) -> list | None:
            return None if a is None else _json_floats(a)

        return {
            "log2": self.log2,
            "max_missing": self.max_missing,
            "impute": self.impute,
            "scale": self.scale,
            "select": self.select,
            "seed": self.seed,
            "no_log": list(self.no_log),
            "knn_neighbors": self.knn_neighbors,
            "input_names": list(self.input_names),
            "kept": None if self.kept is None else [int(i) for i in self.kept],
            "fill": floats(self.fill),
            "knn_donors": None
            if self.knn_donors is None
            else [_json_floats(row) for row in self.knn_donors],
            "mean": floats(self.mean),
            "std": floats(self.std),
            "selected": None if self.selected is None else [int(i) for i in self.selected],
            "n_missing_filtered": self.n_missing_filtered,
            "output_names": self.output_names,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessor:
        """The fitted preprocessor that :meth:`to_dict` described."""
        keys = ("log2", "max_missing", "impute", "scale", "select", "seed", "no_log")
        pre = cls(
            **{k: data[k] for k in keys if k in data}, knn_neighbors=data.get("knn_neighbors", 5)
        )
        pre.input_names = list(data["input_names"])
        pre.kept = None if data.get("kept") is None else np.asarray(data["kept"], dtype=int)
        for name in ("fill", "mean", "std"):
            if data.get(name) is not None:
                setattr(pre, name, _from_json(data[name]))
        donors = data.get("knn_donors")
        if donors is not None:
            pre.knn_donors = np.array([_from_json(r) for r in donors]).reshape(len(donors), -1)
        if data.get("selected") is not None:
            pre.selected = np.asarray(data["selected"], dtype=int)
        pre.n_missing_filtered = int(data.get("n_missing_filtered", 0))
        return pre
