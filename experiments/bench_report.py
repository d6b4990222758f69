"""Summaries and tables of bench results: results/<study>.json -> .md, and the README table.

Everything shown is read back from the JSON files, so the README's table is generated, never typed.
Older result files (before params and baseline timings were recorded) still render, with ``-``.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from _common import machine_line, table

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
README_HEADER = [
    "task",
    "study",
    "data (split)",
    "primary metric: mean ± sd (seeds)",
    "best baseline",
    "train samples/s",
    "inference samples/s",
    "peak RSS MB",
    "params / ckpt MB",
    "commit",
]


def spread(values: list[float | None]) -> dict[str, float]:
    """Mean, sample standard deviation and count over seeds (``{}`` when there is nothing)."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return {}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def summarise(spec: dict[str, Any], runs: list[dict[str, Any]], stamp: dict) -> dict[str, Any]:
    """One training study over its seeds: every figure as mean/std/n, plus the raw runs."""
    names = sorted({k for r in runs for k in r["metrics"]})
    baselines = sorted({b for r in runs for b in r["baselines"]})

    def baseline(name: str) -> dict[str, Any]:
        entries = [r["baselines"][name] for r in runs if name in r["baselines"]]
        keys = sorted({k for e in entries for k in e["metrics"]})
        return {
            "metrics": {k: spread([e["metrics"].get(k) for e in entries]) for k in keys},
            "seconds": spread([e["seconds"] for e in entries]),
        }

    throughput_keys = ("train_samples_per_s", "inference_samples_per_s", "fit_seconds", "seconds")
    return {
        "study": spec["name"],
        "task": spec["task"],
        "kind": "training",
        "description": spec.get("description", "").strip(),
        "primary_metric": spec.get("primary_metric"),
        # the primary metric's direction: the study's, else the task's monitor mode
        "mode": spec.get("primary_mode", runs[0].get("mode", "max")),
        "overrides": spec.get("overrides", []),
        **stamp,
        "data": runs[0]["data"],
        "split": runs[0]["split"],
        "splits": [r["split"] for r in runs],
        "datasets": runs[0]["datasets"],
        "n_samples": runs[0].get("n_samples"),
        "seeds": [r["seed"] for r in runs],
        "metrics": {m: spread([r["metrics"].get(m) for r in runs]) for m in names},
        "baselines": {b: baseline(b) for b in baselines},
        "throughput": {k: spread([r.get(k) for r in runs]) for k in throughput_keys},
        "peak_memory_mb": max(r["peak_memory_mb"] for r in runs),
        "params": runs[0].get("params"),
        "checkpoint_mb": runs[0].get("checkpoint_mb"),
        "runs": runs,
    }


def summarise_script(spec: dict[str, Any], figures: dict[str, Any], stamp: dict) -> dict:
    """A ``bench_script`` study: the figures its ``main()`` returned, stamped."""
    return {
        "study": spec["name"],
        "task": spec["task"],
        "kind": "script",
        "description": spec.get("description", "").strip(),
        "primary_metric": spec.get("primary_metric"),
        **stamp,
        "data": spec.get("dataset"),
        "split": spec.get("split"),
        "figures": figures,
    }


def _decimals(value: float) -> int:
    size = abs(value)
    return 3 if size < 1 else 2 if size < 10 else 1 if size < 100 else 0


def fmt(entry: dict[str, float] | float | None, decimals: int | None = None) -> str:
    """``mean ± sd`` (several seeds) or the value; ``-`` when missing."""
    if entry is None or entry == {}:
        return "-"
    if not isinstance(entry, dict):
        entry = {"mean": float(entry), "n": 1}
    d = _decimals(entry["mean"]) if decimals is None else decimals
    if entry.get("n", 1) > 1:
        return f"{entry['mean']:.{d}f} ± {entry['std']:.{d}f}"
    return f"{entry['mean']:.{d}f}"


def _split_text(summary: dict[str, Any]) -> str:
    splits = summary.get("splits") or [summary.get("split")]
    if len(set(splits)) > 1:  # the same rule with one seed each: show the rule once
        seeds = ",".join(str(s) for s in summary["seeds"])
        return re.sub(r"seed\d+", f"seed{{{seeds}}}", splits[0])
    return str(splits[0] or "-")


def _baseline_metrics(entry: dict[str, Any]) -> dict[str, Any]:
    return entry.get("metrics", entry)  # older files kept the metrics at the top level


def best_baseline(summary: dict[str, Any]) -> tuple[str, dict] | None:
    """The baseline with the best primary metric (direction: the study's ``primary_mode``, else
    the task's monitor mode)."""
    metric = summary.get("primary_metric")
    scored = [
        (name, _baseline_metrics(entry).get(metric))
        for name, entry in summary.get("baselines", {}).items()
        if _baseline_metrics(entry).get(metric)
    ]
    if not scored:
        return None
    sign = -1 if summary.get("mode", "max") == "min" else 1
    return max(scored, key=lambda item: sign * item[1]["mean"])


def readme_row(summary: dict[str, Any]) -> list[str]:
    """One README row per study (the model; its best baseline in a column)."""
    commit = f"`{summary['commit'][:8]}`"
    data = f"{summary.get('data') or '-'} ({_split_text(summary)})"
    if summary.get("kind") == "script" or "figures" in summary:
        f = summary["figures"]
        primary = summary.get("primary_metric") or "inference_samples_per_s"
        value = f.get(primary, f.get("inference_samples_per_s"))
        return [
            summary["task"],
            summary["study"],
            f"{summary.get('data') or '-'} ({f.get('label', 'script')})",
            f"{primary} {fmt(value, 0)}",
            "-",
            "-",
            fmt(f.get("inference_samples_per_s"), 0),
            fmt(f.get("peak_memory_mb"), 0),
            "-",
            commit,
        ]
    metric = summary.get("primary_metric")
    best = best_baseline(summary)
    params, ckpt = summary.get("params"), summary.get("checkpoint_mb")
    count = f"{params / 1e6:.2f} M" if params and params >= 1e5 else f"{(params or 0) / 1e3:.1f} k"
    size = f"{count} / {fmt(ckpt)}" if params else fmt(ckpt)
    throughput = summary["throughput"]
    return [
        summary["task"],
        summary["study"],
        data,
        f"{metric} {fmt(summary['metrics'].get(metric))} ({len(summary['seeds'])})",
        f"{best[0]}: {fmt(best[1])}" if best else "-",
        fmt(throughput.get("train_samples_per_s"), 0),
        fmt(throughput.get("inference_samples_per_s"), 0),
        f"{summary['peak_memory_mb']:.0f}",
        size,
        commit,
    ]


def study_markdown(summary: dict[str, Any]) -> str:
    """results/<study>.md: every metric beside every baseline, then one row per seed."""
    lines = [f"# {summary['study']}", "", summary.get("description", ""), ""]
    lines += [*table(README_HEADER, [readme_row(summary)]), ""]
    if "figures" in summary:
        rows = [(k, v) for k, v in summary["figures"].items() if not isinstance(v, dict)]
        lines += table(["figure", "value"], rows)
    else:
        baselines = list(summary["baselines"])
        header = ["test metric", "model", *(f"baseline: {b}" for b in baselines)]
        rows = [
            [
                name,
                fmt(value),
                *(fmt(_baseline_metrics(summary["baselines"][b]).get(name)) for b in baselines),
            ]
            for name, value in summary["metrics"].items()
        ]
        seconds = [summary["baselines"][b].get("seconds") for b in baselines]
        rows.append(["seconds (fit + score)", "-", *(fmt(s) for s in seconds)])
        lines += [*table(header, rows), ""]
        metric = summary.get("primary_metric")
        per_seed = [
            [
                r["seed"],
                r["split"],
                fmt(r["metrics"].get(metric)),
                fmt(r.get("train_samples_per_s"), 0),
                fmt(r.get("inference_samples_per_s"), 0),
                fmt(r.get("peak_memory_mb"), 0),
                fmt(r.get("fit_seconds"), 0),
                fmt(r.get("seconds"), 0),
                f"`{r.get('run_id')}`",
            ]
            for r in summary["runs"]
        ]
        header = ["seed", "split", metric, "train/s", "infer/s", "peak MB", "fit s", "wall s"]
        lines += table([*header, "MLflow run"], per_seed)
        if summary.get("overrides"):
            lines += ["", "Overrides: `" + " ".join(summary["overrides"]) + "`."]
    lines += ["", f"{machine_line(summary)}.", ""]
    return "\n".join(lines)


def update_readme(readme: Path, results: Path, experiments: Path) -> None:
    """Rewrite the README table between the markers from every results/*.json."""
    text = readme.read_text()
    if README_START not in text:
        return
    summaries = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    summaries.sort(key=lambda s: (s["task"], s["study"]))
    lines = table(README_HEADER, [readme_row(s) for s in summaries])
    own = sorted(p.parent.name for p in experiments.glob("*/results.md"))
    if own:
        links = ", ".join(f"[{s}](experiments/{s}/results.md)" for s in own)
        lines += ["", f"Studies with their own runner and results: {links}."]
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(head + "\n".join([README_START, *lines, README_END]) + tail)
