"""Model registry and inference: register, promote, list, load by URI, the MLflow pyfunc flavour.

Importing this package stays light (no torch, Lightning or MLflow); the functions below import
them when called, so the ``deepms`` CLI starts fast.
"""

from __future__ import annotations

from typing import Any

from deepms.registry.predictor import ModelLoadError, Predictor, load_class

_LAZY = {
    "PromotionRefused": "store",
    "RegistryError": "reference",
    "load_checkpoint": "reference",
    "resolve_model": "reference",
    "Requirement": "store",
    "list_models": "store",
    "promote": "store",
    "register": "store",
    "load_predictor": "resolve",
    "resolve_checkpoint": "reference",
}

__all__ = ["ModelLoadError", "Predictor", "load_class", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"deepms.registry.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'deepms.registry' has no attribute {name!r}")
