"""The end-of-run hook: ``train.py registry.register=true [registry.promote_if=...]``.

Called by the runner after testing. A refused promotion is logged, not raised: the run itself
succeeded, and the registry keeps the alias where it was.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def _tracking_uri(loggers: Any) -> str | None:
    for logger in loggers or []:
        uri = getattr(logger, "_tracking_uri", None)  # Lightning's MLFlowLogger
        if uri and getattr(logger, "run_id", None):
            return uri
    return None


def after_run(cfg: Any, result: Any, loggers: Any) -> Any:
    """Register the run's best checkpoint and promote it when the config asks; the version."""
    registry = cfg.get("registry") if hasattr(cfg, "get") else None
    if not registry or not registry.get("register"):
        return None
    uri = _tracking_uri(loggers)
    if not (result.run_id and result.best_checkpoint and uri):
        log.warning("registry.register=true but the run has no MLflow run or best checkpoint")
        return None
    from deepms.registry.store import PromotionRefused, promote, register

    version = register(
        result.run_id,
        registry.get("name") or cfg.task.name,
        tracking_uri=uri,
        checkpoint=result.best_checkpoint,
        predictor=cfg.task.get("predictor"),
    )
    log.info("registered %s version %s", version.name, version.version)
    condition = registry.get("promote_if")
    if condition:
        alias = registry.get("alias") or "champion"
        require = None if str(condition).strip().lower() == "always" else str(condition)
        try:
            promote(version.name, alias, require=require, version=version.version, tracking_uri=uri)
            log.info("promoted %s version %s to @%s", version.name, version.version, alias)
        except PromotionRefused as refused:
            log.warning("not promoted: %s", refused)
    return version
