"""Create the MLflow logger and log artifacts through it.

MLflow 3 refuses a bare ``./mlruns`` file store, so local runs use a sqlite database inside
``mlruns/`` with artifacts under ``mlruns/artifacts``. Remote stores (``http://...``) keep their own
artifact root: the local path is only applied when the store is local.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

LOCAL_SCHEMES = ("sqlite:", "file:", "postgresql:", "mysql:")


def default_tracking_uri(root: str | Path = ".") -> str:
    """The tracking URI a run uses when nothing is configured: env var, else sqlite in mlruns/."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(root) / 'mlruns' / 'mlflow.db').resolve()}"


def _prepare_local_store(tracking_uri: str) -> None:
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def create_mlflow_logger(
    experiment_name: str,
    run_name: str | None = None,
    tracking_uri: str | None = None,
    artifact_root: str | None = None,
    log_model: bool | str = True,
    tags: dict[str, Any] | None = None,
    run_id: str | None = None,
):
    """Lightning's MLFlowLogger, with the local artifact root applied only to local stores."""
    from lightning.pytorch.loggers import MLFlowLogger

    tracking_uri = tracking_uri or default_tracking_uri()
    _prepare_local_store(tracking_uri)
    artifact_location = None
    if artifact_root and tracking_uri.startswith(LOCAL_SCHEMES):
        artifact_location = Path(artifact_root).resolve().as_uri()
    return MLFlowLogger(
        experiment_name=experiment_name,
        run_name=run_name,
        tracking_uri=tracking_uri,
        artifact_location=artifact_location,
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
