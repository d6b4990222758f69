"""The base LightningModule every task model extends: optimiser, scheduler and the bookkeeping
that makes a checkpoint self-contained (hyperparameters saved with the weights)."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import torch

log = logging.getLogger(__name__)
DEFAULT_OPTIMIZER: dict[str, Any] = {"lr": 1e-3, "weight_decay": 0.0, "scheduler": "none"}


class TaskModule(pl.LightningModule):
    """AdamW with an optional cosine or plateau schedule, configured from ``optimizer``."""

    #: ``package.module.Class`` of the predictor serving this model (the runner sets it from
    #: ``task.predictor``); recorded in checkpoints with the predictor's description
    deepms_predictor: str | None = None

    def __init__(self, optimizer: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.optimizer_config = {**DEFAULT_OPTIMIZER, **dict(optimizer or {})}

    def configure_optimizers(self) -> Any:
        cfg = self.optimizer_config
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"])
        )
        schedule = cfg.get("scheduler", "none")
        if schedule == "cosine":
            epochs = max(1, int(self.trainer.max_epochs or 1)) if self._trainer else 1
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=epochs, eta_min=float(cfg["lr"]) * 0.01
            )
            return {"optimizer": optimizer, "lr_scheduler": scheduler}
        if schedule == "plateau":
            monitor = cfg.get("monitor", "val_loss")
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=cfg.get("mode", "min"), factor=0.5, patience=2
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": monitor},
            }
        if schedule != "none":
            raise ValueError(f"unknown scheduler {schedule!r}: use cosine, plateau or none")
        return optimizer

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Make the file self-describing: the model's class (so loaders need not guess it from
        hyperparameters) and, when known, its predictor and that predictor's description (the
        vocabulary and Unimod masses every load path checks against the code)."""
        from deepms.registry.reference import DESCRIPTION_KEY, MODEL_CLASS_KEY, PREDICTOR_KEY

        model_class = type(self)
        checkpoint[MODEL_CLASS_KEY] = f"{model_class.__module__}.{model_class.__qualname__}"
        if self.deepms_predictor:
            checkpoint[PREDICTOR_KEY] = str(self.deepms_predictor)
            description = self._predictor_description()
            if description is not None:
                checkpoint[DESCRIPTION_KEY] = description

    def _predictor_description(self) -> dict[str, Any] | None:
        """``describe()`` of the predictor built on this model (train/eval modes restored: a
        predictor puts its model in eval mode); None, with a warning, when it cannot be built, so
        a description problem never stops a training run."""
        from deepms.registry.predictor import json_safe, load_class

        modes = {module: module.training for module in self.modules()}
        try:
            return json_safe(load_class(str(self.deepms_predictor))(self).describe())
        except Exception as exc:  # any predictor's own error: the weights are still saved
            log.warning("checkpoint saved without its predictor's description: %s", exc)
            return None
        finally:
            for module, training in modes.items():
                module.training = training
