"""Cross-validation folds that respect a task's leakage groups.

``cv=<scheme>`` (``conf/cv/``) makes a run one fit per fold. A fold labels every sample
``train``, ``val`` or ``test``: its test part is the fold, its validation part a grouped share of
the rest (for checkpointing and early stopping), training the remainder. Groups never straddle
parts: a task hands in its leakage unit (peptide sequence, similarity cluster, patient), or the
column that ``group_by`` names (e.g. a site, for leave-one-site-out).

Schemes: ``kfold`` (groups shuffled and dealt round-robin into ``n_splits`` folds),
``stratified_kfold`` and ``repeated_stratified_kfold`` (scikit-learn's StratifiedGroupKFold, per
repeat with seed + repeat; strata = the task's class labels), ``group_kfold`` (k-fold over the
``group_by`` column) and ``leave_one_group_out`` (one fold per value of the ``group_by`` column).

Nested CV: a scheme ``within`` an outer fold cuts only that outer fold's non-test rows (the outer
test rows get no label, so the inner fits never see them): hyperparameters tuned on the inner
folds are then judged on an outer test part that played no part in choosing them.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from deepms.datasets.splits import group_uniform, grouped_split

SCHEMES = (
    "kfold",
    "stratified_kfold",
    "repeated_stratified_kfold",
    "group_kfold",
    "leave_one_group_out",
)


@dataclass(frozen=True)
class CVConfig:
    """A cross-validation scheme and the fold this run is (``fold`` counts across repeats)."""

    scheme: str = "kfold"
    n_splits: int = 5
    n_repeats: int = 1
    fold: int = 0
    group_by: str | None = None  # a group column the task offers; None: its leakage unit
    val_fraction: float = 0.1  # of the non-test groups, for checkpointing / early stopping
    seed: int = 0
    within: CVConfig | None = None  # nested CV: the outer fold whose non-test rows this cuts

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | CVConfig | None) -> CVConfig | None:
        if cfg is None or isinstance(cfg, CVConfig):
            return cfg
        known = {k: v for k, v in dict(cfg).items() if k in cls.__dataclass_fields__}
        if known.get("within") is not None:
            known["within"] = cls.from_config(known["within"])
        config = cls(**known)
        config.check()
        return config

    def check(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"cv.scheme={self.scheme!r}: use one of {SCHEMES}")
        if self.scheme in ("group_kfold", "leave_one_group_out") and not self.group_by:
            raise ValueError(f"cv.scheme={self.scheme} needs cv.group_by (a group column)")
        if self.scheme != "leave_one_group_out" and self.n_splits < 2:
            raise ValueError(f"cv.n_splits={self.n_splits}: need at least 2 folds")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"cv.val_fraction={self.val_fraction}: must be in [0, 1)")
        if self.within is not None and self.scheme == "leave_one_group_out":
            raise ValueError(
                "nested cv: the inner scheme must be a k-fold scheme (its fold count cannot "
                "depend on which groups the outer fold leaves); leave_one_group_out is outer only"
            )

    @property
    def name(self) -> str:
        """Short name for run names and lineages, e.g. ``kfold5_fold2``."""
        size = "" if self.scheme == "leave_one_group_out" else str(self.n_splits)
        repeats = f"x{self.n_repeats}" if self.n_repeats > 1 else ""
        by = f"_by_{self.group_by}" if self.group_by else ""
        name = f"{self.scheme}{size}{repeats}{by}_seed{self.seed}"
        if self.within is not None:
            name = f"inner_{name}_of_{self.within.name}_fold{self.within.fold}"
        return name


def n_folds(cv: CVConfig, groups: Sequence[Hashable]) -> int:
    """How many fits the scheme makes on these groups."""
    if cv.scheme == "leave_one_group_out":
        return len(set(map(str, groups)))
    repeats = cv.n_repeats if cv.scheme == "repeated_stratified_kfold" else 1
    return cv.n_splits * repeats


def _test_mask(
    cv: CVConfig, groups: np.ndarray, strata: np.ndarray | None, fold: int
) -> np.ndarray:
    unique = list(dict.fromkeys(groups.tolist()))
    if cv.scheme == "leave_one_group_out":
        return groups == sorted(unique)[fold]
    if len(unique) < cv.n_splits:
        raise ValueError(f"{cv.n_splits} folds need at least as many groups; got {len(unique)}")
    if cv.scheme in ("kfold", "group_kfold"):
        order = np.random.default_rng(cv.seed).permutation(len(unique))
        fold_of = {unique[g]: i % cv.n_splits for i, g in enumerate(order)}
        return np.array([fold_of[g] == fold for g in groups.tolist()], dtype=bool)
    from sklearn.model_selection import StratifiedGroupKFold

    if strata is None:
        raise ValueError(f"cv.scheme={cv.scheme} needs class labels; this task gives none")
    repeat, k = divmod(fold, cv.n_splits)
    splitter = StratifiedGroupKFold(cv.n_splits, shuffle=True, random_state=cv.seed + repeat)
    splits = list(splitter.split(np.zeros(len(groups)), strata, groups))
    mask = np.zeros(len(groups), dtype=bool)
    mask[splits[k][1]] = True
    return mask


def fold_labels(
    cv: CVConfig,
    groups: Sequence[Hashable],
    strata: Sequence[Hashable] | None = None,
    group_columns: Mapping[str, Sequence[Hashable]] | None = None,
) -> np.ndarray:
    """``train``/``val``/``test`` per sample for fold ``cv.fold``.

    ``groups`` is the task's leakage unit; ``group_by`` picks a column of ``group_columns``
    instead (a leakage unit must then nest inside it: a patient belongs to one site).
    """
    if cv.within is not None:
        return _inner_fold_labels(cv, groups, strata, group_columns)
    leakage = np.array([str(g) for g in groups], dtype=object)
    if cv.group_by:
        columns = dict(group_columns or {})
        if cv.group_by not in columns:
            raise ValueError(
                f"cv.group_by={cv.group_by!r}: this task's group columns are {sorted(columns)}"
            )
        fold_groups = np.array([str(g) for g in columns[cv.group_by]], dtype=object)
    else:
        fold_groups = leakage
    total = n_folds(cv, fold_groups)
    if not 0 <= cv.fold < total:
        raise ValueError(f"cv.fold={cv.fold}: this scheme has folds 0..{total - 1}")
    strata_array = np.asarray(strata) if strata is not None else None
    test = _test_mask(cv, fold_groups, strata_array, cv.fold)
    labels = np.where(test, "test", "train").astype(object)
    rest = np.flatnonzero(~test)
    if cv.val_fraction > 0 and len(rest):
        seed = cv.seed + 7919 * (cv.fold + 1)
        inner = grouped_split(
            leakage[rest].tolist(),
            (1 - cv.val_fraction, cv.val_fraction),
            seed=seed,
            names=("train", "val"),
        )
        if "val" not in inner and len(set(leakage[rest])) > 1:
            # few groups: the share rounded to none, but checkpointing needs a validation set
            chosen = max(set(leakage[rest]), key=lambda group: group_uniform(group, seed))
            inner = np.where(leakage[rest] == chosen, "val", inner)
        labels[rest] = inner
    return labels


def _inner_fold_labels(
    cv: CVConfig,
    groups: Sequence[Hashable],
    strata: Sequence[Hashable] | None,
    group_columns: Mapping[str, Sequence[Hashable]] | None,
) -> np.ndarray:
    """``cv``'s labels over the non-test rows of its outer fold; outer test rows get None."""
    outer = replace(cv.within, val_fraction=0.0)
    rows = np.flatnonzero(fold_labels(outer, groups, strata, group_columns) != "test")
    labels = np.full(len(groups), None, dtype=object)
    labels[rows] = fold_labels(
        replace(cv, within=None),
        [groups[i] for i in rows],
        None if strata is None else np.asarray(strata)[rows],
        {k: np.asarray(v)[rows] for k, v in (group_columns or {}).items()},
    )
    return labels
