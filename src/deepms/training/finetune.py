"""Start a run from a trained model: fine-tune it, freeze some of its layers, or only calibrate it.

``finetune.from`` names the pretrained model: a checkpoint path, ``runs:/<run_id>[/<artifact>]``
(the run's best checkpoint when no artifact is named) or ``models:/<name>@<alias>`` /
``models:/<name>/<version>`` (through :mod:`deepms.registry` when it is installed). The runner
calls :func:`apply_finetune` right after it builds the model; a model whose inputs depend on the
data (vocabularies) maps the weights itself in ``load_pretrained(checkpoint, mode)``, any other
gets every tensor whose name and shape match. ``finetune.freeze`` lists parameter-name prefixes
to keep fixed. ``finetune.mode=calibrate`` is left to the model (e.g. a piecewise-linear map of
its output, :func:`fit_piecewise_linear`), the classic baseline for a new LC system.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepms.errors import DeepMSError

log = logging.getLogger(__name__)
MODES = ("finetune", "calibrate")


class FinetuneError(DeepMSError):
    """The pretrained model cannot be found or does not fit the model being trained."""


def _checkpoint_in(folder: Path) -> Path:
    found = sorted(folder.rglob("*.ckpt"), key=lambda p: (not p.name.startswith("best"), p.name))
    if not found:
        raise FinetuneError(f"no .ckpt file under {folder}")
    return found[0]


def _from_run(uri: str, tracking_uri: str | None) -> Path:
    from mlflow.tracking import MlflowClient

    run_id, _, artifact = uri.removeprefix("runs:/").partition("/")
    client = MlflowClient(tracking_uri)
    if not artifact:  # the run's best checkpoint (Lightning logs it as best-epochNNN/)
        names = [a.path for a in client.list_artifacts(run_id) if a.is_dir]
        best = [n for n in names if n.startswith("best")] or [n for n in names if n == "last"]
        if not best:
            raise FinetuneError(f"{uri}: run has no best-*/ or last/ checkpoint artifact")
        artifact = sorted(best)[-1]
    local = Path(client.download_artifacts(run_id, artifact))
    return _checkpoint_in(local) if local.is_dir() else local


@contextmanager
def _registry_at(tracking_uri: str | None) -> Iterator[None]:
    """Point MLflow's model registry at ``tracking_uri`` for the duration (``models:/`` lookups
    otherwise go to MLflow's process default, not the store this run tracks to)."""
    old = os.environ.get("MLFLOW_REGISTRY_URI")
    if tracking_uri:
        os.environ["MLFLOW_REGISTRY_URI"] = tracking_uri
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_REGISTRY_URI", None)
        else:
            os.environ["MLFLOW_REGISTRY_URI"] = old


def _from_registry(uri: str, tracking_uri: str | None) -> Path:
    try:
        registry = importlib.import_module("deepms.registry")
    except ImportError as err:
        raise FinetuneError(f"{uri}: models:/ URIs need deepms.registry ({err})") from err
    if tracking_uri is None:
        from deepms.tracking import default_tracking_uri

        tracking_uri = default_tracking_uri(os.environ.get("DEEPMS_ROOT", "."))
    with _registry_at(tracking_uri):
        local = Path(registry.resolve_checkpoint(uri, tracking_uri=tracking_uri))
    return _checkpoint_in(local) if local.is_dir() else local


def resolve_checkpoint(source: str, tracking_uri: str | None = None) -> Path:
    """Local path of the checkpoint ``source`` names (path, runs:/ or models:/ URI)."""
    source = str(source)
    if source.startswith("runs:/"):
        return _from_run(source, tracking_uri)
    if source.startswith("models:/"):
        return _from_registry(source, tracking_uri)
    path = Path(source).expanduser()
    if path.is_dir():
        return _checkpoint_in(path)
    if not path.is_file():
        raise FinetuneError(f"finetune.from={source}: no such checkpoint file or URI")
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint on CPU (hyperparameters included, so not weights-only)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def transfer_weights(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    """Copy every tensor whose name matches; returns (loaded, new) names.

    A tensor present in both with another shape means another architecture: that is an error
    (build the model with the pretrained model's sizes), never a silent partial load.
    """
    own = model.state_dict()
    differ = [k for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
    if differ:
        k = differ[0]
        raise FinetuneError(
            f"{len(differ)} pretrained tensors differ in shape from the model's, e.g. {k}: "
            f"{tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}; set the model's sizes "
            "to the pretrained model's (its hyper_parameters)"
        )
    loaded = [k for k, v in state_dict.items() if k in own and own[k].shape == v.shape]
    model.load_state_dict({k: state_dict[k] for k in loaded}, strict=False)
    return loaded, [k for k in own if k not in set(loaded)]


def freeze(model: torch.nn.Module, prefixes: Sequence[str]) -> list[str]:
    """Stop gradients for parameters whose name starts with one of ``prefixes``."""
    frozen = []
    for name, param in model.named_parameters():
        if any(name.startswith(p) for p in prefixes):
            param.requires_grad_(False)
            frozen.append(name)
    if prefixes and not frozen:
        names = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
        raise FinetuneError(f"finetune.freeze={list(prefixes)} matches no parameter; top: {names}")
    return frozen


def apply_finetune(model: Any, cfg: Mapping[str, Any], tracking_uri: str | None = None) -> Any:
    """Load the pretrained weights ``cfg['from']`` into ``model`` and freeze ``cfg['freeze']``."""
    source, mode = cfg.get("from"), str(cfg.get("mode") or "finetune")
    if not source:
        return model
    if mode not in MODES:
        raise FinetuneError(f"finetune.mode={mode!r}: use one of {MODES}")
    path = resolve_checkpoint(source, tracking_uri)
    checkpoint = load_checkpoint(path)
    if hasattr(model, "load_pretrained"):
        loaded, skipped = model.load_pretrained(checkpoint, mode=mode)
    elif mode == "finetune":
        loaded, skipped = transfer_weights(model, checkpoint["state_dict"])
    else:
        raise FinetuneError(f"{type(model).__name__} has no load_pretrained() for mode={mode}")
    if not loaded:
        raise FinetuneError(f"{path}: no tensor fits {type(model).__name__}")
    frozen = freeze(model, list(cfg.get("freeze") or []))
    log.info(
        "finetune (%s) from %s: %d tensors loaded, %d new, %d parameters frozen",
        mode,
        path,
        len(loaded),
        len(skipped),
        len(frozen),
    )
    return model


def remap_columns(
    old: torch.Tensor, new: torch.Tensor, old_keys: Sequence[str], new_keys: Sequence[str]
) -> torch.Tensor:
    """``new`` with every column whose key both vocabularies hold copied from ``old``.

    For input layers over a data-dependent vocabulary (e.g. modifications): columns past the
    vocabulary (shared channels such as a mass shift) are matched from the end.
    """
    out = new.detach().clone()
    index = {key: i for i, key in enumerate(new_keys)}
    for i, key in enumerate(old_keys):
        if key in index:
            out[:, index[key]] = old[:, i]
    extra = old.shape[1] - len(old_keys)
    if extra > 0 and new.shape[1] - len(new_keys) == extra:
        out[:, -extra:] = old[:, -extra:]
    return out


@torch.no_grad()
def collect_outputs(module: Any, loader: Any, *fns: Any) -> tuple[np.ndarray, ...]:
    """Each ``fn(batch)`` over a loader, in eval mode on the module's device, as numpy arrays."""
    was_training = module.training
    module.eval()
    outputs: list[list[np.ndarray]] = [[] for _ in fns]
    for batch in loader:
        batch = {k: v.to(module.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        for out, fn in zip(outputs, fns, strict=True):
            out.append(fn(batch).float().cpu().numpy())
    module.train(was_training)
    return tuple(np.concatenate(out) for out in outputs)


def fit_piecewise_linear(
    x: np.ndarray, y: np.ndarray, n_knots: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares continuous piecewise-linear map ``x -> y`` with ``n_knots`` knots at
    quantiles of x (nudged apart when x repeats, so the count is fixed for model buffers).

    Returns the knots and the fitted values there; :func:`piecewise_linear` evaluates it and
    extends the end segments linearly.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2:
        raise ValueError(f"a piecewise-linear fit needs at least 2 points, got {len(x)}")
    knots = np.quantile(x, np.linspace(0, 1, max(2, n_knots)))
    knots = knots + np.arange(len(knots)) * 1e-6 * (np.ptp(x) + 1.0)
    inner = knots[1:-1]
    basis = np.column_stack([np.ones_like(x), x, *[np.maximum(x - k, 0) for k in inner]])
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    at = np.column_stack([np.ones_like(knots), knots, *[np.maximum(knots - k, 0) for k in inner]])
    return knots, at @ coef


def piecewise_linear(x: torch.Tensor, knots: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Evaluate the map from :func:`fit_piecewise_linear` (linear beyond the end knots)."""
    knots, values = knots.to(x), values.to(x)
    segment = torch.searchsorted(knots.contiguous(), x.contiguous()).clamp(1, len(knots) - 1)
    x0, x1 = knots[segment - 1], knots[segment]
    y0, y1 = values[segment - 1], values[segment]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0).clamp(min=1e-12)
