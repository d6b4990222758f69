"""Run the studies in experiments/ and write results/<study>.json and .md.

Usage: ``python experiments/bench.py [STUDY ...] [--seeds 42 43 44]``. Each seed runs in a fresh
process (``--one``) so that its peak memory and timings are its own; the parent collects them,
adds mean and spread over seeds, and rewrites the results table in the README. A study with
``bench_script: file.py`` is not a training: ``main()`` of that file runs once and returns its
figures (e.g. prediction speed), which fill the table's throughput columns.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
RESULTS = EXPERIMENTS / "results"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def load_study(name: str) -> dict[str, Any]:
    spec = yaml.safe_load((EXPERIMENTS / name / "study.yaml").read_text())
    spec["name"] = name
    return spec


def list_studies() -> list[str]:
    return sorted(p.parent.name for p in EXPERIMENTS.glob("*/study.yaml"))


def _call_baseline(study: str, target: str, datamodule: Any) -> dict[str, float]:
    file_name, function = target.split(":")
    path = EXPERIMENTS / study / file_name
    module_spec = importlib.util.spec_from_file_location(f"{study}_baselines", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, function)(datamodule)


def run_one(study: str, seed: int) -> dict[str, Any]:
    """Train and test one seed of a study in this process; return its figures."""
    from hydra import compose, initialize_config_dir

    from deepms.training.runner import run

    spec = load_study(study)
    os.environ.setdefault("DEEPMS_ROOT", str(ROOT))
    overrides = [
        *spec.get("overrides", []),
        f"seed={seed}",
        f"run_name={study}-s{seed}",
        f"+tags.study={study}",
        f"paths.root_dir={ROOT}",
        f"paths.output_dir={ROOT / 'outputs' / 'bench' / study / f's{seed}'}",
    ]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    result = run(cfg)
    baselines = {}
    if spec.get("baselines"):
        from hydra.utils import instantiate

        datamodule = instantiate(cfg.data, _recursive_=False, _convert_="all")
        datamodule.setup("fit")
        for name, target in spec["baselines"].items():
            baselines[name] = _call_baseline(study, target, datamodule)
    checkpoint = Path(result.best_checkpoint) if result.best_checkpoint else None
    return {
        "seed": seed,
        "run_id": result.run_id,
        "metrics": {k: v for k, v in result.metrics.items() if k.startswith("test_")},
        "monitored": result.monitored,
        "train_samples_per_s": result.train_samples_seen / max(result.fit_seconds, 1e-9),
        "inference_samples_per_s": result.test_samples / max(result.test_seconds, 1e-9),
        "fit_seconds": result.fit_seconds,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "checkpoint_mb": checkpoint.stat().st_size / 2**20 if checkpoint else None,
        "data": result.lineage.get("name"),
        "split": result.lineage.get("split"),
        "n_spectra": result.lineage.get("n_spectra"),
        "datasets": result.lineage.get("datasets"),
        "baselines": baselines,
    }


def run_script(study: str) -> dict[str, Any]:
    """A plain-script study (``bench_script: file.py``): ``main()`` returns its figures."""
    path = EXPERIMENTS / study / load_study(study)["bench_script"]
    module_spec = importlib.util.spec_from_file_location(f"{study}_script", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.main()


def summarise_script(study: str, figures: dict[str, Any]) -> dict[str, Any]:
    spec = load_study(study)
    commit, dirty = _git()
    return {
        "study": study,
        "task": spec["task"],
        "description": spec.get("description", ""),
        "primary_metric": spec.get("primary_metric"),
        "commit": commit,
        "dirty": dirty,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "data": spec.get("dataset"),
        "figures": figures,
    }


def _spread(values: list[float]) -> dict[str, float]:
    values = [v for v in values if v is not None]
    if not values:
        return {}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def _git() -> tuple[str, bool]:
    sys.path.insert(0, str(ROOT / "src"))
    from deepms.tracking import git_commit

    return git_commit(ROOT)


def summarise(study: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    spec = load_study(study)
    metric_names = sorted({k for r in runs for k in r["metrics"]})
    commit, dirty = _git()
    baseline_names = sorted({b for r in runs for b in r["baselines"]})
    return {
        "study": study,
        "task": spec["task"],
        "description": spec.get("description", ""),
        "primary_metric": spec.get("primary_metric"),
        "commit": commit,
        "dirty": dirty,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "data": runs[0]["data"],
        "split": runs[0]["split"],
        "datasets": runs[0]["datasets"],
        "seeds": [r["seed"] for r in runs],
        "metrics": {m: _spread([r["metrics"].get(m) for r in runs]) for m in metric_names},
        "baselines": {
            b: {
                m: _spread([r["baselines"][b].get(m) for r in runs if b in r["baselines"]])
                for m in sorted({k for r in runs for k in r["baselines"].get(b, {})})
            }
            for b in baseline_names
        },
        "throughput": {
            key: _spread([r[key] for r in runs])
            for key in ("train_samples_per_s", "inference_samples_per_s", "fit_seconds")
        },
        "peak_memory_mb": max(r["peak_memory_mb"] for r in runs),
        "checkpoint_mb": runs[0]["checkpoint_mb"],
        "runs": runs,
    }


def _fmt(spread: dict[str, float], digits: int = 3) -> str:
    if not spread:
        return "-"
    if spread.get("n", 1) > 1:
        return f"{spread['mean']:.{digits}f} ± {spread['std']:.{digits}f}"
    return f"{spread['mean']:.{digits}f}"


def markdown_rows(summary: dict[str, Any]) -> list[str]:
    """Table rows: the model, then each baseline, with the headline metrics."""
    keys = ("test_median_pcc", "test_median_sa", "test_pcc90")
    if "figures" in summary:  # a script study: its figures fill the throughput columns
        f = summary["figures"]
        return [
            f"| {summary['study']} | {summary['task']} | {f.get('label', 'script')} | - | - | - | "
            f"- | {f.get('inference_samples_per_s', 0):.0f} | {f.get('peak_memory_mb', 0):.0f} | "
            f"{summary['data']} | - | `{summary['commit'][:8]}` |"
        ]
    rows = []
    train = summary["throughput"]["train_samples_per_s"]
    infer = summary["throughput"]["inference_samples_per_s"]
    rows.append(
        f"| {summary['study']} | {summary['task']} | deepms model | "
        + " | ".join(_fmt(summary["metrics"].get(k, {})) for k in keys)
        + f" | {_fmt(train, 0)} | {_fmt(infer, 0)} | {summary['peak_memory_mb']:.0f} | "
        f"{summary['split']} | {len(summary['seeds'])} | `{summary['commit'][:8]}` |"
    )
    for name, metrics in summary["baselines"].items():
        rows.append(
            f"| {summary['study']} | {summary['task']} | baseline: {name} | "
            + " | ".join(_fmt(metrics.get(k, {})) for k in keys)
            + f" | - | - | - | {summary['split']} | {len(summary['seeds'])} | "
            f"`{summary['commit'][:8]}` |"
        )
    return rows


TABLE_HEADER = [
    "| study | task | model | median PCC | median SA | PCC90 | train samples/s | "
    "inference samples/s | peak MB | split | seeds | commit |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def write_outputs(summary: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    study = summary["study"]
    (RESULTS / f"{study}.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    lines = [f"# {study}", "", summary["description"], "", *TABLE_HEADER, *markdown_rows(summary)]
    lines += [
        "",
        f"Data: `{summary['data']}`; machine: {summary['machine']['platform']}, "
        f"{summary['machine']['cpus']} CPUs; {summary['date']}.",
        "",
    ]
    (RESULTS / f"{study}.md").write_text("\n".join(lines))


def update_readme() -> None:
    """Rewrite the README's results table from every results/*.json."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_START not in text:
        return
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        rows += markdown_rows(json.loads(path.read_text()))
    table = "\n".join([README_START, *TABLE_HEADER, *rows, README_END])
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(head + table + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("studies", nargs="*", help="study folders (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, help="override the studies' seeds")
    parser.add_argument("--one", nargs=2, metavar=("STUDY", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--script", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        figures = run_one(args.one[0], int(args.one[1]))
        Path(args.out).write_text(json.dumps(figures, default=str))
        return 0
    if args.script:
        Path(args.out).write_text(json.dumps(run_script(args.script), default=str))
        return 0
    for study in args.studies or list_studies():
        if load_study(study).get("bench_script"):
            out = RESULTS / f".{study}.json"
            RESULTS.mkdir(parents=True, exist_ok=True)
            print(f"bench: {study}", flush=True)
            cmd = [sys.executable, __file__, "--script", study, "--out", str(out)]
            subprocess.run(cmd, check=True, cwd=ROOT)
            summary = summarise_script(study, json.loads(out.read_text()))
            out.unlink()
            write_outputs(summary)
            print("\n".join(markdown_rows(summary)))
            continue
        runs = []
        for seed in args.seeds or load_study(study).get("seeds", [42]):
            out = RESULTS / f".{study}-s{seed}.json"
            RESULTS.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, __file__, "--one", study, str(seed), "--out", str(out)]
            print(f"bench: {study} seed {seed}", flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)
            runs.append(json.loads(out.read_text()))
            out.unlink()
        summary = summarise(study, runs)
        write_outputs(summary)
        print("\n".join(markdown_rows(summary)))
    update_readme()
    return 0


if __name__ == "__main__":
    sys.exit(main())
