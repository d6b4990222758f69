"""Load a predictor from any model reference a user may hold.

``models:/NAME@ALIAS`` and ``models:/NAME/VERSION`` (registry), ``runs:/RUN_ID[/PATH]`` (a run's
best checkpoint, a checkpoint it logged, or a model it logged), or a local path (a checkpoint file
or an MLflow model folder). Checkpoints name no predictor, so one comes from the run's config,
from the Hydra config beside a local checkpoint (``<run>/.hydra/config.yaml``), or ``predictor``.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from typing import Any

from deepms.registry.predictor import ModelLoadError, Predictor, load_class


def _pyfunc(uri: str, tracking_uri: str | None) -> Predictor:
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from deepms.registry.pyfunc import DeepMSPyFunc
    from deepms.registry.runs import tracking_uri_or_default, using_tracking_uri

    try:
        with using_tracking_uri(tracking_uri_or_default(tracking_uri)):
            model = mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise ModelLoadError(f"{uri}: {exc.message}") from exc
    except OSError as exc:
        raise ModelLoadError(f"{uri}: model files missing or unreadable: {exc}") from exc
    wrapped = model.unwrap_python_model()
    if not isinstance(wrapped, DeepMSPyFunc) or wrapped.predictor is None:
        raise ModelLoadError(f"{uri}: not a deepms model (no deepms predictor inside)")
    return wrapped.predictor


def _hydra_predictor(checkpoint: Path) -> str | None:
    import yaml

    for folder in (checkpoint.parent, checkpoint.parent.parent):
        config = folder / ".hydra" / "config.yaml"
        if config.is_file():
            return ((yaml.safe_load(config.read_text()) or {}).get("task") or {}).get("predictor")
    return None


def _from_run(run_id: str, path: str, tracking_uri: str | None, predictor: str | None):
    from deepms.registry.runs import best_checkpoint, client_for, get_run, run_config

    client = client_for(tracking_uri)
    get_run(client, run_id)
    if path and not path.endswith(".ckpt"):
        return _pyfunc(f"runs:/{run_id}/{path}", tracking_uri)
    predictor = predictor or (run_config(client, run_id).get("task") or {}).get("predictor")
    if not predictor:
        raise ModelLoadError(f"runs:/{run_id}: its config names no task.predictor; pass one")
    with tempfile.TemporaryDirectory() as tmp:
        if path:
            local = Path(client.download_artifacts(run_id, path, tmp))
        else:
            local = best_checkpoint(client, run_id, tmp)
        return load_class(predictor).from_checkpoint(local)


def load_predictor(
    uri: str,
    *,
    tracking_uri: str | None = None,
    predictor: str | None = None,
    **options: Any,
) -> Predictor:
    """The predictor behind ``uri``, configured with ``options`` (batch size, precision, ...)."""
    text = str(uri)
    if text.startswith("models:/"):
        loaded = _pyfunc(text, tracking_uri)
    elif text.startswith("runs:/"):
        run_id, _, path = text.removeprefix("runs:/").strip("/").partition("/")
        loaded = _from_run(run_id, path, tracking_uri, predictor)
    else:
        local = Path(text)
        if local.is_dir() and (local / "MLmodel").is_file():
            loaded = _pyfunc(str(local.resolve()), tracking_uri)
        elif local.is_file():
            predictor = predictor or _hydra_predictor(local)
            if not predictor:
                raise ModelLoadError(
                    f"{local}: cannot tell which predictor serves this checkpoint (no "
                    ".hydra/config.yaml beside its run); pass --predictor with the task "
                    "config's task.predictor"
                )
            loaded = load_class(predictor).from_checkpoint(local)
        else:
            raise ModelLoadError(
                f"{text}: not a model reference; use models:/NAME@ALIAS, models:/NAME/VERSION, "
                "runs:/RUN_ID[/PATH], a checkpoint file or an MLflow model folder"
            )
    given = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(loaded.configure).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise ModelLoadError(
                f"{text}: {type(loaded).__name__} does not take option(s) {', '.join(unknown)}; "
                f"it takes {', '.join(accepted) or 'none'}"
            )
    loaded.configure(**given)
    return loaded


def resolve_checkpoint(uri: str, tracking_uri: str | None = None, dst: str | None = None) -> Path:
    """The checkpoint file inside a registered model (``models:/...``), downloaded to ``dst``.

    For code that needs the raw weights, e.g. fine-tuning from ``models:/deeprt@champion``.
    """
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from deepms.registry.runs import tracking_uri_or_default

    target = dst or tempfile.mkdtemp(prefix="deepms-model-")
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=str(uri),
                dst_path=target,
                tracking_uri=tracking_uri_or_default(tracking_uri),
            )
        )
    except MlflowException as exc:
        raise ModelLoadError(f"{uri}: {exc.message}") from exc
    found = sorted(local.rglob("*.ckpt")) if local.is_dir() else [local]
    if not found:
        raise ModelLoadError(f"{uri}: the model holds no checkpoint file")
    return found[0]
