"""Metrics, checks and plots of an evaluation pass, from the decoded records a model collected.

Kept apart from the model so both architectures log the same names: ``<stage>_aa_precision``,
``_aa_recall``, ``_peptide_recall``, ``_peptide_precision``, ``_pc_auc``, ``_coverage`` (Casanovo's
definitions, :mod:`deepms.metrics.denovo`), per source ``test_<metric>_<source>``, and on test
``test_spectra_per_s`` (beam-search throughput) and ``test_n_outside_tolerance`` (decoded peptides
whose mass misses the precursor: 0 by construction, checked here independently of the search).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from deepms.chem.peptide import H2O

ISOTOPE = 1.00335483507
ALL_KEYS = (
    "aa_precision",
    "aa_recall",
    "peptide_recall",
    "peptide_precision",
    "pc_auc",
    "coverage",
)
PER_SOURCE_KEYS = ("aa_recall", "peptide_recall", "aa_precision")


def compute(records: Sequence[dict[str, Any]], aa_masses: dict[str, float], equate_il: bool):
    """Casanovo's metrics over decoded records (``pred`` empty = unsequenced)."""
    from deepms.metrics.denovo import denovo_metrics

    preds = [r["pred"] or None for r in records]
    trues = [r["true"] for r in records]
    scores = [r["score"] if r["pred"] else -math.inf for r in records]
    return denovo_metrics(preds, trues, scores, aa_masses, equate_il=equate_il)


def outside_tolerance(
    records: Sequence[dict[str, Any]],
    aa_masses: dict[str, float],
    tolerance: float,
    unit: str,
    isotope_errors: Sequence[int],
) -> int:
    """How many sequenced records have a peptide mass outside tolerance of their precursor."""
    count = 0
    for r in records:
        if not r["pred"]:
            continue
        mass = sum(aa_masses[t] for t in r["pred"]) + H2O
        ok = False
        for k in isotope_errors:
            target = r["precursor_mass"] - k * ISOTOPE
            allowed = abs(target) * tolerance * 1e-6 if unit.lower() == "ppm" else tolerance
            ok |= abs(mass - target) <= allowed + 1e-9
        count += not ok
    return count


def _gathered(module: Any) -> list[dict[str, Any]]:
    from deepms.training.distributed import gather_lists

    return gather_lists(list(module.decoded))


def log_metrics(
    module: Any, stage: str, keys: Sequence[str] = ALL_KEYS, per_source: bool = False
) -> dict[str, float]:
    """Log pooled (and per-source) metrics of ``module.decoded``; returns the pooled ones."""
    records = _gathered(module)
    if not records or module.trainer.sanity_checking:
        return {}
    vocab = module.vocab
    pooled = compute(records, vocab.aa_masses, vocab.equate_il)
    for key in keys:
        module.log(f"{stage}_{key}", float(np.nan_to_num(pooled[key])), rank_zero_only=True)
    if per_source:
        for index, name in enumerate(module.hparams.source_names or []):
            mine = [r for r in records if r["source"] == index]
            if not mine:
                continue
            values = compute(mine, vocab.aa_masses, vocab.equate_il)
            for key in PER_SOURCE_KEYS:
                value = float(np.nan_to_num(values[key]))
                module.log(f"{stage}_{key}_{name}", value, rank_zero_only=True)
            module.log(f"{stage}_n_spectra_{name}", float(len(mine)), rank_zero_only=True)
    return pooled


def log_test_extras(module: Any, decode_seconds: float) -> None:
    """Throughput, the tolerance check, and the precision-coverage plot."""
    records = _gathered(module)
    if not records:
        return
    hp = module.hparams
    outside = outside_tolerance(
        records,
        module.vocab.aa_masses,
        hp.precursor_tolerance,
        hp.tolerance_unit,
        hp.isotope_errors,
    )
    module.log("test_n_outside_tolerance", float(outside), rank_zero_only=True)
    module.log("test_spectra_per_s", len(module.decoded) / max(decode_seconds, 1e-9))
    if module.trainer.is_global_zero:
        _plot(module, records)


def _plot(module: Any, records: list[dict[str, Any]]) -> None:
    from deepms.metrics.denovo import aa_match_batch, precision_coverage
    from deepms.plots import _pyplot
    from deepms.tracking import log_figure

    vocab = module.vocab
    preds = [r["pred"] or None for r in records]
    batch = aa_match_batch(preds, [r["true"] for r in records], vocab.aa_masses)
    scores = [r["score"] if r["pred"] else -math.inf for r in records]
    coverage, precision = precision_coverage(scores, batch.peptide_match)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(coverage, precision, color="tab:blue")
    ax.set_xlabel("coverage (share of spectra, best score first)")
    ax.set_ylabel("peptide precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"test precision-coverage ({len(records)} spectra)", fontsize=9)
    fig.tight_layout()
    log_figure(module.loggers, fig, "plots/test_precision_coverage.png")
