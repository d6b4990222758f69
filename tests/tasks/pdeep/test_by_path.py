"""pdeep trains from a user's own file given by path (outside the catalogue)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np


def test_tiny_run_from_a_plabel_given_by_path(compose_config, mirror: Path, tmp_path) -> None:
    from deepms.tasks.pdeep.data import MAX_CHARGE
    from deepms.training.runner import run

    catalogued = mirror / "pdeep" / "pdeep2_PT21Mod_Kmod_Malonyl_3xHCD_R1.plabel"
    lines = catalogued.read_text().splitlines(keepends=True)
    mine = tmp_path / "my_lab.plabel"
    mine.write_text("".join(lines[:61]))  # header + 60 PSMs
    sha256 = hashlib.sha256(mine.read_bytes()).hexdigest()

    source = f"{{path: '{mine}', format: plabel, name: my_lab, nce: 28}}"
    cfg = compose_config(
        "task=pdeep", "experiment=pdeep_tiny", "threads=1", f"data.sources=[{source}]"
    )
    result = run(cfg)

    lineage = result.lineage
    assert lineage.datasets == {"my_lab": {str(mine.resolve()): sha256}}
    assert lineage.split == "peptide_grouped_80_10_10_seed42"
    assert sum(lineage.n_samples.values()) == 60 and lineage.n_samples["test"] > 0
    assert math.isfinite(result.metrics["test_median_pcc"])
    assert -1.0 <= result.metrics["test_median_pcc_my_lab"] <= 1.0
    assert result.metrics["test_n_spectra_my_lab"] == lineage.n_samples["test"]
    # The source's nce option fills the energy the plabel does not record (NCE / 100, known).
    meta = result.datamodule.datasets["train"].samples[0].meta
    assert meta[MAX_CHARGE] == np.float32(0.28) and meta[MAX_CHARGE + 1] == 1.0
