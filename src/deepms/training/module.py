"""The base LightningModule every task model extends: optimiser, scheduler and the bookkeeping
that makes a checkpoint self-contained (hyperparameters saved with the weights)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

DEFAULT_OPTIMIZER: dict[str, Any] = {"lr": 1e-3, "weight_decay": 0.0, "scheduler": "none"}


class TaskModule(pl.LightningModule):
    """AdamW with an optional cosine or plateau schedule, configured from ``optimizer``."""

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
