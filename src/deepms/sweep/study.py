"""Optuna objects from the sweep settings: storage with heartbeats, sampler, pruner, study."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from deepms.sweep.settings import SweepSettings


def _quiet_experimental() -> None:
    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)


def open_storage(settings: SweepSettings) -> Any:
    """RDB storage with heartbeats (a dead worker's trial is failed and re-queued once stale);
    ``None`` for an in-memory study."""
    if settings.storage is None:
        return None
    import optuna
    from sqlalchemy.engine import make_url

    _quiet_experimental()
    url = make_url(settings.storage)
    engine_kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # several workers write one file: wait for the write lock instead of failing at once
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    heartbeat = settings.heartbeat_interval
    return optuna.storages.RDBStorage(
        settings.storage,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=heartbeat,
        grace_period=settings.grace_period if heartbeat else None,
        heartbeat_stale_trial_callback=(
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=settings.max_retry)
            if heartbeat and settings.max_retry > 0
            else None
        ),
    )


def _options(config: dict[str, Any], kind: str) -> dict[str, Any]:
    options = config.get(kind) or {}
    return {k: v for k, v in options.items() if v is not None}


def make_sampler(config: dict[str, Any], seed_offset: int = 0) -> Any:
    """TPE (default) or random; the seed is shifted per claimed trial so that parallel workers
    sharing one seed do not draw the same start-up points, while a single worker reproduces."""
    import optuna

    kind = str(config.get("type", "tpe")).lower()
    seed = config.get("seed")
    seed = None if seed is None else int(seed) + seed_offset
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **_options(config, "tpe"))
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"hydra.sweeper.sampler.type must be tpe or random, got {kind!r}")


def make_pruner(config: dict[str, Any]) -> Any:
    """median (default), hyperband, threshold (a floor or ceiling on the metric) or none."""
    import optuna

    kind = str(config.get("type", "median")).lower()
    options = _options(config, kind)
    if kind == "median":
        return optuna.pruners.MedianPruner(**options)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(**options)
    if kind == "threshold":
        return optuna.pruners.ThresholdPruner(**options)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"hydra.sweeper.pruner.type must be median/hyperband/threshold/none: {kind}")


def open_study(settings: SweepSettings, storage: Any) -> Any:
    """Create the study or load it (same name = resume); its direction must not change."""
    import optuna

    study = optuna.create_study(
        storage=storage,
        study_name=settings.study_name,
        direction=settings.direction,
        sampler=make_sampler(settings.sampler),
        pruner=make_pruner(settings.pruner),
        load_if_exists=True,
    )
    expected = optuna.study.StudyDirection[settings.direction.upper()]
    if study.direction != expected:
        raise ValueError(
            f"study {settings.study_name!r} exists with direction {study.direction.name.lower()}, "
            f"not {settings.direction}: pick another hydra.sweeper.study_name"
        )
    return study


def redact(storage: str | None) -> str:
    """The storage URL without its password, for logs and MLflow tags."""
    if storage is None:
        return "memory"
    from sqlalchemy.engine import make_url

    return make_url(storage).render_as_string(hide_password=True)
