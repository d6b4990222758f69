"""Nested cross-validation: hyperparameters tuned inside each outer fold, never on its test part.

``cv.inner`` turns a cross-validated run into nested CV. For outer fold K, an Optuna study (TPE,
seeded) samples ``cv.inner.params`` (the same nested space as ``hydra.sweeper.params``); each
trial fits the inner folds, cut by ``cv.inner.scheme`` from fold K's non-test rows only
(:class:`deepms.datasets.folds.CVConfig` ``within``), and scores the mean of the task's
``test_metric`` on the inner test parts. Fold K is then fitted with the best trial's values and
tested on its outer test part, which no trial saw: the outer figures estimate the whole
procedure, tuning included (a sweep's best value on the same data would not).

Inner fits log nothing to MLflow (they would bury the outer runs); the parent run gets every
trial as ``cv/inner_trials.csv`` and the fold table gets each fold's chosen values
(``tuned.<key>``). Trial 0 is the configured values (``enqueue_config``, default true), so the
search starts from the config a user would otherwise run. ``cv.inner.overrides`` (key: value)
applies to inner fits only, e.g. skipping a task's comparators that the choice does not need.
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from deepms.sweep.space import ParamSpec, parse_space, suggest

log = logging.getLogger(__name__)

INNER_KEYS = (
    "scheme",
    "n_splits",
    "n_repeats",
    "n_trials",
    "params",
    "overrides",
    "seed",
    "enqueue_config",
)


def inner_settings(cfg: DictConfig) -> dict[str, Any]:
    """``cv.inner`` as a checked dict (defaults: stratified 3-fold, 10 trials)."""
    inner = OmegaConf.to_container(cfg.cv.inner, resolve=True)
    if not isinstance(inner, Mapping):
        raise ValueError(f"cv.inner must be a mapping; got {inner!r}")
    unknown = sorted(set(inner) - set(INNER_KEYS))
    if unknown:
        raise ValueError(f"cv.inner: unknown keys {unknown}; known: {list(INNER_KEYS)}")
    if not inner.get("params"):
        raise ValueError("cv.inner.params is empty: nested CV needs a space to tune")
    settings = {"scheme": "stratified_kfold", "n_splits": 3, "n_repeats": 1, "n_trials": 10}
    settings |= {"overrides": {}, "seed": int(cfg.seed), "enqueue_config": True} | dict(inner)
    if int(settings["n_trials"]) < 1:
        raise ValueError(f"cv.inner.n_trials={settings['n_trials']}: need at least 1")
    return settings


def _set(cfg: DictConfig, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)


def inner_fit_config(
    fold_cfg: DictConfig, settings: Mapping[str, Any], inner_fold: int, values: Mapping[str, Any]
) -> DictConfig:
    """An inner fit of the outer fold in ``fold_cfg``: the trial's values, no MLflow logging,
    the inner scheme ``within`` the outer fold, its own checkpoint folder."""
    cfg = copy.deepcopy(fold_cfg)
    with open_dict(cfg):
        outer = {k: v for k, v in OmegaConf.to_container(cfg.data.cv).items() if k != "inner"}
        cfg.data.cv = {
            "scheme": settings["scheme"],
            "n_splits": int(settings["n_splits"]),
            "n_repeats": int(settings["n_repeats"]),
            "fold": inner_fold,
            "val_fraction": outer.get("val_fraction", 0.1),
            "seed": int(settings["seed"]) + 1009 * (int(outer["fold"]) + 1),
            "within": outer,
        }
        cfg.logger = None
        for callback in ("optuna_pruning", "lr_monitor"):  # no trial pruning, no logger
            if OmegaConf.select(cfg, f"callbacks.{callback}") is not None:
                cfg.callbacks[callback] = None
        cfg.paths.output_dir = str(Path(cfg.paths.output_dir) / "inner" / f"fold{inner_fold}")
        _set(cfg, values)
        _set(cfg, settings.get("overrides") or {})
    return cfg


def tune_fold(fold_cfg: DictConfig, cfg: DictConfig) -> tuple[dict[str, Any], list[dict]]:
    """The best values of ``cv.inner.params`` for the outer fold in ``fold_cfg`` (chosen on its
    inner folds) and one row per trial (fold, trial, state, value, values)."""
    import optuna

    from deepms.training.runner import run_once

    settings = inner_settings(cfg)
    space = parse_space(settings["params"])
    outer_fold = int(fold_cfg.cv.fold)
    metric, mode = str(cfg.task.test_metric), str(cfg.task.get("mode", "max"))
    n_inner = int(settings["n_splits"]) * int(settings["n_repeats"])
    rows: list[dict[str, Any]] = []

    def objective(trial: Any) -> float:
        try:
            return run_trial(trial)
        except Exception as error:  # recorded as a failed trial; the study goes on
            log.warning("outer fold %d, inner trial %d failed: %r", outer_fold, trial.number, error)
            trial.set_user_attr("error", repr(error)[:500])
            raise

    def run_trial(trial: Any) -> float:
        values = suggest(trial, space)
        scores = []
        for inner_fold in range(n_inner):
            inner_cfg = inner_fit_config(fold_cfg, settings, inner_fold, values)
            try:
                result = run_once(inner_cfg, register=False)
            finally:
                shutil.rmtree(inner_cfg.paths.output_dir, ignore_errors=True)
            scores.append(result.metrics.get(metric, math.nan))
        value = float(np.nanmean(scores)) if np.isfinite(scores).any() else math.nan
        if not math.isfinite(value):
            raise ValueError(f"{metric} is not finite on any inner fold: {scores}")
        return value

    sampler = optuna.samplers.TPESampler(seed=int(settings["seed"]) + outer_fold)
    direction = "maximize" if mode == "max" else "minimize"
    study = optuna.create_study(direction=direction, sampler=sampler)
    current = configured_values(fold_cfg, space) if settings["enqueue_config"] else {}
    if current:  # the configured values are trial 0: tuning can only beat them on inner folds
        study.enqueue_trial(current)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=int(settings["n_trials"]), catch=(Exception,))
    for trial in study.trials:
        row = {"fold": outer_fold, "trial": trial.number, "state": trial.state.name}
        row |= {f"inner_{metric}_mean": trial.value if trial.value is not None else math.nan}
        row |= {f"tuned.{k}": v for k, v in trial.params.items()}
        row["error"] = trial.user_attrs.get("error", "")
        rows.append(row)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"nested cv: every inner trial of outer fold {outer_fold} failed")
    best = study.best_trial
    log.info("outer fold %d: inner %s %.4f with %s", outer_fold, metric, best.value, best.params)
    return dict(best.params), rows


def configured_values(cfg: DictConfig, space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """The config's own value of each swept key, where the space can express it (a list such
    as ``[128, 32]`` matches the categorical choice ``"128-32"``); empty if any key cannot."""
    values: dict[str, Any] = {}
    for key, spec in space.items():
        value = OmegaConf.select(cfg, key)
        value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        if spec.type == "categorical":
            forms = [value, str(value)]
            if isinstance(value, list):
                forms.append("-".join(str(v) for v in value))
            match = [choice for choice in spec.choices if choice in forms]
            if not match:
                return {}
            values[key] = match[0]
        elif isinstance(value, int | float) and spec.low <= value <= spec.high:
            values[key] = value
        else:
            return {}
    return values


def tuned_fold_config(fold_cfg: DictConfig, values: Mapping[str, Any]) -> DictConfig:
    """The outer fold's config with the chosen values (its run logs them as its params)."""
    cfg = copy.deepcopy(fold_cfg)
    with open_dict(cfg):
        _set(cfg, values)
    return cfg
