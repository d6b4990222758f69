"""deepnovo trains from a user's own MGF (SEQ= labels) given by path (outside the catalogue)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def first_spectra(mgf: Path, count: int) -> str:
    """The text of the first ``count`` spectra of an MGF file."""
    text = mgf.read_text()
    end = 0
    for _ in range(count):
        end = text.index("END IONS", end) + len("END IONS\n")
    return text[:end]


def test_tiny_run_from_an_mgf_given_by_path(compose_config, mirror: Path, tmp_path) -> None:
    from deepms.training.runner import run

    mine = tmp_path / "my_lab.mgf"  # 40 spectra: what the tiny experiment reads per source
    mine.write_text(
        first_spectra(mirror / "deepnovo" / "casanovo_sample_preprocessed_spectra.mgf", 40)
    )
    sha256 = hashlib.sha256(mine.read_bytes()).hexdigest()

    cfg = compose_config(
        "task=deepnovo",
        "experiment=deepnovo_tiny",
        "threads=1",
        f"data.sources=[{{path: '{mine}', format: mgf_seq}}]",
    )
    result = run(cfg)

    lineage = result.lineage
    assert lineage.datasets == {"my_lab": {str(mine.resolve()): sha256}}
    assert lineage.split == "peptide_grouped_80_10_10_seed42"
    assert sum(lineage.n_samples.values()) + sum(lineage.dropped.values()) == 40
    assert lineage.n_samples["test"] > 0
    assert 0.0 <= result.metrics["test_aa_recall"] <= 1.0
    assert result.metrics["test_n_outside_tolerance"] == 0
