"""Callbacks the runner adds through ``conf/callbacks``."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning.pytorch as pl

log = logging.getLogger("deepms.train")


class EpochSummary(pl.Callback):
    """One log line per epoch (loss, monitored metrics, seconds): readable in CI logs and files
    where no progress bar is drawn."""

    def __init__(self, keys: tuple[str, ...] = ("train_loss", "val_loss")) -> None:
        self.keys = tuple(keys)
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # Validation (with metrics the module logs in its own epoch-end hook) has finished by
        # now; printing from on_validation_epoch_end showed those one epoch late.
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        shown = [k for k in metrics if k in self.keys or k.startswith("val_")]
        text = ", ".join(f"{k}={float(metrics[k]):.4f}" for k in sorted(shown))
        seconds = time.perf_counter() - self._start
        log.info(
            "epoch %d/%s: %s (%.1f s)", trainer.current_epoch + 1, trainer.max_epochs, text, seconds
        )


class EpochSeed(pl.Callback):
    """Reseed every RNG at the start of each training epoch from (seed, epoch).

    A run resumed from an epoch-end checkpoint then draws the same dropout masks and shuffles as
    an uninterrupted run with the same seed, so both end with the same weights (on CPU).
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        from lightning.fabric.utilities.seed import seed_everything

        seed_everything(self.seed * 1000 + trainer.current_epoch, workers=True, verbose=False)
