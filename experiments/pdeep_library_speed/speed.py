"""Precursors per second for a yeast-proteome spectral library on CPU (see README.md)."""

from __future__ import annotations

import itertools
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent


def _predictor(spec: dict[str, Any]) -> Any:
    """The configured model, or an untrained one of pDeep's default size."""
    import torch

    from deepms.chem.encoding import N_RESIDUE_TOKENS
    from deepms.registry import load_predictor
    from deepms.tasks.pdeep.data import N_META
    from deepms.tasks.pdeep.model import PDeepModel
    from deepms.tasks.pdeep.predict import PDeepPredictor

    options = {k: spec[k] for k in ("batch_size", "threads", "workers")}
    if spec.get("model"):
        return load_predictor(spec["model"], **options)
    torch.manual_seed(0)
    vocabulary = {"modifications": ["Carbamidomethyl@C", "Oxidation@M"]}
    model = PDeepModel(N_RESIDUE_TOKENS, N_META, [1, 2], vocabulary)  # 2 x 256, pDeep's size
    return PDeepPredictor(model, **options)


def _pcc(a: Any, b: Any) -> float:
    """Median Pearson r between two predictions of the same precursors (per spectrum)."""
    merged = a.merge(
        b,
        on=[
            "ModifiedPeptide",
            "PrecursorCharge",
            "FragmentType",
            "FragmentNumber",
            "FragmentCharge",
        ],
        how="outer",
    ).fillna(0.0)
    scores = [
        np.corrcoef(g["RelativeIntensity_x"], g["RelativeIntensity_y"])[0, 1]
        for _, g in merged.groupby(["ModifiedPeptide", "PrecursorCharge"])
        if len(g) > 2
    ]
    return float(np.nanmedian(scores))


def _library(predictor: Any, fasta: Path, out: Path, spec: dict[str, Any]) -> dict[str, Any]:
    from deepms.io.library import write_library

    chunks = predictor.read_input(fasta, 20_000, **spec["digest"])
    if spec.get("max_precursors"):
        limit = int(spec["max_precursors"]) // 20_000 or 1
        chunks = itertools.islice(chunks, limit)
    seen = [0]

    def tables():
        for chunk in chunks:
            seen[0] += len(chunk)
            yield predictor.predict(chunk)

    start = time.perf_counter()
    counts = write_library(tables(), out)
    seconds = time.perf_counter() - start
    return {
        "precursors": seen[0],
        "fragments": counts["fragments"],
        "seconds": seconds,
        "precursors_per_s": seen[0] / seconds,
        "library_mb": out.stat().st_size / 2**20,
    }


def main(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Figures for ``make bench``; ``spec``: the calling study's study.yaml (default: this one)."""
    import torch

    from deepms.datasets.registry import resolve

    spec = dict(spec or yaml.safe_load((HERE / "study.yaml").read_text()))
    spec["digest"] = dict(spec["digest"])
    spec["digest"]["charges"] = tuple(spec["digest"]["charges"])
    torch.set_num_threads(int(spec["threads"]))
    (fasta,) = resolve(spec["dataset"]).values()
    predictor = _predictor(spec)
    out = Path(spec.get("folder", HERE)) / spec["output"]  # the calling study's scratch/
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = {}
    for precision in spec["precisions"]:
        predictor.configure(precision=precision)
        runs[precision] = _library(predictor, fasta, out, spec)
    sample = next(predictor.read_input(fasta, 2_000, **spec["digest"]))
    predictor.configure(precision="32")
    reference = predictor.predict(sample)
    predictor.configure(precision="bf16")
    headline = runs[spec["precisions"][0]]
    model = predictor.describe()["hyperparameters"]
    return {
        "label": f"library, {spec['workers']} x {spec['threads']} CPU threads",
        "inference_samples_per_s": headline["precursors_per_s"],
        "precursors_per_s": headline["precursors_per_s"],
        "runs": runs,
        "bf16_vs_fp32_median_pcc": _pcc(reference, predictor.predict(sample)),
        "model": spec.get("model") or "untrained",
        "hidden_size": model["hidden_size"],
        "num_layers": model["num_layers"],
        "batch_size": spec["batch_size"],
        "workers": spec["workers"],
        "threads": torch.get_num_threads(),
        "dataset": spec["dataset"],
        "digest": spec["digest"],
        "load_average": os.getloadavg(),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
