"""Run the studies in experiments/ and write results/<study>.json and .md, and the README table.

Usage: ``python experiments/bench.py [STUDY ...] [--seeds 42 43] [--list]``. No study named: the
default suite (every study whose ``study.yaml`` does not say ``suite: false``). A study folder
holds ``study.yaml``:

* ``task``, ``description``, ``primary_metric`` (a ``test_*`` name; its direction is
  ``primary_mode`` (max/min), else the task's ``mode``), ``seeds``;
* ``overrides``: Hydra overrides after ``task=<task>``: a training study, one run per seed;
* ``baselines``: ``{name: module:function}`` (``baselines.rt:ridge_composition``, or
  ``file.py:function`` in the study folder), or ``{name: {target: ..., kwargs: {...}}}``: called
  with the seed's datamodule (same split), they return ``test_*`` metrics;
* ``inference_method``: the LightningModule method timed over the test batches (``predict_step``);
* or ``bench_script: file.py`` instead of ``overrides``: ``main(spec)`` returns its figures;
* ``suite: false``: run only when named. A study with only ``script: run.py`` has its own runner.

Each seed runs in a fresh process (``--one``), so its peak memory and timings are its own; the
parent adds the seed's wall time, summarises (bench_report.py) and rewrites the README table.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # _common, bench_report, baselines

from _common import ROOT, compose_run, provenance  # noqa: E402
from bench_report import study_markdown, summarise, summarise_script, update_readme  # noqa: E402


def load_study(folder: Path) -> dict[str, Any]:
    spec = yaml.safe_load((folder / "study.yaml").read_text())
    return {**spec, "name": folder.name, "folder": str(folder)}


def runnable(spec: dict[str, Any]) -> bool:
    """Training (``overrides``) or script (``bench_script``) studies; not own-runner ones."""
    return "overrides" in spec or "bench_script" in spec


def list_studies(experiments: Path, suite_only: bool) -> list[str]:
    names = []
    for path in sorted(experiments.glob("*/study.yaml")):
        spec = load_study(path.parent)
        if runnable(spec) and (spec.get("suite", True) or not suite_only):
            names.append(path.parent.name)
    return names


def _load_callable(target: str, folder: Path) -> Any:
    """``module:function`` importable from experiments/, or ``file.py:function`` in ``folder``."""
    module_name, function = target.rsplit(":", 1)
    if module_name.endswith(".py"):
        path = (folder / module_name).resolve()
        module_spec = importlib.util.spec_from_file_location(f"{folder.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    return getattr(module, function)


def run_baselines(spec: dict[str, Any], datamodule: Any) -> dict[str, Any]:
    results = {}
    for name, target in (spec.get("baselines") or {}).items():
        entry = target if isinstance(target, dict) else {"target": target}
        function = _load_callable(entry["target"], Path(spec["folder"]))
        start = time.perf_counter()
        metrics = function(datamodule, **entry.get("kwargs", {}))
        results[name] = {"metrics": metrics, "seconds": time.perf_counter() - start}
    return results


def time_inference(model: Any, datamodule: Any, method: str) -> dict[str, float]:
    """Samples/s of ``method`` over every test dataloader (collation included, no metrics)."""
    import torch

    loaders = datamodule.test_dataloader()
    loaders = loaders if isinstance(loaders, list) else [loaders]
    call = getattr(model, method)
    with_index = len(inspect.signature(call).parameters) > 1
    model.eval()
    n, start = 0, time.perf_counter()
    with torch.inference_mode():
        for loader in loaders:
            for index, batch in enumerate(loader):
                call(batch, index) if with_index else call(batch)
            n += len(loader.dataset)
    seconds = time.perf_counter() - start
    return {"inference_samples": n, "inference_seconds": seconds, "samples_per_s": n / seconds}


def run_one(folder: Path, seed: int, outputs: Path, threads: int) -> dict[str, Any]:
    """Train and test one seed of a study in this process; return its figures."""
    import torch

    from deepms.training.runner import run, sample_counts

    spec = load_study(folder)
    overrides = [
        f"task={spec['task']}",
        *spec.get("overrides", []),
        f"seed={seed}",
        f"threads={threads}",
    ]
    cfg = compose_run(
        overrides,
        study=spec["name"],
        run_name=f"{spec['name']}-s{seed}",
        output_dir=outputs / spec["name"] / f"s{seed}",
    )
    load_start = os.getloadavg()
    result = run(cfg)
    # the run's own datamodule (its split) and model (the best checkpoint's weights, tested)
    datamodule, model = result.datamodule, result.model
    checkpoint = Path(result.best_checkpoint)
    inference = time_inference(model, datamodule, spec.get("inference_method", "predict_step"))
    baselines = run_baselines(spec, datamodule)
    counts = sample_counts(result.lineage)
    return {
        "seed": seed,
        "run_id": result.run_id,
        "mode": cfg.task.mode,
        "metrics": {k: v for k, v in result.metrics.items() if k.startswith("test_")},
        "monitored": result.monitored,
        "train_samples_per_s": result.train_samples_seen / max(result.fit_seconds, 1e-9),
        "inference_samples_per_s": inference["samples_per_s"],
        **inference,
        "fit_seconds": result.fit_seconds,
        "epochs": result.train_samples_seen // max(int(counts.get("train", 1)), 1),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "checkpoint_mb": checkpoint.stat().st_size / 2**20,
        "params": sum(p.numel() for p in model.parameters()),
        "torch_threads": torch.get_num_threads(),
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "data": result.lineage.name,
        "split": result.lineage.split,
        "n_samples": counts,
        "datasets": result.lineage.datasets,
        "baselines": baselines,
    }


def _child(args: list[str], out: Path, threads: int) -> tuple[dict[str, Any], float]:
    """Run ``bench.py <args>`` in a fresh process; its JSON figures and its wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, *args, "--out", str(out)], check=True, env=env)
    figures = json.loads(out.read_text())
    out.unlink()
    return figures, time.perf_counter() - start


def bench_study(name: str, args: argparse.Namespace) -> dict[str, Any]:
    folder = args.experiments / name
    spec = load_study(folder)
    args.results.mkdir(parents=True, exist_ok=True)
    common = ["--experiments", str(args.experiments), "--threads", str(args.threads)]
    if "bench_script" in spec:
        print(f"bench: {name}", flush=True)
        out = args.results / f".{name}.json"
        figures, seconds = _child(["--script", name, *common], out, args.threads)
        summary = summarise_script(spec, {**figures, "seconds": seconds}, provenance())
    else:
        runs = []
        for seed in args.seeds or spec.get("seeds", [42]):
            print(f"bench: {name} seed {seed}", flush=True)
            out = args.results / f".{name}-s{seed}.json"
            one = ["--one", name, str(seed), "--outputs", str(args.outputs), *common]
            figures, seconds = _child(one, out, args.threads)
            runs.append({**figures, "seconds": seconds})
        summary = summarise(spec, runs, provenance())
    (args.results / f"{name}.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (args.results / f"{name}.md").write_text(study_markdown(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("studies", nargs="*", help="study folders (default: the suite)")
    parser.add_argument("--seeds", nargs="+", type=int, help="override the studies' seeds")
    parser.add_argument("--list", action="store_true", help="list the suite and exit")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--experiments", type=Path, default=HERE)
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--outputs", type=Path, default=ROOT / "outputs" / "bench")
    parser.add_argument("--one", nargs=2, metavar=("STUDY", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--script", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        folder = args.experiments / args.one[0]
        figures = run_one(folder, int(args.one[1]), args.outputs, args.threads)
        args.out.write_text(json.dumps(figures, default=str))
        return 0
    if args.script:
        spec = load_study(args.experiments / args.script)
        main_function = _load_callable(f"{spec['bench_script']}:main", Path(spec["folder"]))
        args.out.write_text(json.dumps(main_function(spec), default=str))
        return 0
    names = args.studies or list_studies(args.experiments, suite_only=True)
    if args.list:
        print("\n".join(names))
        return 0
    start = time.perf_counter()
    for name in names:
        study_start = time.perf_counter()
        bench_study(name, args)
        print(f"bench: {name} done in {time.perf_counter() - study_start:.0f} s", flush=True)
    update_readme(args.readme, args.results, args.experiments)
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"bench: {len(names)} studies in {time.perf_counter() - start:.0f} s, load {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
