"""MLflow plumbing shared by the registry commands: clients, runs, their config and checkpoints."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepms.errors import DeepMSError


class RegistryError(DeepMSError):
    """A run, model or version is missing, or a registry request makes no sense."""


def tracking_uri_or_default(tracking_uri: str | None = None) -> str:
    """The given URI, else ``MLFLOW_TRACKING_URI``, else the project's ``mlruns/mlflow.db``."""
    from deepms.tracking import default_tracking_uri

    return tracking_uri or default_tracking_uri(os.environ.get("DEEPMS_ROOT", "."))


def client_for(tracking_uri: str | None = None) -> Any:
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


def get_run(client: Any, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise RegistryError(f"no run {run_id!r} in {client.tracking_uri}") from exc


def run_config(client: Any, run_id: str) -> dict[str, Any]:
    """The run's resolved config (``config/config.yaml``), {} when the run has none."""
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "config/config.yaml", tmp)
        except Exception:  # MLflow raises different types per artifact store
            return {}
        return yaml.safe_load(Path(path).read_text()) or {}


def _artifact_files(client: Any, run_id: str, path: str = "", depth: int = 4) -> list[str]:
    files: list[str] = []
    for item in client.list_artifacts(run_id, path or None):
        if item.is_dir and depth > 0:
            files += _artifact_files(client, run_id, item.path, depth - 1)
        elif not item.is_dir:
            files.append(item.path)
    return files


def best_checkpoint(client: Any, run_id: str, dst: str | Path) -> Path:
    """Download the run's best checkpoint: logged with alias ``best``, best score among several."""
    import yaml

    files = _artifact_files(client, run_id)
    candidates = []
    for ckpt in (f for f in files if f.endswith(".ckpt")):
        folder = ckpt.rpartition("/")[0]
        aliases, score, mode = "", None, "max"
        if f"{folder}/aliases.txt" in files:
            aliases = Path(client.download_artifacts(run_id, f"{folder}/aliases.txt", dst))
            aliases = aliases.read_text()
        if f"{folder}/metadata.yaml" in files:
            meta = yaml.safe_load(
                Path(client.download_artifacts(run_id, f"{folder}/metadata.yaml", dst)).read_text()
            )
            score, mode = meta.get("score"), meta.get("Checkpoint", {}).get("mode", "max")
        if "best" in aliases or "best" in ckpt.rpartition("/")[2]:
            sign = -1.0 if mode == "min" else 1.0
            candidates.append((score is not None, sign * float(score or 0.0), ckpt))
    if not candidates:
        raise RegistryError(f"run {run_id} logged no best checkpoint (artifacts: {files[:10]})")
    chosen = max(candidates)[2]
    return Path(client.download_artifacts(run_id, chosen, dst))
