"""Dependencies point one way: tasks use the core, the core never imports a task, no task imports
another, and no two top-level packages import each other (directly or round a cycle).

Every ``import`` in ``src/deepms`` counts, also those inside functions (a lazy import is still a
dependency). Units are the top-level packages and modules (``chem``, ``io``, ``registry``, ...,
``cli``) and each task (``tasks.pdeep``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "deepms"

Graph = dict[str, dict[str, list[str]]]


def unit_of(module: str) -> str | None:
    """``deepms.tasks.pdeep.data`` -> ``tasks.pdeep``; ``deepms.io.mgf`` -> ``io``."""
    parts = module.split(".")
    if parts[0] != "deepms" or len(parts) < 2:
        return None
    if parts[1] == "tasks":
        return f"tasks.{parts[2]}" if len(parts) > 2 else "tasks"
    return parts[1]


def _module_name(path: Path, package_root: Path) -> str:
    relative = path.relative_to(package_root.parent).with_suffix("")
    return ".".join(relative.parts).removesuffix(".__init__")


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level == 0:
            base = node.module or ""
        else:  # relative: resolve against this module's package
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, node.module] if node.module else package)
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return []


def import_graph(package_root: Path) -> Graph:
    """unit -> imported unit -> ``file:line`` of each import."""
    graph: Graph = defaultdict(lambda: defaultdict(list))
    for path in sorted(package_root.rglob("*.py")):
        module = _module_name(path, package_root)
        source = unit_of(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py"):
                target = unit_of(name)
                if source and target and target != source and target != "tasks":
                    site = f"{path.relative_to(package_root)}:{node.lineno}"
                    if site not in graph[source][target]:
                        graph[source][target].append(site)
    return graph


def _cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted({*graph, *(t for targets in graph.values() for t in targets)}):
        if node not in index:
            visit(node)
    return found


def violations(graph: Graph) -> list[str]:
    """Every broken rule, each with the import sites that break it."""
    problems = []
    for source, targets in sorted(graph.items()):
        for target, sites in sorted(targets.items()):
            if not target.startswith("tasks."):
                continue
            if not source.startswith("tasks."):
                problems.append(f"core -> task: {source} imports {target} ({', '.join(sites)})")
            else:
                problems.append(f"task -> task: {source} imports {target} ({', '.join(sites)})")
    for cycle in _cycles(graph):
        sites = [
            f"{a} -> {b} ({graph[a][b][0]})" for a in cycle for b in cycle if b in graph.get(a, {})
        ]
        problems.append(f"cycle between {', '.join(cycle)}: {'; '.join(sites)}")
    return problems


def test_the_tree_keeps_the_dependency_direction() -> None:
    problems = violations(import_graph(SRC))
    assert not problems, "\n".join(problems)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "deepms" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "deepms"


CLEAN = {
    "__init__.py": "",
    "chem/__init__.py": "",
    "io/__init__.py": "from deepms.chem import x\n",
    "training/__init__.py": "import deepms.io\n",
    "tasks/__init__.py": "",
    "tasks/a/__init__.py": "from deepms.training import y\nfrom deepms import io\n",
    "tasks/b/__init__.py": "from . import model\n",
    "tasks/b/model.py": "from deepms.chem import z\n",
}


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ({"io/reader.py": "def f():\n    from deepms.tasks.a import m\n"}, "core -> task: io"),
        ({"tasks/b/model.py": "from deepms.tasks.a.data import d\n"}, "task -> task: tasks.b"),
        ({"tasks/b/model.py": "from ..a import data\n"}, "task -> task: tasks.b"),
        ({"chem/alphabet.py": "from deepms.io import read\n"}, "cycle between chem, io"),
        (
            {"chem/x.py": "import deepms.training.runner\n"},
            "cycle between chem, io, training",
        ),
    ],
)
def test_a_planted_violation_is_found(tmp_path: Path, planted: dict, expected: str) -> None:
    assert violations(import_graph(_write(tmp_path, CLEAN))) == []
    problems = violations(import_graph(_write(tmp_path, planted)))
    assert any(p.startswith(expected) for p in problems), problems
