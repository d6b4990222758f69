"""deeprt trains its tiny experiment from a user's own RT table given by path (no catalogue)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pandas as pd
import pytest

from deepms.chem import parse_deeplc


@pytest.mark.slow
def test_tiny_experiment_trains_from_a_proforma_table_by_path(
    compose_config, mirror: Path, tmp_path: Path
) -> None:
    from deepms.training.runner import run

    deeplc = pd.read_csv(mirror / "deeprt" / "deeplc_test_train.csv", keep_default_na=False)
    rows = deeplc.head(300)
    peptides = [
        parse_deeplc(s, m or None).to_proforma()
        for s, m in zip(rows.seq, rows.modifications, strict=True)
    ]
    path = tmp_path / "my column.csv"  # a user's file: any name, outside the catalogue
    pd.DataFrame({"peptide": peptides, "rt": rows.tr}).to_csv(path, index=False)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    source = f"{{path:'{path}',format:rt_proforma,unit:s}}"
    cfg = compose_config(
        "task=deeprt", "experiment=deeprt_tiny", f"data.sources=[{source}]", "threads=1"
    )
    result = run(cfg)
    assert math.isfinite(result.metrics["test_mae"])
    lineage = result.lineage
    assert lineage["datasets"] == {"my column": {str(path): sha256}}
    assert lineage["rt_unit"] == "min" and lineage["source_unit"] == "s"
    assert sum(lineage["n_samples"].values()) == len(set(peptides))
