"""Cross-validation as a run: ``python train.py task=deeprt cv=kfold``.

Each fold is an ordinary run (:func:`deepms.training.runner.run_once` with ``cv.fold`` set: its
datamodule fits every statistic on the fold's training part and names the fold in its lineage),
logged as an MLflow run nested under a parent run (tag ``mlflow.parentRunId``, as sweep trials
under their study). The parent gets each test/val metric's mean, sd and 95 % t-interval over
folds (``cv_<metric>_mean``, ``_sd``, ``_ci95_low``, ``_ci95_high``), the fold table
(``cv/folds.csv``) and the out-of-fold predictions (``cv/oof_predictions.csv``: each test sample
predicted by the fold model that did not see it), and, if the model class defines
``summarize_folds``, that summary's metrics and plots (:mod:`deepms.training.cv_hook`). Inside a
sweep the trial's run is the parent, and the sweep optimises the mean of the monitored value. A
failed fold fails the parent. ``cv.inner`` makes it nested CV: each fold's hyperparameters are
tuned on its own training rows first (:mod:`deepms.training.nested`).
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from deepms.datasets.lineage import Lineage
from deepms.training.runner import RunResult, default_run_name, run_once

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
AGGREGATED = ("test_", "val_")  # metric prefixes summarised over folds


def interval(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean, sd (n - 1) and the two-sided t-interval of the mean; sd and interval NaN for n < 2."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    n, mean = len(x), float(np.mean(x))
    if n < 2:
        return {"mean": mean, "sd": math.nan, "ci95_low": math.nan, "ci95_high": math.nan}
    sd = float(np.std(x, ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "ci95_low": mean - half, "ci95_high": mean + half}


def aggregate(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """``cv_<key>_<stat>`` for each key with a finite value in every fold."""
    out: dict[str, float] = {}
    for key in keys:
        values = [row.get(key) for row in rows]
        if all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            for stat, value in interval(values).items():
                out[f"cv_{key}_{stat}"] = value
    return out


def fold_config(cfg: DictConfig, fold: int, output_dir: str, run_id: str | None) -> DictConfig:
    """The config of one fold: ``cv.fold`` (also as ``data.cv``, what the datamodule reads), its
    own output folder (checkpoints), its MLflow run and, in a sweep, its pruning steps."""
    fold_cfg = copy.deepcopy(cfg)
    with open_dict(fold_cfg):
        fold_cfg.cv.fold = fold
        cv = OmegaConf.to_container(fold_cfg.cv, resolve=True)
        fold_cfg.data.cv = {k: v for k, v in cv.items() if v is not None}
        fold_cfg.paths.output_dir = str(Path(output_dir) / f"fold{fold}")
        if run_id is not None:
            fold_cfg.logger.mlflow.run_id = run_id
        if OmegaConf.select(fold_cfg, "callbacks.optuna_pruning") is not None:
            epochs = int(OmegaConf.select(fold_cfg, "trainer.max_epochs") or 0)
            fold_cfg.callbacks.optuna_pruning.step_offset = fold * (epochs if epochs > 0 else 1000)
    return fold_cfg


class CVTracker:
    """The parent run (new, or a sweep trial's run) and its nested fold runs."""

    def __init__(self, cfg: DictConfig, run_name: str) -> None:
        from hydra.utils import instantiate

        node = cfg.logger.mlflow
        self.logger = instantiate(node, run_name=run_name)
        self.owned = node.get("run_id") is None  # a sweep trial's run is ended by the sweeper
        self.client = self.logger.experiment
        self.parent_id: str = self.logger.run_id

    @classmethod
    def from_config(cls, cfg: DictConfig, run_name: str) -> CVTracker | None:
        """None without an MLflow logger, and on DDP ranks other than 0 (they log nothing)."""
        from lightning.pytorch.utilities import rank_zero_only

        if OmegaConf.select(cfg, "logger.mlflow") is None or rank_zero_only.rank != 0:
            return None
        return cls(cfg, run_name)

    def log_start(self, cfg: DictConfig) -> None:
        """The parent's config, params and tags, as a single run has them."""
        from deepms.tracking.lineage import flatten, git_commit
        from deepms.tracking.mlflow_setup import log_tags, log_text

        config = OmegaConf.to_container(cfg, resolve=True)
        sha, dirty = git_commit(cfg.paths.root_dir)
        model = str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
        tags = {"task": cfg.task.name, "model": model, "seed": cfg.seed, "git_commit": sha}
        tags |= {"git_dirty": dirty, "cv.scheme": cfg.cv.scheme, "mlflow.source.git.commit": sha}
        tags |= {f"tag.{k}": v for k, v in (cfg.get("tags") or {}).items()}
        log_tags([self.logger], tags)
        self.logger.log_hyperparams(
            {k: v for k, v in flatten(config).items() if not k.startswith("hydra")}
        )
        log_text([self.logger], OmegaConf.to_yaml(cfg, resolve=True), "config/config.yaml")

    def log_data(self, first: RunResult) -> None:
        """The data behind every fold (fold 0's sources) as tags and MLflow datasets."""
        from deepms.tracking.lineage import log_dataset_inputs
        from deepms.training.runner import dataset_inputs

        split = _without_fold(first.lineage.split)
        self.client.set_tag(self.parent_id, "data", first.lineage.name)
        self.client.set_tag(self.parent_id, "split", split)
        inputs = dataset_inputs(first.datamodule, first.lineage)
        log_dataset_inputs([self.logger], [replace(i, context=split) for i in inputs])

    def start_fold(self, fold: int, run_name: str) -> str:
        from mlflow.tracking.context.registry import resolve_tags

        tags = {PARENT_TAG: self.parent_id, "cv.fold": str(fold)}
        run = self.client.create_run(
            self.logger.experiment_id, run_name=run_name, tags=resolve_tags(tags)
        )
        return run.info.run_id

    def fail_fold(self, run_id: str | None) -> None:
        if run_id and self.client.get_run(run_id).info.status == "RUNNING":
            self.client.set_terminated(run_id, "FAILED")

    def finish(self, status: str) -> None:
        if self.owned:
            self.client.set_terminated(self.parent_id, status)


def fold_predictions(result: RunResult, fold: int) -> tuple[Any, str]:
    """The fold's test predictions as a table (``predict_step``'s columns); else (None, why)."""
    import lightning.pytorch as pl
    import pandas as pd

    model, trainer, datamodule = result.model, result.trainer, result.datamodule
    if type(model).predict_step is pl.LightningModule.predict_step:
        return None, f"{type(model).__name__} has no predict_step"
    loader = datamodule.test_dataloader()
    loader = loader[0] if isinstance(loader, list) else loader
    batches = _Batches(loader)
    outputs = (
        trainer.predict(model, dataloaders=batches) or []
    )  # the model holds the tested weights
    columns: dict[str, list[Any]] = {}
    for batch in outputs:
        if not isinstance(batch, Mapping):
            return None, f"{type(model).__name__}.predict_step returns no dict of columns"
        for key, value in batch.items():
            columns.setdefault(str(key), []).extend(_as_list(value))
    if len({len(v) for v in columns.values()}) > 1:
        return None, f"{type(model).__name__}.predict_step columns differ in length"
    frame = pd.DataFrame(columns)
    frame.insert(0, "fold", fold)
    return frame, ""


class _Batches:
    """A loader's batches, not a DataLoader: Lightning's predict rebuilds a DataLoader's batch
    sampler as ``cls(sampler, batch_size, drop_last)``, which breaks the length-bucketed one."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __iter__(self) -> Any:
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)


def _as_list(value: Any) -> list[Any]:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.reshape(-1).tolist() if value.ndim <= 1 else value.tolist()
    return list(value)


def fold_row(result: RunResult, fold: int, monitor: str) -> dict[str, Any]:
    """One line of the fold table: the fold's run, its part sizes and its metrics."""
    counts = result.lineage.n_samples
    row: dict[str, Any] = {"fold": fold, "run_id": result.run_id, "split": result.lineage.split}
    row |= {f"n_{part}": int(counts.get(part, 0)) for part in ("train", "val", "test")}
    row[f"best_{monitor}"] = result.monitored if result.monitored is not None else math.nan
    row["fit_seconds"] = result.fit_seconds
    row |= {k: v for k, v in sorted(result.metrics.items()) if k.startswith(AGGREGATED)}
    return row


def run_cv(cfg: DictConfig) -> RunResult:
    """Every fold of ``cfg.cv`` as a nested run; the parent's result holds the means."""
    name = cfg.get("run_name") or f"{default_run_name(cfg)}-{cfg.cv.scheme}"
    output_dir = str(OmegaConf.select(cfg, "paths.output_dir"))
    monitor = str(cfg.task.monitor)
    tracker = CVTracker.from_config(cfg, name)
    if tracker is not None:
        tracker.log_start(cfg)
    results: list[RunResult] = []
    rows: list[dict[str, Any]] = []
    predictions, notes = [], set()
    inner_trials: list[dict[str, Any]] = []
    model_class: type | None = None
    status = "RUNNING"
    try:
        fold, total = 0, None
        while total is None or fold < total:
            child = tracker.start_fold(fold, f"{name}-fold{fold}") if tracker else None
            tuned: dict[str, Any] = {}
            try:
                fold_cfg = fold_config(cfg, fold, output_dir, child)
                if cfg.cv.get("inner") is not None:  # nested: tune on this fold's training rows
                    from deepms.training.nested import tune_fold, tuned_fold_config

                    tuned, trials = tune_fold(fold_cfg, cfg)
                    inner_trials.extend(trials)
                    fold_cfg = tuned_fold_config(fold_cfg, tuned)
                result = run_once(fold_cfg, register=False)
            except BaseException:
                if tracker is not None:
                    tracker.fail_fold(child)
                raise
            if total is None:
                total = _n_folds(result)
                log.info("cross-validation %s: %d folds", cfg.cv.scheme, total)
                if tracker is not None:
                    tracker.log_data(result)
            frame, why = fold_predictions(result, fold) if cfg.get("test", True) else (None, "")
            if frame is not None:
                predictions.append(frame)
            elif why:
                notes.add(why)
            rows.append(
                fold_row(result, fold, monitor) | {f"tuned.{k}": v for k, v in tuned.items()}
            )
            model_class = type(result.model)
            result.datamodule = result.model = result.trainer = None  # memory: one fold at a time
            results.append(result)
            fold += 1
        summary = _summarise(cfg, results, rows)
        if tracker is not None:
            _log_summary(tracker, summary, rows, predictions, notes, total, model_class)
            if inner_trials:
                import pandas as pd

                table = pd.DataFrame(inner_trials).to_csv(index=False)
                tracker.client.log_text(tracker.parent_id, table, "cv/inner_trials.csv")
        status = "FINISHED"
    except BaseException as error:  # a failed fold fails the parent; Ctrl-C kills it
        status = "FAILED" if isinstance(error, Exception) else "KILLED"
        raise
    finally:
        if tracker is not None:
            tracker.finish(status)
    if cfg.get("registry") and cfg.registry.get("register"):
        log.warning("registry.register: a cross-validated run has no single model; not registered")
    summary.run_id = tracker.parent_id if tracker is not None else None
    log.info("cv %s = %s; %s", monitor, summary.monitored, summary.metrics)
    return summary


def _n_folds(result: RunResult) -> int:
    folds = getattr(result.datamodule, "cv_folds", None)
    if not isinstance(folds, int) or folds < 1:
        raise TypeError(
            f"{type(result.datamodule).__qualname__} set no cv_folds in setup under cv=; "
            "TaskDataModule.assign_parts sets it (a task cutting its own parts must set it)"
        )
    return folds


def _without_fold(split: str) -> str:
    """``peptide_grouped_kfold5_seed42_fold0_max300`` -> ``..._seed42_max300``."""
    return re.sub(r"_fold\d+(?=_|$)", "", split)


def _summarise(cfg: DictConfig, results: list[RunResult], rows: list[dict]) -> RunResult:
    monitor = f"best_{cfg.task.monitor}"
    keys = sorted({k for row in rows for k in row if k.startswith(AGGREGATED)} | {monitor})
    metrics = aggregate(rows, keys)
    first = results[0].lineage
    lineage = Lineage(first.name, _without_fold(first.split), first.seed, dict(first.datasets))
    lineage.extras["cv"] = {"scheme": cfg.cv.scheme, "n_folds": len(results)}
    return RunResult(
        monitored=metrics.get(f"cv_{monitor}_mean"),
        metrics=metrics,
        fit_seconds=sum(r.fit_seconds for r in results),
        test_seconds=sum(r.test_seconds for r in results),
        train_samples_seen=sum(r.train_samples_seen for r in results),
        test_samples=sum(r.test_samples for r in results),
        lineage=lineage,
        folds=results,
    )


def _log_summary(
    tracker: CVTracker,
    summary: RunResult,
    rows: list[dict],
    predictions: list[Any],
    notes: set[str],
    total: int,
    model_class: type | None = None,
) -> None:
    import pandas as pd

    from deepms.training.cv_hook import log_fold_summary

    client, run_id = tracker.client, tracker.parent_id
    finite = {k: v for k, v in summary.metrics.items() if math.isfinite(v)}
    tracker.logger.log_metrics(finite)
    client.set_tag(run_id, "cv.n_folds", str(total))
    folds = pd.DataFrame(rows)
    client.log_text(run_id, folds.to_csv(index=False), "cv/folds.csv")
    if predictions:
        oof = pd.concat(predictions, ignore_index=True)
        client.log_text(run_id, oof.to_csv(index=False), "cv/oof_predictions.csv")
        summary.metrics |= log_fold_summary(model_class, oof, folds, client, run_id)
    for note in sorted(notes):
        log.warning("no out-of-fold predictions: %s", note)
        client.set_tag(run_id, "cv.oof_predictions", f"none: {note}")
