"""Run lineage: enough to say which code, config and data produced a model.

The data lineage goes to MLflow twice: as ``data/lineage.json`` (complete: every file's sha256,
samples per part, dropped records) and as MLflow datasets (``log_input``: one per source, shown in
the run's Datasets panel and searchable by digest).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepms.tracking.mlflow_setup import _mlflow_loggers, log_tags, log_text

#: MLflow stores at most 36 characters of a dataset digest
DIGEST_LENGTH = 36


def git_commit(root: str | Path = ".") -> tuple[str, bool]:
    """(commit sha, dirty) of the working tree, ("unknown", False) outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha, bool(status)
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested dict into dotted keys (MLflow params are flat)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def count_parameters(model: Any) -> tuple[int, int]:
    """(total, trainable) parameter counts of a torch module."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def log_run_lineage(
    loggers: Any,
    config: dict[str, Any],
    config_yaml: str,
    data_lineage: Mapping[str, Any],
    model: Any,
    root: str | Path = ".",
) -> dict[str, Any]:
    """Log params, tags and artifacts that make a run reproducible; returns the tags it set."""
    sha, dirty = git_commit(root)
    total, trainable = count_parameters(model)
    model_target = str(config.get("model", {}).get("_target_", "model"))
    tags = {
        "task": config.get("task", {}).get("name", "unknown"),
        "model": model_target.rsplit(".", 1)[-1],
        "data": data_lineage.get("name", "unknown"),
        "split": data_lineage.get("split", "unknown"),
        "seed": config.get("seed"),
        "git_commit": sha,
        "git_dirty": dirty,
        "mlflow.source.git.commit": sha,
        "n_parameters": total,
        **{f"tag.{k}": v for k, v in (config.get("tags") or {}).items()},
    }
    log_tags(loggers, tags)
    params = {k: v for k, v in flatten(config).items() if not k.startswith("hydra")}
    params["n_parameters"] = total
    params["n_trainable_parameters"] = trainable
    for logger in loggers if isinstance(loggers, list | tuple) else [loggers]:
        if logger is not None:
            logger.log_hyperparams(params)
    log_text(loggers, config_yaml, "config/config.yaml")
    text = json.dumps(dict(data_lineage), indent=2, default=str)
    log_text(loggers, text, "data/lineage.json")
    return tags


@dataclass(frozen=True)
class DatasetInput:
    """One source of a run as an MLflow dataset: its files' sha256, where it is, what it fed."""

    name: str
    files: Mapping[str, str]  # file (catalogue path or absolute path) -> sha256
    source: str  # catalogue URL or local path
    context: str  # the part or split it fed, e.g. "train" or "grouped_80_10_10_seed42"
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """The file's sha256; for several files, the sha256 of their ``sha256  file`` lines."""
        if len(self.files) == 1:
            return next(iter(self.files.values()))
        lines = "".join(f"{sha}  {name}\n" for name, sha in sorted(self.files.items()))
        return hashlib.sha256(lines.encode()).hexdigest()

    @property
    def digest(self) -> str:
        """The sha256 cut to what MLflow stores (36 hex digits); the full one is in the profile."""
        return self.sha256[:DIGEST_LENGTH]

    def to_mlflow(self) -> Any:
        """MLflow's ``DatasetInput`` entity (what ``mlflow.log_input`` logs)."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.http_dataset_source import HTTPDatasetSource
        from mlflow.entities import Dataset as MlflowDataset
        from mlflow.entities import DatasetInput as MlflowDatasetInput
        from mlflow.entities import InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        if self.source.startswith(("http://", "https://")):
            source = HTTPDatasetSource(self.source)
        else:
            with warnings.catch_warnings():  # several local source kinds match a path
                warnings.simplefilter("ignore")
                source = resolve_dataset_source(self.source)
        entity = MlflowDataset(
            name=self.name,
            digest=self.digest,
            source_type=source._get_source_type(),
            source=source.to_json(),
            profile=json.dumps({"sha256": self.sha256, "files": dict(self.files)}),
        )
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, self.context)]
        tags += [InputTag(k, str(v)) for k, v in self.tags.items()]
        return MlflowDatasetInput(entity, tags)


def log_dataset_inputs(loggers: Any, inputs: Sequence[DatasetInput]) -> None:
    """Log each source as an MLflow dataset input of every MLflow logger's run."""
    if not inputs:
        return
    for logger in _mlflow_loggers(loggers):
        logger.experiment.log_inputs(logger.run_id, datasets=[i.to_mlflow() for i in inputs])
