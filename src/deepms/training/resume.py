"""Resume an interrupted run into the same MLflow run from its last checkpoint.

``python train.py resume=RUN_ID`` (or ``resume=last``) reloads the run's own resolved config
(``config/config.yaml`` artifact), so the resumed run trains exactly what the first one did: same
data, split, model and output folder, whose ``checkpoints/last.ckpt`` it continues from. Only the
``trainer`` node may be changed on the command line (e.g. more epochs, other devices).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from deepms.errors import DeepMSError

log = logging.getLogger(__name__)
UNFINISHED = ("RUNNING", "FAILED", "KILLED", "SCHEDULED")


class ResumeError(DeepMSError):
    """The run to resume or its checkpoint cannot be found."""


def _client(tracking_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def find_run(tracking_uri: str, experiment: str, resume: str) -> Any:
    """The MLflow run named by ``resume``: a run id, or ``last`` (newest unfinished run)."""
    client = _client(tracking_uri)
    if resume != "last":
        try:
            return client.get_run(resume)
        except Exception as err:  # MLflow raises its own exception types per store
            raise ResumeError(f"resume={resume}: no such run in {tracking_uri} ({err})") from err
    found = client.get_experiment_by_name(experiment)
    recent = (
        client.search_runs(
            [found.experiment_id], order_by=["attributes.start_time DESC"], max_results=50
        )
        if found
        else []
    )
    unfinished = [r for r in recent if r.info.status in UNFINISHED]
    if not unfinished:
        raise ResumeError(f"resume=last: experiment {experiment!r} has no unfinished run")
    return unfinished[0]


def prepare_resume(cfg: DictConfig) -> DictConfig:
    """The config to resume with: the run's saved config, its run id and its last checkpoint."""
    tracking_uri = cfg.logger.mlflow.tracking_uri
    run = find_run(tracking_uri, cfg.task.name, str(cfg.resume))
    client = _client(tracking_uri)
    try:
        text = client.download_artifacts(run.info.run_id, "config/config.yaml")
    except Exception as err:
        raise ResumeError(f"run {run.info.run_id} has no config/config.yaml artifact") from err
    saved = OmegaConf.load(text)
    checkpoint = Path(saved.paths.output_dir) / "checkpoints" / "last.ckpt"
    if not checkpoint.exists():
        raise ResumeError(
            f"run {run.info.run_id}: no checkpoint at {checkpoint}; it stopped before its first "
            "epoch ended, start it again instead"
        )
    saved.trainer = OmegaConf.merge(saved.trainer, cfg.trainer)
    saved.ckpt_path = str(checkpoint)
    saved.resume = run.info.run_id
    saved.logger.mlflow.run_id = run.info.run_id
    log.info("resuming run %s from %s", run.info.run_id, checkpoint)
    return saved
