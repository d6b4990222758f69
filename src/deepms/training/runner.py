"""Turn a composed Hydra config into a tracked training run.

The runner knows nothing about any task: the config names a datamodule and a LightningModule by
``_target_``; the datamodule may offer ``model_kwargs()`` (sizes the model needs from the data) and
``lineage()`` (data set names, checksums, split) which the runner logs to MLflow.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

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


def build(cfg: DictConfig) -> tuple[Any, Any, Any]:
    """Datamodule, model and trainer from the config (nothing is fitted)."""
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data, _recursive_=False, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    model_kwargs = datamodule.model_kwargs() if hasattr(datamodule, "model_kwargs") else {}
    model = instantiate(cfg.model, _recursive_=False, _convert_="all", **model_kwargs)
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
    """What a run produced: the monitored value (for sweeps) and figures for benchmarks."""

    monitored: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    best_checkpoint: str | None = None
    fit_seconds: float = 0.0
    test_seconds: float = 0.0
    train_samples_seen: int = 0
    test_samples: int = 0
    lineage: dict[str, Any] = field(default_factory=dict)


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


def sample_counts(lineage: dict[str, Any]) -> dict[str, int]:
    """Samples per split in a lineage: ``n_samples``, or the spectrum tasks' ``n_spectra``."""
    return lineage.get("n_samples") or lineage.get("n_spectra") or {}


def _set_threads(threads: int | None) -> None:
    """Cap torch's intra-op threads: on a small shared CPU one thread per process avoids the
    5-20x slow-down of oversubscribed OpenMP threads."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def run(cfg: DictConfig) -> RunResult:
    """Fit, validate and test on the best checkpoint; the result carries the monitored value."""
    import lightning.pytorch as pl

    _single_log_stream()

    from deepms.tracking import log_run_lineage

    resumed = bool(cfg.get("resume"))
    if resumed:
        from deepms.training.resume import prepare_resume

        cfg = prepare_resume(cfg)
    _set_threads(cfg.get("threads"))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    debug = bool(trainer.fast_dev_run)
    lineage = datamodule.lineage() if hasattr(datamodule, "lineage") else {}
    if trainer.is_global_zero and trainer.loggers and not debug and not resumed:
        log_run_lineage(
            trainer.loggers,
            OmegaConf.to_container(cfg, resolve=True),
            OmegaConf.to_yaml(cfg, resolve=True),
            lineage,
            model,
            root=cfg.paths.root_dir,
        )
    result = RunResult(monitored=None, run_id=_run_id(trainer), lineage=lineage)
    if cfg.get("train", True):
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        result.fit_seconds = time.perf_counter() - start
        n_train = sample_counts(lineage).get("train", 0)
        result.train_samples_seen = int(n_train) * int(trainer.current_epoch)
    result.monitored = _monitored_value(trainer, cfg.task.monitor)
    if cfg.get("test", True):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") if not debug else ""
        result.best_checkpoint = best or None
        start = time.perf_counter()
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        result.test_seconds = time.perf_counter() - start
        result.test_samples = int(sample_counts(lineage).get("test", 0))
    for logger in trainer.loggers:
        logger.finalize("success")
    result.metrics = {
        k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", int)() == 1
    }
    if trainer.is_global_zero and not debug:  # registry.register / registry.promote_if
        from deepms.registry.hooks import after_run

        after_run(cfg, result, trainer.loggers)
    log.info("%s = %s; metrics: %s", cfg.task.monitor, result.monitored, result.metrics)
    return result
