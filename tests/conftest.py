"""Shared fixtures: the data mirror, the repository root, and a composed tiny config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("DEEPMS_DATA_MIRROR", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The local data mirror; tests that need real data skip without it."""
    if not (MIRROR / "SHA256SUMS").exists():
        pytest.skip(f"no data mirror at {MIRROR} (set DEEPMS_DATA_MIRROR)")
    return MIRROR


@pytest.fixture
def compose_config(tmp_path: Path, mirror: Path):
    """Compose ``conf/`` with overrides, writing outputs and tracking into ``tmp_path``."""
    from hydra import compose, initialize_config_dir

    def _compose(*overrides: str):
        os.environ.setdefault("DEEPMS_ROOT", str(ROOT))
        base = [
            f"paths.root_dir={ROOT}",
            f"paths.output_dir={tmp_path / 'out'}",
            f"paths.mlruns_dir={tmp_path / 'mlruns'}",
            f"paths.data_mirror={mirror}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"logger.mlflow.tracking_uri=sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        ]
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            return compose("config", overrides=[*base, *overrides])

    return _compose
