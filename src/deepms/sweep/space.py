"""The search space: nested under ``hydra.sweeper.params`` like the config it changes.

A leaf is a mapping with ``type`` (``float``, ``int`` or ``categorical``); its path is the config
key it sets, so ``model: {dropout: {type: float, low: 0.0, high: 0.5}}`` samples ``model.dropout``
and the command line can still narrow it (``hydra.sweeper.params.model.dropout.high=0.3``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

TYPES = ("float", "int", "categorical")
_MISSING = object()


@dataclass(frozen=True)
class ParamSpec:
    """One dimension of the space."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def check(self) -> None:
        """Fail with the key's name rather than deep inside Optuna."""
        if self.type == "categorical":
            if not self.choices:
                raise ValueError(f"{self.name}: categorical needs a non-empty 'choices' list")
            for choice in self.choices:
                if choice is not None and not isinstance(choice, bool | int | float | str):
                    raise ValueError(f"{self.name}: choice {choice!r} is not a scalar")
            return
        if self.low is None or self.high is None or not self.low <= self.high:
            raise ValueError(f"{self.name}: {self.type} needs low <= high")
        if self.log and (self.low <= 0 or self.step not in (None, 1)):
            raise ValueError(f"{self.name}: log scale needs low > 0 and no step")


def _leaf(name: str, node: dict[str, Any]) -> ParamSpec:
    kind = node["type"]
    if kind not in TYPES:
        raise ValueError(f"{name}: type must be one of {TYPES}, got {kind!r}")
    unknown = set(node) - {"type", "low", "high", "log", "step", "choices"}
    if unknown:
        raise ValueError(f"{name}: unknown keys {sorted(unknown)}")
    spec = ParamSpec(
        name=name,
        type=kind,
        low=node.get("low"),
        high=node.get("high"),
        log=bool(node.get("log", False)),
        step=node.get("step"),
        choices=tuple(node.get("choices") or ()),
    )
    spec.check()
    return spec


def parse_space(params: dict[str, Any] | DictConfig, prefix: str = "") -> dict[str, ParamSpec]:
    """Flatten the nested ``params`` mapping into ``{config key: ParamSpec}``."""
    if isinstance(params, DictConfig):
        params = OmegaConf.to_container(params, resolve=True)  # type: ignore[assignment]
    space: dict[str, ParamSpec] = {}
    for key, node in params.items():
        name = f"{prefix}{key}"
        if not isinstance(node, dict):
            raise ValueError(f"hydra.sweeper.params.{name}: expected a mapping, got {node!r}")
        if isinstance(node.get("type"), str):
            space[name] = _leaf(name, node)
        elif node:
            space.update(parse_space(node, f"{name}."))
    return space


def check_keys(space: dict[str, ParamSpec], config: DictConfig) -> None:
    """Every swept key must exist in the composed config: a typo would otherwise fail each trial."""
    missing = [k for k in space if OmegaConf.select(config, k, default=_MISSING) is _MISSING]
    if missing:
        raise KeyError(f"swept keys not in the config: {missing} (see hydra.sweeper.params)")


def suggest(trial: Any, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """Ask the trial for a value of every dimension (enqueued trials get their fixed values)."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.type == "categorical":
            values[name] = trial.suggest_categorical(name, list(spec.choices))
        elif spec.type == "int":
            step = int(spec.step or 1)
            values[name] = trial.suggest_int(
                name, int(spec.low), int(spec.high), step=step, log=spec.log
            )
        else:
            values[name] = trial.suggest_float(
                name, float(spec.low), float(spec.high), step=spec.step, log=spec.log
            )
    return values


def format_value(value: Any) -> str:
    """A Hydra override value that parses back to ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def to_overrides(values: dict[str, Any]) -> list[str]:
    """``key=value`` overrides for a trial's sampled values."""
    return [f"{name}={format_value(value)}" for name, value in values.items()]
