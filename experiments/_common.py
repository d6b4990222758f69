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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


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
