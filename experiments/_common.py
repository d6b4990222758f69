"""Helpers every study shares: provenance of a result and markdown tables.

Kept in one place so that ``bench.py`` and the studies with their own ``run.py`` stamp their
results the same way (commit, dirty tree, machine, load) and write tables the same way.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def compose_run(
    overrides: Sequence[str],
    study: str | None = None,
    run_name: str | None = None,
    output_dir: Path | str | None = None,
    sources: Sequence[Mapping[str, Any]] | None = None,
) -> Any:
    """A study run's config: ``conf/`` with the study's overrides, tagged ``study`` in MLflow.

    ``sources`` replaces ``data.sources`` (a list of dicts is clearer set here than as an
    override). The result goes to :func:`deepms.training.runner.run`, whose ``RunResult``
    carries the run's datamodule and model: studies use those, never rebuild or reload them.
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    os.environ.setdefault("DEEPMS_ROOT", str(ROOT))
    extra = [f"run_name={run_name}"] if run_name else []
    extra += [f"+tags.study={study}"] if study else []
    extra += [f"paths.output_dir={output_dir}"] if output_dir else []
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, *extra, f"paths.root_dir={ROOT}"])
    if sources is not None:
        with open_dict(cfg):
            cfg.data.sources = OmegaConf.create([dict(s) for s in sources])
    return cfg


def timed_run(
    overrides: Sequence[str],
    study: str,
    tag: str,
    sources: Sequence[Mapping[str, Any]] | None = None,
    output_dir: Path | None = None,
) -> tuple[Any, float]:
    """One tracked training of a study (run name ``<study>-<tag>``): (RunResult, seconds)."""
    from deepms.training.runner import run

    folder = output_dir or ROOT / "outputs" / "bench" / study / tag
    cfg = compose_run(overrides, study, f"{study}-{tag}", folder, sources)
    start = time.perf_counter()
    result = run(cfg)
    return result, time.perf_counter() - start


def provenance(root: Path = ROOT) -> dict[str, Any]:
    """Commit, dirty flag, date, machine and load: what every recorded figure carries."""
    if str(root / "src") not in sys.path:
        sys.path.insert(0, str(root / "src"))
    from deepms.tracking import git_commit

    commit, dirty = git_commit(root)
    return {
        "commit": commit,
        "dirty": dirty,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
    }


def results_header(study: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A study's first ``results.json`` keys: name, description, provenance, seed, threads."""
    return {
        "study": study,
        "description": spec["description"],
        **provenance(),
        "seed": spec["seed"],
        "threads": spec["threads"],
    }


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A markdown table as lines; cells are str()-ed, ``None`` shows as ``-``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = ["-" if cell is None else str(cell) for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def machine_line(results: dict[str, Any]) -> str:
    """``<platform>, N CPUs, load a/b/c; commit `abcdef12`; date`` for a results footer."""
    machine = results["machine"]
    load = machine.get("load_average")
    load_text = f", load {'/'.join(f'{x:.2f}' for x in load)}" if load else ""
    dirty = " (uncommitted changes)" if results.get("dirty") else ""
    return (
        f"{machine['platform']}, {machine['cpus']} CPUs{load_text}; "
        f"commit `{results['commit'][:8]}`{dirty}; {results['date']}"
    )


def write_results(folder: Path, results: dict[str, Any], markdown: str) -> None:
    """``results.json`` and ``results.md`` beside a study's own ``run.py``."""
    (folder / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (folder / "results.md").write_text(markdown)
