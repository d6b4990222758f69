"""De novo sequencing with and without pretraining on predicted (synthetic) spectra.

Usage: ``.venv/bin/python experiments/deepnovo_pretraining/run.py [--pdeep CKPT_OR_URI]``.

1. a pdeep checkpoint: ``--pdeep`` (or ``study.yaml``'s ``pdeep``) when it resolves, else
   ``python train.py task=pdeep`` is trained first (about 9 min on CPU);
2. synthetic spectra: peptides of the yeast and E. coli proteomes, pdeep intensities, noise
   (:mod:`deepms.tasks.deepnovo.synthetic`; cached by settings + checkpoint + proteome hashes);
3. ``pretrain``: deepnovo on the synthetic spectra only (their own peptide split);
4. ``pretrained_only``: those weights tested on the real test split unchanged (zero-shot);
5. ``finetune``: from those weights on the real training split;
6. ``scratch``: a new model on the real training split, the same epochs and settings.

Steps 1-3 run once (the first seed); 4-6 once per seed (``--seeds``; the seed also picks the
real split). Within a seed, arms 4-6 use the same real data config, hence the same
peptide-disjoint real test split (the model maps pretrained token rows by token where
vocabularies differ). Results: ``results.json``
and ``results.md`` beside this file; every training run is an MLflow run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/: _common

from _common import ROOT, compose_run  # noqa: E402

STUDY = HERE.name
METRICS = ("aa_precision", "aa_recall", "peptide_recall", "pc_auc")
OUTPUTS = ROOT / "outputs" / "bench" / STUDY


def ensure_pdeep(source: str | None, spec: dict[str, Any], seed: int) -> dict[str, Any]:
    """The pdeep checkpoint to predict with: ``source`` when it resolves, else train one."""
    from deepms.errors import DeepMSError
    from deepms.training.finetune import resolve_checkpoint
    from deepms.training.runner import run

    if source:
        try:
            path = resolve_checkpoint(str(ROOT / source if "://" not in source else source))
            return {"source": source, "checkpoint": str(path), "trained_here": False}
        except DeepMSError as missing:
            print(f"{STUDY}: {missing}; training pdeep first", flush=True)
    cfg = compose_run(
        ["task=pdeep", f"seed={seed}", *spec.get("pdeep_overrides", [])],
        study=STUDY,
        run_name=f"{STUDY}-pdeep-s{seed}",
        output_dir=OUTPUTS / "pdeep",
    )
    result = run(cfg)
    metrics = {k: v for k, v in result.metrics.items() if k.startswith("test_")}
    return {
        "source": "trained here",
        "checkpoint": result.best_checkpoint,
        "trained_here": True,
        "run_id": result.run_id,
        **metrics,
    }


def make_synthetic(pdeep: str, spec: dict[str, Any], n_spectra: int, seed: int) -> dict[str, Any]:
    from deepms.tasks.deepnovo.synthetic import default_out_dir, generate, settings_from_dict

    settings = settings_from_dict({**spec["synthetic"], "n_spectra": n_spectra, "seed": seed})
    start = time.perf_counter()
    path = generate(pdeep, spec["proteomes"], settings, default_out_dir(), progress=False)
    meta = json.loads(path.with_suffix(".json").read_text())
    return {"path": str(path), "seconds": time.perf_counter() - start, **meta}


def overlap(synthetic_path: str, datamodule: Any) -> dict[str, int]:
    """Real val/test peptides (stripped, I = L) that are also synthetic ones: what pretraining
    saw of the real held-out peptides (the split itself cannot remove them: other runs).
    ``datamodule`` is a real arm's own (set up, the seed's real split)."""
    import re

    from deepms.tasks.deepnovo.data import peptide_group

    text = Path(synthetic_path).read_text().splitlines()
    labels = (re.sub(r"\[[^\]]*\]-?", "", x[4:]) for x in text if x.startswith("SEQ="))
    synthetic = {x.replace("I", "L") for x in labels}
    out = {}
    for part in ("val", "test"):
        peptides = {peptide_group(s.peptide) for s in datamodule.datasets[part].samples}
        out[f"{part}_peptides"] = len(peptides)
        out[f"{part}_peptides_in_synthetic"] = len(peptides & synthetic)
    return out


def run_arm(
    arm: str,
    overrides: list[str],
    spec: dict[str, Any],
    seed: int,
    sources: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], Any]:
    """One arm's figures, and its RunResult (datamodule and model as the run left them)."""
    from deepms.training.runner import run

    cfg = compose_run(
        ["task=deepnovo", f"seed={seed}", *spec.get("common_overrides", []), *overrides],
        study=STUDY,
        run_name=f"{STUDY}-{arm}-s{seed}",
        output_dir=OUTPUTS / f"{arm}-s{seed}",
        sources=sources,
    )
    start = time.perf_counter()
    result = run(cfg)
    figures = {
        "arm": arm,
        "seed": seed,
        "n_spectra": dict(result.lineage.n_samples),
        "n_peptides": result.lineage.get("n_peptides"),
        "split": result.lineage.split,
        "datasets": result.lineage.datasets,
        "run_id": result.run_id,
        "best_checkpoint": result.best_checkpoint,
        "epochs": cfg.trainer.max_epochs if cfg.get("train", True) else 0,
        "seconds": time.perf_counter() - start,
        "metrics": {k: v for k, v in result.metrics.items() if k.startswith("test_")},
    }
    return figures, result


def _cell(metrics: dict[str, float], key: str) -> str:
    return f"{metrics.get(key, float('nan')):.4f}"


def markdown(results: dict[str, Any]) -> str:
    """The tables of ``results.json``: every run, the mean over seeds, and per real source."""
    import numpy as np

    syn, arms = results["synthetic"], results["arms"]
    head = " | ".join(f"test {m}" for m in METRICS)
    lines = [f"# {STUDY}", "", results["description"], "", "## Mean over seeds (real test)", ""]
    lines += [f"| arm | seeds | {head} |", "|---|---|" + "---|" * len(METRICS)]
    for arm in ("pretrained_only", "finetune", "scratch"):
        runs = [r for r in arms if r["arm"] == arm]
        means = {
            f"test_{m}": float(np.mean([r["metrics"].get(f"test_{m}", np.nan) for r in runs]))
            for m in METRICS
        }
        cells = " | ".join(_cell(means, f"test_{m}") for m in METRICS)
        lines.append(f"| {arm} | {len(runs)} | {cells} |")
    lines += ["", "## Every run", ""]
    lines += [
        f"| arm | seed | trained on | train spectra | best of epochs | {head} | seconds |",
        "|---|---|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for r in arms:
        cells = " | ".join(_cell(r["metrics"], f"test_{m}") for m in METRICS)
        n_train = (r["n_spectra"] or {}).get("train", 0) if r["epochs"] else 0
        best = Path(r["best_checkpoint"] or "-").stem.removeprefix("best-epoch")
        epochs = f"{int(best) + 1} of {r['epochs']}" if best.isdigit() and r["epochs"] else "-"
        lines.append(
            f"| {r['arm']} | {r['seed']} | {r['trained_on']} | {n_train} | {epochs} | {cells} | "
            f"{r['seconds']:.0f} |"
        )
    real = [r for r in arms if r["arm"] != "pretrain"]
    counts = [k for k in real[0]["metrics"] if k.startswith("test_n_spectra_")]
    sources = sorted(k.removeprefix("test_n_spectra_") for k in counts)
    lines += ["", "## Per real source (test aa_recall / peptide_recall, spectra)", ""]
    lines += ["| arm | seed | " + " | ".join(sources) + " |", "|---|---|" + "---|" * len(sources)]
    for r in real:
        m = r["metrics"]
        cells = [
            f"{m.get(f'test_aa_recall_{s}', np.nan):.3f} / "
            f"{m.get(f'test_peptide_recall_{s}', np.nan):.3f} "
            f"({m.get(f'test_n_spectra_{s}', 0):.0f})"
            for s in sources
        ]
        lines.append(f"| {r['arm']} | {r['seed']} | " + " | ".join(cells) + " |")
    splits = {r["seed"]: r for r in real}
    lines += [
        "",
        "## Data and settings",
        "",
        "Real test splits (the same for `pretrained_only`, `finetune` and `scratch` of a seed): "
        + "; ".join(
            f"`{r['split']}` {r['n_spectra']['test']} spectra ({r['n_peptides']['test']} peptides)"
            for r in splits.values()
        )
        + ". `pretrain` is tested on 5 batches of its own synthetic test split (a sanity figure, "
        "not comparable). Checkpoints: lowest `val_loss` (real val split).",
        f"Real data: {', '.join(sorted(real[0]['datasets'] or {}))}.",
        f"Synthetic: {syn['n_spectra']} spectra from {syn['n_peptides_digested']} digested "
        f"peptides of {', '.join(p['name'] for p in syn['proteomes'])}; pdeep "
        f"`{results['pdeep']['source']}` (sha256 {syn['pdeep_sha256'][:12]}); settings "
        f"{json.dumps({k: v for k, v in syn['settings'].items() if k != 'noise'})}; noise "
        f"{json.dumps(syn['settings']['noise'])}; file `{Path(syn['path']).name}`. Real val/test "
        f"peptides (I = L) among the synthetic ones: {json.dumps(syn['overlap_with_real'])}.",
        f"{results['machine']['platform']}, {results['machine']['cpus']} CPUs shared, 1 torch "
        f"thread; commit `{results['commit'][:8]}`{' (dirty tree)' if results['dirty'] else ''}; "
        f"{results['date']}; total {results['seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    spec = yaml.safe_load((HERE / "study.yaml").read_text())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdeep", default=spec.get("pdeep"), help="checkpoint, runs:/, models:/")
    parser.add_argument("--seeds", type=int, nargs="+", default=spec.get("seeds", [42]))
    parser.add_argument("--n-spectra", type=int, default=spec["n_synthetic"])
    parser.add_argument("--overrides", nargs="*", default=[], help="added to every deepnovo run")
    parser.add_argument("--results-dir", type=Path, default=HERE, help="smoke runs: elsewhere")
    args = parser.parse_args(argv)
    args.seed = args.seeds[0]  # pdeep, synthetic spectra and pretraining
    spec["common_overrides"] = [*spec.get("common_overrides", []), *args.overrides]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    from deepms.tracking import git_commit

    torch.set_num_threads(int(spec.get("threads", 1)))
    start = time.perf_counter()
    pdeep = ensure_pdeep(args.pdeep, spec, args.seed)
    synthetic = make_synthetic(pdeep["checkpoint"], spec, args.n_spectra, args.seed)
    source = {"path": synthetic["path"], "format": "mgf_seq", "role": "split"}
    pretrain, _ = run_arm("pretrain", spec["pretrain_overrides"], spec, args.seed, [source])
    weights = f"finetune.from={pretrain['best_checkpoint']}"
    arms = [{**pretrain, "trained_on": "synthetic"}]
    synthetic["overlap_with_real"] = {}
    for seed in args.seeds:  # the real arms: each seed is its own real split and initialisation
        zero_shot, result = run_arm("pretrained_only", ["train=false", weights], spec, seed)
        synthetic["overlap_with_real"][seed] = overlap(synthetic["path"], result.datamodule)
        del result  # one real datamodule in memory at a time
        arms += [
            {**zero_shot, "trained_on": "synthetic (no fine-tuning)"},
            {
                **run_arm("finetune", [weights, *spec["real_overrides"]], spec, seed)[0],
                "trained_on": "synthetic, then real",
            },
            {**run_arm("scratch", spec["real_overrides"], spec, seed)[0], "trained_on": "real"},
        ]
    commit, dirty = git_commit(ROOT)
    results = {
        "study": STUDY,
        "description": " ".join(spec["description"].split()),
        "pdeep": pdeep,
        "synthetic": synthetic,
        "commit": commit,
        "dirty": dirty,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "seeds": args.seeds,
        "seconds": time.perf_counter() - start,
        "arms": arms,
    }
    out = args.results_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "results.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
