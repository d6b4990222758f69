"""Sweep settings: ``hydra.sweeper`` checked, with the defaults that need the composed config."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from deepms.sweep.space import ParamSpec, parse_space

DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}
STORAGE_ENV = "DEEPMS_OPTUNA_STORAGE"
IN_MEMORY = "memory"


def default_storage(config: DictConfig) -> str:
    """$DEEPMS_OPTUNA_STORAGE, else a sqlite file next to the MLflow store (absolute path)."""
    env = os.environ.get(STORAGE_ENV)
    if env:
        return env
    mlruns = config.get("paths", {}).get("mlruns_dir") or "mlruns"
    return f"sqlite:///{Path(str(mlruns)).resolve() / 'optuna.db'}"


@dataclass(frozen=True)
class SweepSettings:
    """Everything one worker needs to take part in a study."""

    study_name: str
    storage: str | None  # SQLAlchemy URL; None = in memory (no resume, no parallel workers)
    n_trials: int
    direction: str
    monitor: str
    space: dict[str, ParamSpec]
    sampler: dict[str, Any] = field(default_factory=lambda: {"type": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"type": "none"})
    heartbeat_interval: int | None = 60
    grace_period: int | None = 180
    max_retry: int = 1

    @classmethod
    def from_dict(cls, raw: dict[str, Any], config: DictConfig) -> SweepSettings:
        """Validate ``hydra.sweeper`` (resolved) early: a bad setting should stop the sweep before
        any trial is claimed."""
        direction = DIRECTIONS.get(str(raw.get("direction", "")).lower())
        if direction is None:
            raise ValueError(f"hydra.sweeper.direction must be one of {sorted(DIRECTIONS)}")
        n_trials = int(raw.get("n_trials", 0))
        if n_trials < 1:
            raise ValueError(f"hydra.sweeper.n_trials must be >= 1, got {n_trials}")
        storage = raw.get("storage") or default_storage(config)
        space = parse_space(raw.get("params") or {})
        if not space:
            raise ValueError("hydra.sweeper.params is empty: nothing to search (see conf/sweep/)")
        return cls(
            study_name=str(raw["study_name"]),
            storage=None if storage == IN_MEMORY else str(storage),
            n_trials=n_trials,
            direction=direction,
            monitor=str(raw["monitor"]),
            space=space,
            sampler=dict(raw.get("sampler") or {"type": "tpe"}),
            pruner=dict(raw.get("pruner") or {"type": "none"}),
            heartbeat_interval=raw.get("heartbeat_interval"),
            grace_period=raw.get("grace_period"),
            max_retry=int(raw.get("max_retry", 1)),
        )
