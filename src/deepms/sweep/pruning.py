"""The pruning callback: reports the monitored metric to the trial every validation epoch and stops
the run (``optuna.TrialPruned``) when the pruner says so.

Trials run in the sweeper's process (Hydra's basic launcher), so the callback finds its live
``optuna.Trial`` in :data:`ACTIVE_TRIALS` by number; the config only names the number.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning.pytorch as pl

log = logging.getLogger(__name__)

ACTIVE_TRIALS: dict[int, Any] = {}  # trial number -> optuna.Trial, set by the sweep driver


class OptunaPruning(pl.Callback):
    """Report ``monitor`` at each validation end; raise ``optuna.TrialPruned`` to stop the trial.

    The exception ends ``Trainer.fit`` at once (no test on a pruned trial); the sweeper records
    the trial as PRUNED and goes on. Multi-process trainers are not pruned (ranks would diverge).
    """

    def __init__(self, trial_number: int, monitor: str, step_offset: int = 0) -> None:
        self.trial_number = int(trial_number)
        self.monitor = monitor
        self.step_offset = int(step_offset)  # fold k of a cross-validated trial: its own steps
        self.trial = ACTIVE_TRIALS.get(self.trial_number)
        if self.trial is None:
            log.warning("trial %d is not running in this process: no pruning", self.trial_number)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.trial is None or trainer.sanity_checking or trainer.world_size > 1:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        value = float(value)
        if math.isnan(value):
            return
        epoch = int(trainer.current_epoch)
        self.trial.report(value, step=self.step_offset + epoch)
        if self.trial.should_prune():
            import optuna

            self.trial.set_user_attr("pruned_at_epoch", epoch)
            raise optuna.TrialPruned(f"{self.monitor}={value:.4f} at epoch {epoch}")
