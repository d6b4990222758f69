"""msi tests: where the data mirror's MSI files are, and a skip when one is missing.

The ``imzml`` and ``fiedler_spectra`` formats the sources name are registered by
:mod:`deepms.io.msi_formats`; nothing is stood in for here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MIRROR = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))
MSI = MIRROR / "msi"


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} not in the data mirror")
    return path
