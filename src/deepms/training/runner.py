"""Turn a composed Hydra config into a tracked training run.

The runner knows nothing about any task: the config names a datamodule (a
:class:`~deepms.training.datamodule.TaskDataModule`) and a LightningModule by ``_target_``. The
datamodule's ``model_kwargs()`` gives the sizes the model needs from the data, its ``lineage()``
(a :class:`~deepms.datasets.lineage.Lineage`) is logged to MLflow as ``data/lineage.json`` and as
MLflow datasets. ``cv=<scheme>`` turns the run into one fit per fold (:mod:`deepms.training.cv`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from deepms.datasets.lineage import Lineage
from deepms.tracking.lineage import DatasetInput
from deepms.training.datamodule import TaskDataModule

log = logging.getLogger(__name__)


def default_run_name(cfg: DictConfig) -> str:
    """``<task>-<model class>-s<seed>``: readable in the MLflow runs table."""
    model = str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
    return f"{cfg.task.name}-{model}-s{cfg.seed}"


def _instantiate_group(group: DictConfig | None, **overrides: Any) -> list[Any]:
    from hydra.utils import instantiate

    if not group:
        return []
    objects = []
    for name, node in group.items():
        if node is None or "_target_" not in node:
            continue
        kwargs = {k: v for k, v in overrides.items() if k in node}
        objects.append(instantiate(node, **kwargs))
        log.debug("instantiated %s", name)
    return objects


def build_datamodule(cfg: DictConfig) -> TaskDataModule:
    """The task's datamodule, set up for fitting; a clear error when it is not a TaskDataModule."""
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data, _recursive_=False, _convert_="all")
    if not isinstance(datamodule, TaskDataModule):
        kind = type(datamodule)
        raise TypeError(
            f"data._target_={cfg.data.get('_target_')}: {kind.__module__}.{kind.__qualname__} is "
            "not a deepms.training.datamodule.TaskDataModule; a task's datamodule must derive "
            "from it"
        )
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build(cfg: DictConfig) -> tuple[TaskDataModule, Any, Any]:
    """Datamodule, model and trainer from the config (nothing is fitted)."""
    from hydra.utils import instantiate

    datamodule = build_datamodule(cfg)
    model = instantiate(cfg.model, _recursive_=False, _convert_="all", **datamodule.model_kwargs())
    # the predictor that serves this model; TaskModule.on_save_checkpoint records it
    model.deepms_predictor = cfg.task.get("predictor")
    if cfg.get("finetune") and cfg.finetune.get("from"):  # start from a trained model
        from deepms.training.finetune import apply_finetune

        apply_finetune(model, cfg.finetune, OmegaConf.select(cfg, "logger.mlflow.tracking_uri"))
    if cfg.get("compile"):
        model.compile()  # in place: the object stays the task's LightningModule
    run_name = cfg.get("run_name") or default_run_name(cfg)
    loggers = _instantiate_group(cfg.get("logger"), run_name=run_name)
    callbacks = _instantiate_group(cfg.get("callbacks"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def _monitored_value(trainer: Any, monitor: str) -> float | None:
    callback = trainer.checkpoint_callback
    score = getattr(callback, "best_model_score", None) if callback else None
    if score is None:
        score = trainer.callback_metrics.get(monitor)
    if score is None:
        return None
    value = float(score)
    return None if math.isnan(value) else value


@dataclass
class RunResult:
    """What a run produced: the monitored value (for sweeps), figures for benchmarks, and the
    datamodule, model (the tested weights: the best checkpoint's) and trainer, for studies and
    the registry to use as they are instead of rebuilding the data or reloading the checkpoint.

    A cross-validated run's result holds the mean over folds and one result per fold in ``folds``
    (their datamodule, model and trainer are dropped once their predictions are collected).
    """

    monitored: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    best_checkpoint: str | None = None
    fit_seconds: float = 0.0
    test_seconds: float = 0.0
    train_samples_seen: int = 0
    test_samples: int = 0
    lineage: Lineage = field(default_factory=Lineage)
    datamodule: TaskDataModule | None = None
    model: Any = None
    trainer: Any = None
    folds: list[RunResult] = field(default_factory=list)


def _run_id(trainer: Any) -> str | None:
    for logger in trainer.loggers:
        run_id = getattr(logger, "run_id", None)
        if run_id:
            return run_id
    return None


def _single_log_stream() -> None:
    """Lightning adds its own console handler; under Hydra, whose root handler already prints and
    writes the run's log file, that shows every Lightning message twice."""
    lightning_logger = logging.getLogger("lightning")
    if logging.getLogger().handlers:
        for handler in list(lightning_logger.handlers):
            if type(handler) is logging.StreamHandler:
                lightning_logger.removeHandler(handler)


def sample_counts(lineage: Lineage) -> dict[str, int]:
    """Samples per part of a run's lineage."""
    return dict(lineage.n_samples)


def dataset_inputs(datamodule: TaskDataModule, lineage: Lineage) -> list[DatasetInput]:
    """One MLflow dataset per source in the lineage: digest, catalogue URL or path, and the
    part it fed (its role) or, for a source cut by the split rule, the split's name."""
    from deepms.datasets.registry import get_dataset

    specs = {spec.label: spec for spec in datamodule.sources}
    inputs = []
    for name, files in lineage.datasets.items():
        if not files:
            continue
        spec = specs.get(name)
        locations: dict[str, str] = {}
        if spec is not None and spec.dataset:
            for datafile in get_dataset(spec.dataset).files:
                mirrored = datamodule.mirror / datafile.path if datamodule.mirror else None
                locations[datafile.path] = datafile.url or str(mirrored or datafile.path)
        first = sorted(files)[0]
        role = spec.role if spec is not None else "split"
        inputs.append(
            DatasetInput(
                name=name,
                files=dict(files),
                source=locations.get(first, first),
                context=lineage.split if role == "split" else role,
                tags={"deepms.role": role, "deepms.split": lineage.split},
            )
        )
    return inputs


def _set_threads(threads: int | None) -> None:
    """Cap torch's intra-op threads: on a small shared CPU one thread per process avoids the
    5-20x slow-down of oversubscribed OpenMP threads."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def run(cfg: DictConfig) -> RunResult:
    """Fit, validate and test on the best checkpoint; the result carries the monitored value.

    Under ``cv=<scheme>`` (and no ``cv.fold``): one such run per fold under a parent run, and the
    result carries the means over folds.
    """
    _single_log_stream()
    if cfg.get("resume"):
        from deepms.training.resume import prepare_resume

        cfg = prepare_resume(cfg)
    if cfg.get("cv") is not None:
        if cfg.cv.get("fold") is None:
            from deepms.training.cv import run_cv

            return run_cv(cfg)
        cfg = _one_fold(cfg)
    return run_once(cfg)


def _one_fold(cfg: DictConfig) -> DictConfig:
    """``cv.fold=K`` alone: fold K as an ordinary run; the datamodule reads the scheme and the
    fold from ``data.cv`` (without it, it would silently use its own split)."""
    import copy

    from omegaconf import open_dict

    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cv = OmegaConf.to_container(cfg.cv, resolve=True)
        cfg.data.cv = {k: v for k, v in cv.items() if v is not None}
    return cfg


def run_once(cfg: DictConfig, register: bool = True) -> RunResult:
    """One fit and test (one fold of a cross-validated run when ``cv.fold`` is set).

    ``train=false ckpt_path=X`` tests the weights in ``X``; with training, ``ckpt_path`` is where
    fitting restarts from and the best checkpoint of the fit is tested.
    """
    import lightning.pytorch as pl

    from deepms.tracking import log_run_lineage
    from deepms.tracking.lineage import log_dataset_inputs

    resumed = bool(cfg.get("resume"))
    _set_threads(cfg.get("threads"))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    debug = bool(trainer.fast_dev_run)
    lineage = datamodule.lineage()
    if not isinstance(lineage, Lineage):
        raise TypeError(
            f"{type(datamodule).__qualname__}.lineage() returned {type(lineage).__qualname__}; "
            "it must return a deepms.datasets.lineage.Lineage"
        )
    if trainer.is_global_zero and trainer.loggers and not debug and not resumed:
        log_run_lineage(
            trainer.loggers,
            OmegaConf.to_container(cfg, resolve=True),
            OmegaConf.to_yaml(cfg, resolve=True),
            lineage.to_dict(),
            model,
            root=cfg.paths.root_dir,
        )
        log_dataset_inputs(trainer.loggers, dataset_inputs(datamodule, lineage))
    result = RunResult(
        monitored=None,
        run_id=_run_id(trainer),
        lineage=lineage,
        datamodule=datamodule,
        model=model,
        trainer=trainer,
    )
    ckpt_path = cfg.get("ckpt_path") or None
    trained = bool(cfg.get("train", True))
    if trained:
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        result.fit_seconds = time.perf_counter() - start
        n_train = sample_counts(lineage).get("train", 0)
        result.train_samples_seen = int(n_train) * int(trainer.current_epoch)
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") if not debug else ""
        result.best_checkpoint = best or None
    else:  # nothing fitted: the weights under test are the given checkpoint's (or the model's)
        result.best_checkpoint = ckpt_path
    result.monitored = _monitored_value(trainer, cfg.task.monitor)
    if cfg.get("test", True):
        start = time.perf_counter()
        trainer.test(model, datamodule=datamodule, ckpt_path=result.best_checkpoint)
        result.test_seconds = time.perf_counter() - start
        result.test_samples = int(sample_counts(lineage).get("test", 0))
    for logger in trainer.loggers:
        logger.finalize("success")
    result.metrics = {
        k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", int)() == 1
    }
    if register and trainer.is_global_zero and not debug:  # registry.register / promote_if
        from deepms.registry.hooks import after_run

        after_run(cfg, result, trainer.loggers)
    log.info("%s = %s; metrics: %s", cfg.task.monitor, result.monitored, result.metrics)
    return result
