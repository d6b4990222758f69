"""Model references: from a URI or path to a local checkpoint, and from a checkpoint to a model.

One place answers each question every loader asks:

- which store: :func:`deepms.tracking.client.client_for` (tracking and registry URI passed to
  MLflow explicitly, never through environment variables);
- a run's config: :func:`run_config` (``config/config.yaml``, downloaded here only);
- a run's best checkpoint: :func:`best_checkpoint` (:func:`pick_best`: a checkpoint with alias
  ``best`` or a ``best*`` file name, the best score among several; none is an error, never a
  fallback to ``last``);
- what a reference names: :func:`resolve_model` for ``models:/NAME@ALIAS``,
  ``models:/NAME/VERSION``, ``runs:/RUN_ID[/PATH]``, an MLflow model folder, a checkpoint folder
  or a checkpoint file;
- reading a checkpoint: :func:`load_checkpoint` (weights only unless trusted) and
  :func:`build_model` (the class the checkpoint records, see :data:`MODEL_CLASS_KEY`).
"""

from __future__ import annotations

import importlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepms.errors import DeepMSError
from deepms.registry.predictor import ModelLoadError

#: checkpoint keys written by :class:`deepms.training.module.TaskModule`
MODEL_CLASS_KEY = "deepms_model_class"
PREDICTOR_KEY = "deepms_predictor"
DESCRIPTION_KEY = "deepms_description"


class RegistryError(DeepMSError):
    """A run, model or version is missing, or a registry request makes no sense."""


# --- runs -----------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class CheckpointEntry:
    """A checkpoint file with what Lightning's MLflow logger wrote beside it."""

    path: str
    aliases: str = ""
    score: float | None = None
    mode: str = "max"


def pick_best(entries: list[CheckpointEntry], where: str) -> str:
    """THE best-checkpoint rule: among checkpoints aliased ``best`` or named ``best*``, the best
    score (by the checkpoint's mode), then the last name; none is an error naming ``where``."""
    candidates = []
    for entry in entries:
        name = entry.path.replace("\\", "/").rpartition("/")[2]
        if "best" in entry.aliases or name.startswith("best"):
            sign = -1.0 if entry.mode == "min" else 1.0
            score = sign * float(entry.score) if entry.score is not None else 0.0
            candidates.append((entry.score is not None, score, entry.path))
    if not candidates:
        found = ", ".join(e.path for e in entries[:10]) or "none"
        raise RegistryError(f"{where}: no best checkpoint (checkpoints: {found})")
    return max(candidates)[2]


def best_checkpoint(client: Any, run_id: str, dst: str | Path) -> Path:
    """Download the run's best checkpoint (:func:`pick_best`) into ``dst``."""
    import yaml

    files = _artifact_files(client, run_id)
    entries = []
    for ckpt in (f for f in files if f.endswith(".ckpt")):
        folder = ckpt.rpartition("/")[0]
        aliases, score, mode = "", None, "max"
        if f"{folder}/aliases.txt" in files:
            aliases = Path(client.download_artifacts(run_id, f"{folder}/aliases.txt", dst))
            aliases = aliases.read_text()
        if f"{folder}/metadata.yaml" in files:
            local = client.download_artifacts(run_id, f"{folder}/metadata.yaml", dst)
            meta = yaml.safe_load(Path(local).read_text()) or {}
            score, mode = meta.get("score"), (meta.get("Checkpoint") or {}).get("mode", "max")
        entries.append(CheckpointEntry(ckpt, aliases, score, mode))
    chosen = pick_best(entries, f"run {run_id}")
    return Path(client.download_artifacts(run_id, chosen, dst))


# --- references -----------------------------------------------------------------------------------


@dataclass
class ResolvedModel:
    """A local checkpoint and what the reference said about it (predictor, stored description)."""

    checkpoint: Path
    source: str
    predictor: str | None = None
    description: dict[str, Any] = field(default_factory=dict)


def _model_folder(folder: Path, source: str) -> ResolvedModel:
    """A deepms MLflow model folder: its checkpoint artifact, predictor and description."""
    import yaml

    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"{source}: unreadable MLmodel file: {exc}") from exc
    pyfunc = (mlmodel.get("flavors") or {}).get("python_function") or {}
    config = pyfunc.get("config") or {}
    artifact = ((pyfunc.get("artifacts") or {}).get("checkpoint") or {}).get("path")
    if "predictor" not in config or not artifact:
        raise ModelLoadError(
            f"{source}: not a deepms model (MLmodel names no predictor or checkpoint artifact)"
        )
    return ResolvedModel(
        folder / artifact, source, config["predictor"], dict(config.get("description") or {})
    )


def _checkpoint_folder(folder: Path, source: str) -> Path:
    """The best checkpoint under a plain folder (a run's ``checkpoints/``), by :func:`pick_best`;
    a folder holding one checkpoint is that checkpoint."""
    found = sorted(folder.rglob("*.ckpt"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelLoadError(f"{source}: no .ckpt file under {folder}")
    try:
        return Path(pick_best([CheckpointEntry(str(p)) for p in found], source))
    except RegistryError as exc:
        raise ModelLoadError(str(exc)) from exc


def _hydra_predictor(checkpoint: Path) -> str | None:
    """``task.predictor`` of the Hydra run a local checkpoint sits in (``<run>/.hydra``)."""
    import yaml

    for folder in (checkpoint.parent, checkpoint.parent.parent):
        config = folder / ".hydra" / "config.yaml"
        if config.is_file():
            return ((yaml.safe_load(config.read_text()) or {}).get("task") or {}).get("predictor")
    return None


def _local(path: Path, source: str) -> ResolvedModel:
    if path.is_dir() and (path / "MLmodel").is_file():
        return _model_folder(path, source)
    if path.is_dir():
        path = _checkpoint_folder(path, source)
    elif not path.is_file():
        raise ModelLoadError(
            f"{source}: no such checkpoint file, and not a model reference; use "
            "models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID[/PATH], a checkpoint file "
            "or an MLflow model folder"
        )
    return ResolvedModel(path, source, _hydra_predictor(path))


def _registered(uri: str, client: Any, dst: str) -> ResolvedModel:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    reference = uri.removeprefix("models:/").strip("/")
    try:
        if "@" in reference:
            name, _, alias = reference.partition("@")
            version = client.get_model_version_by_alias(name, alias)
        else:
            name, _, number = reference.partition("/")
            version = client.get_model_version(name, number)
        location = client.get_model_version_download_uri(version.name, version.version)
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=dst, tracking_uri=client.tracking_uri
            )
        )
    except MlflowException as exc:
        raise ModelLoadError(f"{uri}: {exc.message}") from exc
    except OSError as exc:
        raise ModelLoadError(f"{uri}: model files missing or unreadable: {exc}") from exc
    return _model_folder(local, uri)


def _from_run(uri: str, client: Any, dst: str) -> ResolvedModel:
    run_id, _, path = uri.removeprefix("runs:/").strip("/").partition("/")
    get_run(client, run_id)
    if path:
        try:
            local = Path(client.download_artifacts(run_id, path, dst))
        except Exception as exc:  # MLflow raises different types per artifact store
            raise ModelLoadError(f"{uri}: no such artifact in run {run_id}: {exc}") from exc
        if local.is_dir() and (local / "MLmodel").is_file():
            return _model_folder(local, uri)
        checkpoint = _checkpoint_folder(local, uri) if local.is_dir() else local
    else:
        checkpoint = best_checkpoint(client, run_id, dst)
    predictor = (run_config(client, run_id).get("task") or {}).get("predictor")
    return ResolvedModel(checkpoint, uri, predictor)


def resolve_model(uri: str, dst: str | Path, tracking_uri: str | None = None) -> ResolvedModel:
    """The local checkpoint ``uri`` names, downloaded into ``dst`` when remote."""
    from deepms.tracking.client import client_for

    text = str(uri)
    if text.startswith(("models:/", "runs:/")):
        client = client_for(tracking_uri)
        if text.startswith("models:/"):
            return _registered(text, client, str(dst))
        return _from_run(text, client, str(dst))
    return _local(Path(text).expanduser(), text)


def resolve_checkpoint(
    uri: str, tracking_uri: str | None = None, dst: str | Path | None = None
) -> Path:
    """The checkpoint file ``uri`` names (for code that needs raw weights, e.g. fine-tuning);
    remote files go to ``dst`` (default: a new temporary folder the caller owns)."""
    target = dst or tempfile.mkdtemp(prefix="deepms-model-")
    return resolve_model(uri, target, tracking_uri).checkpoint


# --- checkpoints ----------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike[str], trusted: bool = False) -> dict[str, Any]:
    """A deepms (Lightning) checkpoint as a dict, on CPU.

    Untrusted (the default) reads with ``weights_only=True``: tensors, numbers, strings, bytes and
    containers only, no code runs from the file. ``trusted=True`` unpickles anything: only for files
    you made (a run re-reading its own best checkpoint). A DeepRT ensemble's fitted scikit-learn
    stack travels as pickled bytes, read untrusted and unpickled by the model's
    ``on_load_checkpoint`` only where its predictor trusts the class (:func:`build_model`). Every
    way a file can be wrong becomes a :class:`ModelLoadError` naming the file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as exc:  # torch raises many types for bad bytes
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if refused:
            raise ModelLoadError(
                f"{path}: the checkpoint holds a pickled {refused[1]} beyond weights, refused "
                "untrusted (trusted=True only for a file you trust)"
            ) from exc
        raise ModelLoadError(
            f"{path}: not a readable checkpoint (corrupt, truncated or not a torch file): {exc}"
        ) from exc
    if not isinstance(state, dict) or not {"state_dict", "hyper_parameters"} <= set(state):
        raise ModelLoadError(
            f"{path}: not a deepms model checkpoint (needs 'state_dict' and 'hyper_parameters')"
        )
    return state


def model_class_of(checkpoint: dict[str, Any], default: str, path: Any = "") -> type:
    """The LightningModule class the checkpoint records (``deepms_model_class``), else
    ``default`` (checkpoints written before the class was recorded)."""
    import lightning.pytorch as pl

    name = str(checkpoint.get(MODEL_CLASS_KEY) or default)
    module_name, _, class_name = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: model class {name!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, pl.LightningModule)):
        raise ModelLoadError(f"{path}: model class {name!r} is not a LightningModule")
    return cls


def build_model(
    checkpoint: dict[str, Any], model_class: type, path: Any = "", trusted: bool = False
) -> Any:
    """The model rebuilt from hyperparameters and weights, in eval mode without gradients.

    A trusted checkpoint also runs the model's own ``on_load_checkpoint`` (e.g. the DeepRT
    ensemble unpickles its stack there).
    """
    name = model_class.__name__
    try:
        model = model_class(**checkpoint["hyper_parameters"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path}: hyperparameters do not fit {name}: {exc}") from exc
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as exc:  # one line per mismatching tensor: show a few
        lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        more = f"; and {len(lines) - 3} more" if len(lines) > 3 else ""
        raise ModelLoadError(
            f"{path}: weights do not fit {name}: {'; '.join(lines[:3]) or exc}{more}"
        ) from exc
    if trusted:
        model.on_load_checkpoint(checkpoint)
    model.eval()
    model.requires_grad_(False)
    return model
