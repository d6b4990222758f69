"""Run lineage: enough to say which code, config and data produced a model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from deepms.tracking.mlflow_setup import log_tags, log_text


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
    data_lineage: dict[str, Any],
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
    log_text(loggers, json.dumps(data_lineage, indent=2, default=str), "data/lineage.json")
    return tags
