"""The sweeper plugin class and its structured config.

Settings live under ``hydra.sweeper``; ``conf/sweep/<task>.yaml`` selects this sweeper and sets the
search space. The work is done by :func:`deepms.sweep.driver.run_sweep`, imported lazily.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


def _sampler_defaults() -> dict[str, Any]:
    return {"type": "tpe", "seed": "${seed}", "tpe": {"n_startup_trials": 10}, "random": {}}


def _pruner_defaults() -> dict[str, Any]:
    return {
        "type": "median",
        "median": {"n_startup_trials": 5, "n_warmup_steps": 2},
        "hyperband": {
            "min_resource": 1,
            "max_resource": "${trainer.max_epochs}",
            "reduction_factor": 3,
        },
        "threshold": {"lower": None, "upper": None, "n_warmup_steps": 0},
        "none": {},
    }


@dataclass
class DeepmsOptunaSweeperConf:
    """Defaults for ``hydra.sweeper``; every key can be overridden on the command line."""

    _target_: str = "hydra_plugins.deepms_optuna_sweeper.optuna_sweeper.DeepmsOptunaSweeper"
    study_name: str = "${task.name}"
    # null: $DEEPMS_OPTUNA_STORAGE, else sqlite:///<paths.mlruns_dir>/optuna.db
    storage: str | None = None
    n_trials: int = 20  # budget over the whole study: complete + pruned + failed trials
    direction: str = "${task.mode}"  # max | min | maximize | minimize
    monitor: str = "${task.monitor}"  # reported to the pruner every validation epoch
    sampler: dict[str, Any] = field(default_factory=_sampler_defaults)
    pruner: dict[str, Any] = field(default_factory=_pruner_defaults)
    heartbeat_interval: int | None = 60  # seconds; null disables stale-trial detection
    grace_period: int | None = 180  # a RUNNING trial silent this long is failed and retried
    max_retry: int = 1  # re-runs of a trial whose worker died before it counts as FAIL
    params: dict[str, Any] = field(default_factory=dict)  # the search space, see conf/sweep/


ConfigStore.instance().store(
    group="hydra/sweeper", name="deepms_optuna", node=DeepmsOptunaSweeperConf, provider="deepms"
)


class DeepmsOptunaSweeper(Sweeper):
    """One sweep = one Optuna study; trials run in this process through Hydra's launcher."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from deepms.sweep.driver import run_sweep
        from deepms.sweep.settings import SweepSettings

        assert self.config is not None and self.hydra_context is not None
        settings = {
            k: OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig) else v
            for k, v in self.settings.items()
        }
        return run_sweep(
            SweepSettings.from_dict(settings, self.config),
            config=self.config,
            launcher=self.launcher,
            config_loader=self.hydra_context.config_loader,
            arguments=list(arguments),
        )
