"""Turn a composed Hydra config into a tracked training run.

The runner knows nothing about any task: the config names a datamodule and a LightningModule by
``_target_``; the datamodule may offer ``model_kwargs()`` (sizes the model needs from the data) and
``lineage()`` (data set names, checksums, split) which the runner logs to MLflow.
"""

from __future__ import annotations

import logging
import math
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


def run(cfg: DictConfig) -> float | None:
    """Fit, validate and test; return the best monitored validation metric (sweeps use it)."""
    import lightning.pytorch as pl

    from deepms.tracking import log_run_lineage

    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    debug = bool(trainer.fast_dev_run)
    if trainer.is_global_zero and trainer.loggers and not debug:
        log_run_lineage(
            trainer.loggers,
            OmegaConf.to_container(cfg, resolve=True),
            OmegaConf.to_yaml(cfg, resolve=True),
            datamodule.lineage() if hasattr(datamodule, "lineage") else {},
            model,
            root=cfg.paths.root_dir,
        )
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    value = _monitored_value(trainer, cfg.task.monitor)
    if cfg.get("test", True):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") if not debug else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
    for logger in trainer.loggers:
        logger.finalize("success")
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    log.info("%s = %s; metrics: %s", cfg.task.monitor, value, metrics)
    return value
