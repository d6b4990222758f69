"""deepms's deeprt beside DeepLC 4.5 on the same peptide-grouped test splits, in one run.

Usage: ``.venv/bin/python experiments/deeprt_vs_deeplc/run.py [--sets deeplc_unmod ...]``.
For each set: train deepms (``task=deeprt data=deeprt_<set>``, tracked in MLflow, tag ``study``),
calibrate DeepLC's pretrained model on the same training peptides, predict the same test peptides
with both on CPU with the same number of threads, and score both with
:mod:`deepms.metrics.regression`. DeepLC needs pandas < 3, so it lives in its own venv
(``.venv-deeplc``, created on first use) and is called through ``deeplc_side.py`` on CSV files.
Results: ``results.json`` and ``results.md`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/: _common, baselines

from _common import (  # noqa: E402
    ROOT,
    compose_run,
    machine_line,
    provenance,
    table,
    write_results,
)

STUDY = HERE.name
VENV = ROOT / ".venv-deeplc"


def load_spec() -> dict[str, Any]:
    return yaml.safe_load((HERE / "study.yaml").read_text())


def deeplc_python(spec: dict[str, Any]) -> Path:
    """The DeepLC venv's python, creating the venv first (torch pinned: pip takes the CPU wheel)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pins = [f"torch=={spec['deeplc']['torch']}", f"deeplc=={spec['deeplc']['version']}"]
        subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True)
    return python


def for_deeplc(peptide: Any) -> str:
    """ProForma for DeepLC; cysteines carry carbamidomethyl, as in the alkylated samples.

    The files write plain C; DeepLC's calibrated error on deeplc_unmod was lower with the
    explicit modification (1.14 vs 1.24 min in a check on 3000 peptides), so DeepLC gets it.
    """
    return peptide.with_fixed_mod("Carbamidomethyl", "C").to_proforma()


def run_deeplc(spec: dict[str, Any], calibration, test, threads: int) -> tuple[np.ndarray, dict]:
    """DeepLC calibrated on ``calibration`` (samples), predicting ``test``; (predictions, info)."""
    with tempfile.TemporaryDirectory() as tmp:
        cal, inp, out = (Path(tmp) / name for name in ("cal.csv", "test.csv", "pred.csv"))
        pd.DataFrame(
            {
                "peptide": [for_deeplc(s.peptide) for s in calibration],
                "rt": [s.rt for s in calibration],
            }
        ).to_csv(cal, index=False)
        pd.DataFrame({"peptide": [for_deeplc(s.peptide) for s in test]}).to_csv(inp, index=False)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        command = [str(deeplc_python(spec)), str(HERE / "deeplc_side.py"), str(cal), str(inp)]
        done = subprocess.run(
            [*command, str(out), "--threads", str(threads)], capture_output=True, text=True, env=env
        )
        if done.returncode:
            raise RuntimeError(f"DeepLC failed ({done.returncode}):\n{done.stderr[-3000:]}")
        info = json.loads(done.stdout.strip().splitlines()[-1])
        return pd.read_csv(out)["predicted_rt"].to_numpy(dtype=np.float64), info


def train_deepms(set_name: str, variant: str, spec: dict[str, Any], seed: int):
    from deepms.training.runner import run

    tag = f"{set_name}-{variant}"
    overrides = [
        "task=deeprt",
        f"data=deeprt_{set_name}",
        f"seed={seed}",
        *spec.get("train_overrides", []),
        *spec["variants"][variant]["overrides"],
    ]
    cfg = compose_run(
        overrides,
        study=STUDY,
        run_name=f"{STUDY}-{tag}-s{seed}",
        output_dir=ROOT / "outputs" / "bench" / STUDY / tag / f"s{seed}",
    )
    return run(cfg), cfg


def compare(set_name: str, spec: dict[str, Any], seed: int, threads: int) -> dict[str, Any]:
    """Train each deepms variant, then predict the test split with it and with DeepLC."""
    import torch

    from deepms.metrics import regression_report
    from deepms.tasks.deeprt.predict import RTPredictor

    torch.set_num_threads(threads)
    rows, runs, datamodule = {}, {}, None
    for variant, about in spec["variants"].items():
        start = time.perf_counter()
        result, _ = train_deepms(set_name, variant, spec, seed)
        train_s = time.perf_counter() - start
        if datamodule is None:  # every variant splits alike: same data config and seed
            datamodule = result.datamodule
            test = datamodule.datasets["test"].samples
            observed = np.array([s.rt for s in test])
        predictor = RTPredictor.from_checkpoint(result.best_checkpoint)
        start = time.perf_counter()
        ours = predictor.predict_peptides([s.peptide for s in test])
        seconds = time.perf_counter() - start
        rows[f"deepms deeprt: {about['label']}"] = {
            **regression_report(ours, observed),
            "peptides_per_s": len(test) / seconds,
            "fit_seconds": train_s,
        }
        runs[variant] = {
            "run_id": result.run_id,
            "test_metrics": {k: v for k, v in result.metrics.items() if k.startswith("test_")},
        }
    train = datamodule.datasets["train"].samples
    theirs, info = run_deeplc(spec, train, test, threads)
    rows[f"DeepLC {info['deeplc_version']}: pretrained, calibrated on the train split"] = {
        **regression_report(theirs, observed),
        "peptides_per_s": len(test) / info["predict_seconds"],
        "fit_seconds": info["calibrate_seconds"],
    }
    return {
        "set": set_name,
        "dataset": datamodule.lineage()["name"],
        "split": datamodule.split_name,
        "rt_unit": datamodule.rt_unit,
        "n_train": len(train),
        "n_test": len(test),
        "deepms_runs": runs,
        "deeplc": info,
        "rows": rows,
    }


HEADER = [
    "set",
    "model",
    "MAE",
    "median AE",
    "delta-t95",
    "R",
    "R2",
    "rel. MAE %",
    "peptides/s (CPU)",
    "fit/calibrate s",
    "test peptides",
]


def _row(entry: dict[str, Any], model: str, m: dict[str, float]) -> list[Any]:
    figures = [f"{m[k]:.2f}" for k in ("median_ae", "delta_t95")]
    figures += [f"{m[k]:.4f}" for k in ("r", "r2")] + [f"{m['rel_mae']:.2f}"]
    speed = [f"{m['peptides_per_s']:.0f}", f"{m['fit_seconds']:.0f}", entry["n_test"]]
    return [entry["set"], model, f"{m['mae']:.2f} {entry['rt_unit']}", *figures, *speed]


def markdown(results: dict[str, Any]) -> str:
    rows = [_row(e, model, m) for e in results["sets"] for model, m in e["rows"].items()]
    splits = ", ".join(f"`{e['split']}`" for e in results["sets"])
    footer = (
        f"Splits: {splits}; seed {results['seed']}; {results['threads']} torch thread(s) for "
        f"both; {machine_line(results)}."
    )
    lines = [f"# {STUDY}", "", results["description"], "", *table(HEADER, rows), "", footer, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    spec = load_spec()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", nargs="+", default=spec["sets"])
    parser.add_argument("--seed", type=int, default=spec.get("seeds", [42])[0])
    parser.add_argument("--threads", type=int, default=spec.get("threads", 1))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    deeplc_python(spec)  # create the venv before any timing
    start = time.perf_counter()
    entries = [compare(name, spec, args.seed, args.threads) for name in args.sets]
    results = {
        "study": STUDY,
        "description": spec["description"],
        **provenance(),
        "seed": args.seed,
        "threads": args.threads,
        "wall_seconds": time.perf_counter() - start,
        "sets": entries,
    }
    write_results(HERE, results, markdown(results))
    print(markdown(results))
    return 0


def deeplc_baseline(datamodule: Any, max_calibration: int | None = None) -> dict[str, float]:
    """For ``make bench``: DeepLC calibrated on the datamodule's train split (or a seeded
    ``max_calibration`` of it: DeepLC's calibration needs few peptides, and predicting all of a
    large train split only to calibrate would dominate the bench), scored on its test split."""
    from baselines.rt import score_rt

    spec = load_spec()
    train, test = datamodule.datasets["train"].samples, datamodule.datasets["test"].samples
    if max_calibration and len(train) > max_calibration:
        keep = np.random.default_rng(0).choice(len(train), max_calibration, replace=False)
        train = [train[i] for i in sorted(keep)]
    predicted, _ = run_deeplc(spec, train, test, spec.get("threads", 1))
    return score_rt(predicted, [s.rt for s in test], datamodule.rt_unit)


if __name__ == "__main__":
    sys.exit(main())
