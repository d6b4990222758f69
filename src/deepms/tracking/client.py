"""The MLflow client every deepms command shares: which store, and a client bound to it.

Registry and tracking code both read runs; this module sits in ``tracking`` so that ``tracking``
never imports ``registry`` (the registry builds on tracking, not the other way round).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


def tracking_uri_or_default(tracking_uri: str | None = None) -> str:
    """The given URI, else ``MLFLOW_TRACKING_URI``, else the project's ``mlruns/mlflow.db``."""
    from deepms.tracking.mlflow_setup import default_tracking_uri

    return tracking_uri or default_tracking_uri(os.environ.get("DEEPMS_ROOT", "."))


def client_for(tracking_uri: str | None = None) -> Any:
    """An ``MlflowClient`` whose tracking and registry URIs are both the chosen store."""
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri_or_default(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextlib.contextmanager
def using_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API reads a global URI: set it for the block, then put back the old one."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
