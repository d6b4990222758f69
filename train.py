"""Train one task: ``python train.py task=pdeep [group=option ...] [key=value ...]``.

Hydra composes ``conf/config.yaml``; the heavy imports (Lightning, MLflow) happen inside ``main``
so that ``--help`` stays fast. Returns the monitored validation metric for sweepers.
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("DEEPMS_ROOT", str(Path(__file__).resolve().parent))


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from deepms.training.runner import run

    return run(cfg).monitored


if __name__ == "__main__":
    main()
