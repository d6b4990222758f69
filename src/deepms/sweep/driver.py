"""The sweep loop of one worker: claim a trial under the study lock, run it through Hydra's
launcher, record the outcome, until the study's budget is spent.

Claiming is "fail stale trials, count the budget, ``ask``" while holding a lock shared by every
worker of the study (:mod:`deepms.sweep.lock`), so workers never overshoot the budget. Running
trials count as claimed; when only those remain, a worker waits: if one of them goes stale (its
worker died), it is failed, re-queued with the same parameters, and picked up here.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from typing import Any

from omegaconf import DictConfig

from deepms.sweep.budget import Budget, budget_of
from deepms.sweep.lock import StudyLock, study_lock
from deepms.sweep.settings import SweepSettings
from deepms.sweep.space import check_keys, format_value, suggest, to_overrides
from deepms.sweep.study import make_sampler, open_storage, open_study, redact
from deepms.sweep.tracking import RUN_ATTR, SweepTracker

log = logging.getLogger("deepms.sweep")


def _reject_sweep_overrides(arguments: list[str], config_loader: Any) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create(config_loader=config_loader)
    swept = [o.input_line for o in parser.parse_overrides(arguments) if o.is_sweep_override()]
    if swept:
        raise ValueError(
            f"{swept}: the search space belongs in hydra.sweeper.params, not a,b lists"
        )


class Objective:
    """One trial: sample, open its MLflow run, launch the job, map the outcome to Optuna's."""

    def __init__(
        self,
        settings: SweepSettings,
        launcher: Any,
        arguments: list[str],
        tracker: SweepTracker | None,
        lock: StudyLock,
    ) -> None:
        self.settings = settings
        self.launcher = launcher
        self.arguments = arguments
        self.tracker = tracker
        self.lock = lock
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.returns: list[Any] = []

    def overrides(self, trial: Any, values: dict[str, Any], run_id: str | None) -> list[str]:
        control = [
            "++callbacks.optuna_pruning._target_=deepms.sweep.pruning.OptunaPruning",
            f"++callbacks.optuna_pruning.trial_number={trial.number}",
            f"++callbacks.optuna_pruning.monitor={format_value(self.settings.monitor)}",
        ]
        if run_id is not None:  # the trial logs into the nested run made for it
            control.append(f"++logger.mlflow.run_id={format_value(run_id)}")
        return [*self.arguments, *to_overrides(values), *control]

    def __call__(self, trial: Any) -> float:
        self.lock.release()  # the trial is RUNNING in storage: it counts as claimed from now on
        import optuna

        from deepms.sweep.pruning import ACTIVE_TRIALS

        trial.set_user_attr("worker", self.worker)
        values = suggest(trial, self.settings.space)
        run_id = None
        if self.tracker is not None:
            run_id = self.tracker.start_trial(trial, values, self.settings.study_name)
            trial.set_user_attr(RUN_ATTR, run_id)
        ACTIVE_TRIALS[trial.number] = trial
        state, value = "FAIL", None
        try:
            job = self.launcher.launch(
                [self.overrides(trial, values, run_id)], initial_job_idx=trial.number
            )[0]
            self.returns.append(job)
            value = job.return_value  # re-raises what the job raised
            if value is None or not math.isfinite(float(value)):
                raise ValueError(f"trial {trial.number}: no finite {self.settings.monitor}")
            state = "COMPLETE"
            return float(value)
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            ACTIVE_TRIALS.pop(trial.number, None)
            if self.tracker is not None and run_id is not None:
                self.tracker.end_trial(run_id, state, value if state == "COMPLETE" else None)


def _snapshot(study: Any, settings: SweepSettings) -> Budget:
    return budget_of(study.get_trials(deepcopy=False), settings.n_trials)


def run_sweep(
    settings: SweepSettings,
    config: DictConfig,
    launcher: Any,
    config_loader: Any,
    arguments: list[str],
) -> list[Any]:
    """Take part in the study until its budget is spent; returns this worker's job returns."""
    import optuna

    _reject_sweep_overrides(arguments, config_loader)
    check_keys(settings.space, config)
    import deepms.sweep.pruning  # noqa: F401 - Lightning loads here, not while holding the lock

    lock = study_lock(settings.storage, settings.study_name)
    with lock:  # tables, study and parent run are created once, by whoever comes first
        storage = open_storage(settings)
        study = open_study(settings, storage)
        tracker = SweepTracker.from_config(config)
        if tracker is not None:
            tracker.open_parent(study, settings)
            tracker.update_parent(settings)
    log.info(
        "study %r on %s: %s %s over %d trials",
        settings.study_name,
        redact(settings.storage),
        settings.direction,
        settings.monitor,
        settings.n_trials,
    )
    objective = Objective(settings, launcher, arguments, tracker, lock)
    heartbeat = storage is not None and settings.heartbeat_interval is not None
    poll = max(1, min(int(settings.heartbeat_interval or 1), 15))
    waiting_on = -1
    while True:
        lock.acquire()
        try:
            if heartbeat:
                optuna.storages.fail_stale_trials(study)
            budget = _snapshot(study, settings)
            if budget.done:
                break
            if budget.free > 0:
                study.sampler = make_sampler(settings.sampler, budget.spent + budget.running)
                study.optimize(objective, n_trials=1, catch=(Exception,))
                continue
        finally:
            lock.release_if_held()
        if not heartbeat:
            log.info("the rest of the budget is running elsewhere; this worker stops")
            break
        if budget.running != waiting_on:  # say it once per change, not every poll
            waiting_on = budget.running
            log.info(
                "%d trial(s) running elsewhere hold the rest of the budget: waiting", waiting_on
            )
        time.sleep(poll)
    budget = _snapshot(study, settings)
    log.info(
        "study %r: %d/%d trials spent, %d running",
        settings.study_name,
        budget.spent,
        budget.n_trials,
        budget.running,
    )
    if tracker is not None:
        tracker.summarise(study, budget, settings)
    return objective.returns
