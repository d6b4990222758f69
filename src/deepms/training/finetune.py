"""Start a run from a trained model: fine-tune it, freeze some of its layers, or only calibrate it.

``finetune.from`` names the pretrained model: a checkpoint path, ``runs:/<run_id>[/<artifact>]``
(the run's best checkpoint when no artifact is named) or ``models:/<name>@<alias>`` /
``models:/<name>/<version>``, resolved by :mod:`deepms.registry.reference`. The runner
calls :func:`apply_finetune` right after it builds the model; a model whose inputs depend on the
data (vocabularies) maps the weights itself in ``load_pretrained(checkpoint, mode)``, any other
gets every tensor whose name and shape match. ``finetune.freeze`` lists parameter-name prefixes
to keep fixed. ``finetune.mode=calibrate`` is left to the model (e.g. deeprt's piecewise-linear
map of its output), the classic baseline for a new LC system.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from deepms.errors import DeepMSError

log = logging.getLogger(__name__)
MODES = ("finetune", "calibrate")


class FinetuneError(DeepMSError):
    """The pretrained model cannot be found or does not fit the model being trained."""


def resolve_checkpoint(source: str, tracking_uri: str | None = None) -> Path:
    """Local path of the checkpoint ``source`` names (path, folder, ``runs:/`` or ``models:/``),
    by :func:`deepms.registry.reference.resolve_checkpoint` (a run's best checkpoint, one rule)."""
    from deepms.registry.predictor import ModelLoadError
    from deepms.registry.reference import RegistryError
    from deepms.registry.reference import resolve_checkpoint as resolve

    try:
        return resolve(str(source), tracking_uri)
    except (ModelLoadError, RegistryError) as err:
        raise FinetuneError(f"finetune.from={source}: {err}") from err


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
    from deepms.registry.reference import load_checkpoint

    path = resolve_checkpoint(source, tracking_uri)
    checkpoint = load_checkpoint(path)  # weights only: a pretrained file runs no code
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
