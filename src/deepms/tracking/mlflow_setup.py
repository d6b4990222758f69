"""Create the MLflow logger and log artifacts through it.

MLflow 3 refuses a bare ``./mlruns`` file store, so local runs use a sqlite database inside
``mlruns/`` with artifacts under ``mlruns/artifacts``. Remote stores (``http://...``) keep their own
artifact root: the local path is only applied when the store is local.

Experiments are created as model-training experiments (tag ``mlflow.experimentKind``): MLflow 3's
UI otherwise opens them in its GenAI workspace, where training runs' metrics and data sets hide.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

LOCAL_SCHEMES = ("sqlite:", "file:", "postgresql:", "mysql:")
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"


def default_tracking_uri(root: str | Path = ".") -> str:
    """The tracking URI a run uses when nothing is configured: env var, else sqlite in mlruns/."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(root) / 'mlruns' / 'mlflow.db').resolve()}"


def _prepare_local_store(tracking_uri: str) -> None:
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def artifact_location(tracking_uri: str, artifact_root: str | None) -> str | None:
    """The experiment's artifact location: ``artifact_root`` as a URI, for local stores only."""
    if artifact_root and tracking_uri.startswith(LOCAL_SCHEMES):
        return Path(artifact_root).resolve().as_uri()
    return None


def ensure_experiment(client: Any, name: str, location: str | None = None) -> str:
    """The id of experiment ``name``, created as a model-training experiment when missing.

    An existing experiment without a kind gets the tag too; one a user set to another kind keeps it.
    """
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage == "deleted":
        try:
            return client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND}
            )
        except MlflowException:  # another process created it just now
            experiment = client.get_experiment_by_name(name)
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        client.set_experiment_tag(
            experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
        )
    return experiment.experiment_id


def create_mlflow_logger(
    experiment_name: str,
    run_name: str | None = None,
    tracking_uri: str | None = None,
    artifact_root: str | None = None,
    log_model: bool | str = True,
    tags: dict[str, Any] | None = None,
    run_id: str | None = None,
):
    """Lightning's MLFlowLogger, with the local artifact root applied only to local stores.

    The experiment is made here (a model-training experiment), not by the logger on first use.
    """
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.tracking import MlflowClient

    tracking_uri = tracking_uri or default_tracking_uri()
    _prepare_local_store(tracking_uri)
    location = artifact_location(tracking_uri, artifact_root)
    if run_id is None:
        ensure_experiment(MlflowClient(tracking_uri), experiment_name, location)
    return MLFlowLogger(
        experiment_name=experiment_name,
        run_name=run_name,
        tracking_uri=tracking_uri,
        artifact_location=location,
        log_model=log_model,
        tags={k: str(v) for k, v in (tags or {}).items()},
        run_id=run_id,
    )


def _mlflow_loggers(loggers: Any) -> list:
    from lightning.pytorch.loggers import MLFlowLogger

    if loggers is None:
        return []
    if not isinstance(loggers, list | tuple):
        loggers = [loggers]
    return [lg for lg in loggers if isinstance(lg, MLFlowLogger)]


def log_figure(loggers: Any, figure: Any, artifact_file: str, close: bool = True) -> bool:
    """Log a matplotlib figure as a PNG artifact to every MLflow logger; False if there is none."""
    targets = _mlflow_loggers(loggers)
    for logger in targets:
        logger.experiment.log_figure(logger.run_id, figure, artifact_file)
    if close:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return bool(targets)


def log_text(loggers: Any, text: str, artifact_file: str) -> None:
    """Log a text artifact (YAML, JSON) to every MLflow logger."""
    for logger in _mlflow_loggers(loggers):
        logger.experiment.log_text(logger.run_id, text, artifact_file)


def log_tags(loggers: Any, tags: dict[str, Any]) -> None:
    """Set tags on every MLflow logger's run (MLflow's UI filters and groups by these)."""
    for logger in _mlflow_loggers(loggers):
        for key, value in tags.items():
            logger.experiment.set_tag(logger.run_id, key, str(value))


def figure_to_png(figure: Any) -> bytes:
    """PNG bytes of a figure (for tests and for writing files next to the run)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()
