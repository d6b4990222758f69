"""MLflow for sweeps: one parent run per study, one nested run per trial.

The sweeper creates each trial's run (tags ``mlflow.parentRunId``, ``sweep.trial``,
``sweep.param.<key>``) and hands its id to the trial's logger (``logger.mlflow.run_id``), so the
runner logs into it as usual. The parent run's id is kept in the study (a user attribute): every
worker and every resumed sweep logs under the same parent.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from deepms.sweep.budget import Budget
from deepms.sweep.settings import SweepSettings
from deepms.sweep.study import redact
from deepms.tracking.mlflow_setup import (
    artifact_location,
    default_tracking_uri,
    ensure_experiment,
)

log = logging.getLogger(__name__)

PARENT_ATTR = "mlflow_parent_run_id"
RUN_ATTR = "mlflow_run_id"
MLFLOW_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def retried_from(trial: Any) -> int | None:
    """The number of the dead-worker trial this live trial re-runs, if it is a retry."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
    from optuna.trial import TrialState

    for frozen in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.number == trial.number:
            history = Retry.retry_history(frozen)
            return history[-1] if history else None
    return None


def _resolved_tags(tags: dict[str, Any]) -> dict[str, str]:
    """MLflow's context tags (user, source, git) plus ours, all as strings."""
    from mlflow.tracking.context.registry import resolve_tags

    return resolve_tags({k: str(v) for k, v in tags.items()})


class SweepTracker:
    """Parent and nested MLflow runs of one study, on the store the trials' logger uses."""

    def __init__(self, tracking_uri: str, experiment_name: str, artifact_root: str | None) -> None:
        from mlflow.tracking import MlflowClient

        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment_id = self._experiment(experiment_name, artifact_root)
        self.parent_id: str | None = None

    def _experiment(self, name: str, artifact_root: str | None) -> str:
        """The task's experiment (a model-training one), created as the trials' logger would."""
        return ensure_experiment(
            self.client, name, artifact_location(self.tracking_uri, artifact_root)
        )

    @classmethod
    def from_config(cls, config: DictConfig) -> SweepTracker | None:
        """From ``logger.mlflow``; None when the config has no MLflow logger."""
        node = OmegaConf.select(config, "logger.mlflow")
        if node is None:
            return None
        uri = node.get("tracking_uri") or default_tracking_uri(config.paths.root_dir)
        return cls(str(uri), str(node.experiment_name), node.get("artifact_root"))

    def open_parent(self, study: Any, settings: SweepSettings) -> str:
        """The study's parent run: reused when it exists (resume, other workers), else created."""
        from mlflow.exceptions import MlflowException

        run_id = study.user_attrs.get(PARENT_ATTR)
        if run_id:
            try:
                if self.client.get_run(run_id).info.status != "RUNNING":
                    self.client.update_run(run_id, status="RUNNING")
                self.parent_id = run_id
                return run_id
            except MlflowException:
                log.info(
                    "parent run %s is not in %s: starting a new one", run_id, self.tracking_uri
                )
        tags = {
            "sweep.study": settings.study_name,
            "sweep.storage": redact(settings.storage),
            "sweep.direction": settings.direction,
            "sweep.monitor": settings.monitor,
        }
        run = self.client.create_run(
            self.experiment_id, run_name=f"sweep-{settings.study_name}", tags=_resolved_tags(tags)
        )
        self.parent_id = run.info.run_id
        study.set_user_attr(PARENT_ATTR, self.parent_id)
        space = {
            name: {k: v for k, v in vars(spec).items() if v not in (None, ())}
            for name, spec in settings.space.items()
        }
        self.client.log_dict(self.parent_id, space, "sweep/search_space.json")
        return self.parent_id

    def update_parent(self, settings: SweepSettings) -> None:
        """Settings that may change on resume (budget, sampler, pruner) as tags."""
        assert self.parent_id is not None
        for key, value in {
            "sweep.n_trials": settings.n_trials,
            "sweep.sampler": json.dumps(settings.sampler, default=str),
            "sweep.pruner": settings.pruner.get("type", "none"),
        }.items():
            self.client.set_tag(self.parent_id, key, str(value))

    def start_trial(self, trial: Any, params: dict[str, Any], study_name: str) -> str:
        """A nested run for the trial; its id goes to the trial's logger."""
        tags: dict[str, Any] = {
            "mlflow.parentRunId": self.parent_id,
            "sweep.study": study_name,
            "sweep.trial": trial.number,
            **{f"sweep.param.{k}": v for k, v in params.items()},
        }
        retry_of = retried_from(trial)
        if retry_of is not None:
            tags["sweep.retry_of"] = retry_of
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{study_name}-trial{trial.number:03d}",
            tags=_resolved_tags(tags),
        )
        return run.info.run_id

    def end_trial(self, run_id: str, state: str, value: float | None = None) -> None:
        """Final status (PRUNED -> KILLED) and the trial state as a tag."""
        self.client.set_tag(run_id, "sweep.state", state)
        if value is not None:
            self.client.set_tag(run_id, "sweep.value", f"{value:.6g}")
        self.client.set_terminated(run_id, MLFLOW_STATUS[state])

    def summarise(self, study: Any, budget: Budget, settings: SweepSettings) -> None:
        """Best trial, trials table and plots on the parent; closes it once the budget is spent."""
        from optuna.trial import TrialState

        assert self.parent_id is not None
        run_id = self.parent_id
        trials = study.get_trials(deepcopy=False)
        self._close_dead_runs(trials)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
        self.client.log_dict(run_id, counts, "sweep/trial_states.json")
        self.client.log_text(
            run_id, study.trials_dataframe().to_csv(index=False), "sweep/trials.csv"
        )
        if complete:
            best = study.best_trial
            self.client.set_tag(run_id, "best.trial", str(best.number))
            for key, value in best.params.items():
                self.client.set_tag(run_id, f"best.param.{key}", str(value))
            self.client.log_metric(
                run_id, f"best_{settings.monitor}", best.value, step=budget.spent
            )
            summary = {"number": best.number, "value": best.value, "params": best.params}
            self.client.log_dict(run_id, summary, "sweep/best_trial.json")
            self._plots(study, run_id)
        if budget.done and budget.running == 0:
            self.client.set_terminated(run_id, "FINISHED")

    def _close_dead_runs(self, trials: list[Any]) -> None:
        """Runs of trials failed by heartbeat (their worker died) would stay RUNNING forever."""
        from optuna.trial import TrialState

        for trial in trials:
            run_id = trial.user_attrs.get(RUN_ATTR)
            if trial.state != TrialState.FAIL or not run_id:
                continue
            if self.client.get_run(run_id).info.status == "RUNNING":
                self.end_trial(run_id, "FAIL")

    def _plots(self, study: Any, run_id: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as optuna_plots

        for name, plot in (
            ("optimization_history", optuna_plots.plot_optimization_history),
            ("param_importances", optuna_plots.plot_param_importances),
        ):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    axes = plot(study)
                figure = axes.figure
                self.client.log_figure(run_id, figure, f"plots/{name}.png")
                plt.close(figure)
            except Exception as error:  # too few trials for importances, a constant parameter
                log.warning("no %s plot: %s", name, error)
