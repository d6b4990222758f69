"""MLflow set-up and run lineage: where runs go and what each run records about itself."""

from deepms.tracking.lineage import git_commit, log_run_lineage
from deepms.tracking.mlflow_setup import create_mlflow_logger, default_tracking_uri, log_figure

__all__ = [
    "create_mlflow_logger",
    "default_tracking_uri",
    "git_commit",
    "log_figure",
    "log_run_lineage",
]
