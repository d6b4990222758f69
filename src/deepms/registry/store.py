"""Register, promote and list models in the MLflow model registry.

``register`` logs a run's best checkpoint as a pyfunc model (signature, input example, the
predictor's self-description) linked to the training run, and adds a registry version. ``promote``
moves an alias (``champion``) only when the version's run meets a metric requirement, and leaves
the alias untouched otherwise; the version is tagged with when and why it was promoted.
"""

from __future__ import annotations

import contextlib
import operator
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepms.registry.predictor import Predictor, load_class
from deepms.registry.reference import RegistryError, best_checkpoint, get_run, run_config
from deepms.tracking.client import client_for, tracking_uri_or_default, using_tracking_uri

ENTRY = Path(__file__).with_name("_pyfunc_entry.py")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_REQUIREMENT = re.compile(r"^\s*([\w.\-/]+)\s*(>=|<=|==|>|<)\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*$")
_REQUIREMENTS = ("torch", "lightning", "mlflow", "pandas", "numpy", "pyarrow", "pyteomics", "psims")


class PromotionRefused(RegistryError):
    """The version does not meet the requirement: the alias was left as it was."""


@dataclass(frozen=True)
class Requirement:
    """``metric OP value``, e.g. ``test_median_pcc>=0.85``."""

    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Requirement:
        match = _REQUIREMENT.match(text)
        if not match:
            raise RegistryError(
                f"requirement {text!r}: expected METRIC OP VALUE with OP one of "
                f"{' '.join(_OPS)}, e.g. 'test_median_pcc>=0.85'"
            )
        return cls(match[1], match[2], float(match[3]))

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.value))

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


def _signature(predictor: Predictor, example: Any) -> Any:
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [ColSpec(kind, name, required=req) for name, (kind, req) in predictor.input_schema.items()]
    )
    inferred = infer_signature(example, predictor.predict(example), params=predictor.params or None)
    return ModelSignature(inputs=inputs, outputs=inferred.outputs, params=inferred.params)


def _requirements() -> list[str]:
    """deepms's own runtime dependencies, pinned to the installed versions (for other envs)."""
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement as Dependency

    names = []
    for text in requires("deepms") or []:
        dependency = Dependency(text)
        if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
            names.append(dependency.name)
    pins = []
    for name in names or _REQUIREMENTS:
        with contextlib.suppress(PackageNotFoundError):
            pins.append(f"{name}=={version(name)}")
    return pins


def register(
    run_id: str,
    name: str | None = None,
    *,
    tracking_uri: str | None = None,
    checkpoint: str | Path | None = None,
    predictor: str | None = None,
) -> Any:
    """Log the run's best checkpoint as a pyfunc model and register it as a new version."""
    import mlflow.pyfunc

    uri = tracking_uri_or_default(tracking_uri)
    client = client_for(uri)
    run = get_run(client, run_id)
    task = run_config(client, run_id).get("task") or {}
    predictor_path = predictor or task.get("predictor")
    if not predictor_path:
        raise RegistryError(
            f"run {run_id}: its config names no task.predictor; pass --predictor module.Class"
        )
    name = name or task.get("name") or run.data.tags.get("task")
    if not name:
        raise RegistryError(f"run {run_id}: no task name in its config; pass --name")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(checkpoint) if checkpoint else best_checkpoint(client, run_id, tmp)
        model = load_class(predictor_path).from_checkpoint(ckpt)
        example = model.input_example()
        description = model.describe()
        tags = {"deepms.task": str(task.get("name", name)), "deepms.predictor": predictor_path}
        with using_tracking_uri(uri):
            logged = client.create_logged_model(
                experiment_id=run.info.experiment_id, name=name, source_run_id=run_id, tags=tags
            )
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(ENTRY),
                artifacts={"checkpoint": str(ckpt)},
                model_config={"predictor": predictor_path, "description": description},
                signature=_signature(model, example),
                input_example=example,
                metadata={"deepms": {"run_id": run_id, "checkpoint": ckpt.name, **description}},
                pip_requirements=_requirements(),
                model_id=logged.model_id,
            )
    version_tags = {
        **tags,
        "deepms.checkpoint": ckpt.name,
        "deepms.test_metric": str(task.get("test_metric", "")),
        "deepms.monitor": str(task.get("monitor", "")),
    }
    return _new_version(client, uri, name, info.model_uri, run_id, logged.model_id, version_tags)


def _new_version(client: Any, uri: str, name: str, source: str, run_id: str, model_id: str, tags):
    """Add a registry version (the registered model is created on first use)."""
    from mlflow.exceptions import MlflowException

    with using_tracking_uri(uri):  # the registry resolves models:/ sources via the global URI
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name, description=f"deepms {tags['deepms.task']} models")
        return client.create_model_version(
            name, source, run_id=run_id, tags=tags, model_id=model_id
        )


def _alias_version(client: Any, name: str, alias: str) -> str | None:
    return client.get_registered_model(name).aliases.get(alias)


def promote(
    name: str,
    alias: str = "champion",
    *,
    require: str | Requirement | None = None,
    version: str | int | None = None,
    tracking_uri: str | None = None,
) -> Any:
    """Point ``alias`` at ``version`` (default: the newest) if its run meets ``require``."""
    client = client_for(tracking_uri)
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise RegistryError(f"no registered model {name!r} (`deepms models` lists them)")
    current = _alias_version(client, name, alias)
    unchanged = f"alias {alias!r} unchanged ({f'version {current}' if current else 'not set'})"
    newest = max(int(v.version) for v in versions)
    target = str(version if version is not None else newest)
    chosen = next((v for v in versions if str(v.version) == target), None)
    if chosen is None or chosen.status != "READY":
        known = ", ".join(str(v) for v in sorted(int(v.version) for v in versions))
        state = "does not exist" if chosen is None else f"is {chosen.status}"
        raise PromotionRefused(f"{name} version {target} {state} (versions: {known}); {unchanged}")
    why = "promoted without a requirement"
    if require is not None:
        req = require if isinstance(require, Requirement) else Requirement.parse(require)
        metrics = get_run(client, chosen.run_id).data.metrics if chosen.run_id else {}
        if req.metric not in metrics:
            raise PromotionRefused(
                f"{name} version {target}: its run {chosen.run_id} has no metric {req.metric!r} "
                f"(has: {', '.join(sorted(metrics)) or 'none'}); {unchanged}"
            )
        if not req.holds(metrics[req.metric]):
            raise PromotionRefused(
                f"{name} version {target}: {req.metric} = {metrics[req.metric]:.6g} does not "
                f"satisfy {req}; {unchanged}"
            )
        why = f"{req.metric} = {metrics[req.metric]:.6g} satisfies {req}"
    client.get_model_version(name, target)  # still there right before the alias points at it
    client.set_registered_model_alias(name, alias, target)
    prefix = f"deepms.promoted.{alias}"
    client.set_model_version_tag(name, target, f"{prefix}.at", datetime.now(UTC).isoformat())
    client.set_model_version_tag(name, target, f"{prefix}.why", why)
    client.set_model_version_tag(name, target, f"{prefix}.previous", current or "none")
    return client.get_model_version(name, target)


def list_models(tracking_uri: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
    """One row per model version: aliases, status, run and the task's key metrics."""
    client = client_for(tracking_uri)
    rows: list[dict[str, Any]] = []
    run_metrics: dict[str, dict[str, float]] = {}
    for model in client.search_registered_models():
        if name and model.name != name:
            continue
        aliases = client.get_registered_model(model.name).aliases
        for mv in client.search_model_versions(f"name = '{model.name}'"):
            if mv.run_id and mv.run_id not in run_metrics:
                run_metrics[mv.run_id] = get_run(client, mv.run_id).data.metrics
            metrics = run_metrics.get(mv.run_id, {})
            keys = [mv.tags.get("deepms.test_metric"), mv.tags.get("deepms.monitor")]
            rows.append(
                {
                    "name": model.name,
                    "version": int(mv.version),
                    "aliases": sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
                    "status": mv.status,
                    "run_id": mv.run_id,
                    "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
                    "metrics": {k: metrics[k] for k in keys if k and k in metrics},
                }
            )
    return sorted(rows, key=lambda r: (r["name"], -r["version"]))
