"""Compare the tracked runs of one task: a sorted table, metric-vs-param and learning-curve plots.

Runs are found by their ``task`` tag (set by the runner on every run), in every experiment of the
store. Comparison runs (tag ``deepms.kind=comparison``) and sweep parents (no ``task`` tag) are
never compared. Default metric, curve and sort direction are the task's ``test_metric``,
``monitor`` and ``mode``: from the runs' own params (what they were trained with), else from
``conf/task/<task>.yaml``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepms.errors import DeepMSError

if TYPE_CHECKING:
    import pandas as pd

KIND_TAG = "deepms.kind"
TAG_COLUMNS = ("model", "data", "split", "seed")  # set on every run by log_run_lineage
# params that differ between runs without saying anything about the model (paths, names, ids)
NOISE_PREFIXES = ("paths.", "logger.", "hydra", "run_name", "trainer.default_root_dir",
                  "callbacks.model_checkpoint.dirpath", "data.mirror", "data.cache_dir",
                  "resume", "ckpt_path")  # fmt: skip


class CompareError(DeepMSError):
    """No runs to compare, or a metric or param that the runs never logged."""


@dataclass
class Comparison:
    """The result of :func:`compare`: the table (full run ids), what was plotted and written."""

    task: str
    metric: str
    ascending: bool
    table: pd.DataFrame
    param: str | None
    curve: str | None
    files: dict[str, Path] = field(default_factory=dict)
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)


def task_defaults(task: str, runs: list[Any]) -> tuple[str | None, str | None, str | None]:
    """(test_metric, monitor, mode): the runs' most common ``task.*`` params, else the yaml."""
    found: dict[str, str | None] = {}
    for key in ("test_metric", "monitor", "mode"):
        values = Counter(r.data.params.get(f"task.{key}") for r in runs) - Counter([None])
        found[key] = values.most_common(1)[0][0] if values else None
    root = Path(os.environ.get("DEEPMS_ROOT", Path(__file__).resolve().parents[3]))
    path = root / "conf" / "task" / f"{task}.yaml"
    if None in found.values() and path.exists():
        import yaml

        node = (yaml.safe_load(path.read_text()) or {}).get("task", {})
        found = {k: v if v is not None else node.get(k) for k, v in found.items()}
    return found["test_metric"], found["monitor"], found["mode"]


def _search(client: Any, filter_string: str, max_results: int = 10_000) -> list[Any]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs: list[Any] = []
    token = None
    while experiments and len(runs) < max_results:
        page = client.search_runs(experiments, filter_string, max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            break
    return runs


def find_runs(client: Any, task: str, all_status: bool = False) -> list[Any]:
    """The task's training runs (finished only unless ``all_status``); clear error if none."""
    if not re.fullmatch(r"[\w.-]+", task):
        raise CompareError(f"task {task!r}: a task name has letters, digits, '_', '-', '.'")
    runs = [
        r
        for r in _search(client, f"tags.task = '{task}'")
        if r.data.tags.get(KIND_TAG) != "comparison"
    ]
    if not runs:
        tasks = sorted({t for r in _search(client, "", 2000) if (t := r.data.tags.get("task"))})
        have = ", ".join(tasks) if tasks else "none (no run there has a `task` tag)"
        raise CompareError(f"no runs of task {task!r} in {client.tracking_uri}; tasks: {have}")
    chosen = runs if all_status else [r for r in runs if r.info.status == "FINISHED"]
    if not chosen:
        statuses = ", ".join(sorted({r.info.status for r in runs}))
        raise CompareError(
            f"{len(runs)} runs of task {task!r} but none FINISHED ({statuses}); "
            "pass --all-status to compare them"
        )
    return chosen


def differing_params(runs: list[Any], tags: dict[str, list[str]]) -> dict[str, list[str | None]]:
    """Params whose values differ between runs, without paths/names and duplicated views."""
    keys = sorted({k for r in runs for k in r.data.params})
    values = {k: [r.data.params.get(k) for r in runs] for k in keys}
    varying = {  # two runs with different values; logged-or-not alone is a code change
        k: v
        for k, v in values.items()
        if len(set(v) - {None}) > 1 and not k.startswith(NOISE_PREFIXES)
    }
    for key in list(varying):
        last = re.split(r"[./]", key)[-1]
        if last in tags and varying[key] == tags[last]:  # the seed params repeat the seed tag
            del varying[key]
        elif "." not in key:  # Lightning's copy of a model hparam, e.g. hidden_size, optimizer/lr
            dotted = "." + key.replace("/", ".")
            if any(o.endswith(dotted) and varying[o] == varying[key] for o in varying if o != key):
                del varying[key]
    return varying


def build_table(runs: list[Any], metric: str, ascending: bool, top: int) -> pd.DataFrame:
    """One row per run: name, id, status, key tags, differing params, metric, other test_*."""
    import pandas as pd

    frame = pd.DataFrame({"metric": [r.data.metrics.get(metric) for r in runs]}, dtype=float)
    order = frame.sort_values("metric", ascending=ascending, na_position="last", kind="stable")
    runs = [runs[i] for i in order.index[:top]]
    tags = {tag: [r.data.tags.get(tag) for r in runs] for tag in TAG_COLUMNS}
    if any(r.data.tags.get("sweep.study") for r in runs):
        tags["sweep"] = [r.data.tags.get("sweep.study") for r in runs]
    tags["commit"] = [(r.data.tags.get("git_commit") or "")[:8] or None for r in runs]
    params = differing_params(runs, tags)
    table = pd.DataFrame(
        {
            "run": [r.info.run_name for r in runs],
            "run_id": [r.info.run_id for r in runs],
            "status": [r.info.status for r in runs],
            **tags,
            **params,
        }
    )
    table.attrs["params"] = list(params)
    others = sorted({k for r in runs for k in r.data.metrics if k.startswith("test_")} - {metric})
    for name in [metric, *others]:
        table[name] = pd.Series([r.data.metrics.get(name) for r in runs], dtype=float)
    return table


def choose_param(table: pd.DataFrame, params: list[str]) -> str | None:
    """The config param (dotted key, a Hydra override) with the most distinct values; numeric
    ones win ties. Undotted keys (Lightning's hparams, derived counts) only when nothing else."""
    import pandas as pd

    def rank(key: str) -> tuple[bool, int, bool, str]:
        numeric = pd.to_numeric(table[key], errors="coerce").notna().all()
        return ("." not in key, -table[key].nunique(dropna=False), not numeric, key)

    return min(params, key=rank) if params else None


def _figure(xlabel: str, ylabel: str, title: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    return fig, ax


def plot_metric_vs_param(table: pd.DataFrame, metric: str, param: str | None) -> Any:
    """Scatter of the metric against a param (numeric axis, log when it spans >= 100x)."""
    import pandas as pd

    raw = table[param] if param else table["run"]
    fig, ax = _figure(param or "run", metric, f"{metric} by {param or 'run'}")
    numeric = pd.to_numeric(raw, errors="coerce")
    if numeric.notna().all():
        ax.scatter(numeric, table[metric])
        if numeric.min() > 0 and numeric.max() / numeric.min() >= 100:
            ax.set_xscale("log")
        raw = numeric
    else:  # categorical axis: matplotlib places strings in order of appearance
        ax.scatter(raw.fillna("None").astype(str), table[metric])
        ax.tick_params(axis="x", labelrotation=30)
        ax.margins(x=0.15)
        raw = raw.fillna("None").astype(str)
    for x, y, name in zip(raw, table[metric], table["run"], strict=True):
        if y == y:  # not NaN
            ax.annotate(name, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    return fig


def plot_learning_curves(client: Any, table: pd.DataFrame, curve: str) -> Any:
    """The curve's history per run, overlaid; x is the epoch when every point has one."""
    series = []
    for run_id, name in zip(table["run_id"], table["run"], strict=True):
        history = sorted(client.get_metric_history(run_id, curve), key=lambda m: m.step)
        epochs = {m.step: m.value for m in client.get_metric_history(run_id, "epoch")}
        series.append((f"{name} ({run_id[:8]})", history, epochs))
    by_epoch = all(m.step in epochs for _, history, epochs in series for m in history)
    fig, ax = _figure("epoch" if by_epoch else "step", curve, f"{curve} per run")
    ax.xaxis.get_major_locator().set_params(integer=True)
    for label, history, epochs in series:
        if history:
            x = [epochs[m.step] if by_epoch else m.step for m in history]
            ax.plot(x, [m.value for m in history], marker="o", markersize=3, label=label)
    ax.legend(fontsize="small", loc="best")
    return fig


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _log(client: Any, runs: list[Any], comparison: Comparison) -> str:
    """A ``compare-<task>`` run in the task's experiment holding the table and the plots."""
    experiment = client.get_experiment_by_name(comparison.task)
    if experiment is None or experiment.lifecycle_stage != "active":
        experiment = client.get_experiment(runs[0].info.experiment_id)
    tags = {
        KIND_TAG: "comparison",
        "task": comparison.task,
        "compare.metric": comparison.metric,
        "compare.order": "ascending" if comparison.ascending else "descending",
        "compare.param": comparison.param or "",
        "compare.curve": comparison.curve or "",
        "compare.n_runs": str(len(comparison.table)),
    }
    run = client.create_run(
        experiment.experiment_id, run_name=f"compare-{comparison.task}", tags=tags
    )
    for path in comparison.files.values():
        client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def _write_outputs(client: Any, result: Comparison, out: Path) -> None:
    """The PNG plots and ``comparison.csv`` (full run ids) into ``out``."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    table, name = result.table, f"metric_vs_{_safe(result.param or 'run')}.png"
    figures = {name: plot_metric_vs_param(table, result.metric, result.param)}
    if result.curve:
        name = f"learning_curves_{_safe(result.curve)}.png"
        figures[name] = plot_learning_curves(client, table, result.curve)
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        result.files[name] = out / name
    table.to_csv(out / "comparison.csv", index=False)
    result.files["comparison.csv"] = out / "comparison.csv"


def compare(
    task: str,
    metric: str | None = None,
    top: int = 10,
    param: str | None = None,
    curve: str | None = None,
    ascending: bool | None = None,
    output_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    log: bool = True,
    all_status: bool = False,
) -> Comparison:
    """Table, plots and CSV for the best ``top`` runs of ``task``; logged as a run unless not."""
    from deepms.tracking.client import client_for

    if top < 1:
        raise CompareError(f"--top must be at least 1, got {top}")
    client = client_for(tracking_uri)
    runs = find_runs(client, task, all_status)
    test_metric, monitor, mode = task_defaults(task, runs)
    metric = metric or test_metric
    if metric is None:
        raise CompareError(f"task {task!r} names no test metric (no conf/task yaml): pass --metric")
    logged = sorted({k for r in runs for k in r.data.metrics})
    if metric not in logged:
        raise CompareError(f"no run of task {task!r} logged {metric!r}; metrics: {logged}")
    ascending = (mode == "min") if ascending is None else ascending
    table = build_table(runs, metric, ascending, top)
    result = Comparison(task, metric, ascending, table, None, None)
    missing = int(table[metric].isna().sum())
    if missing:
        result.notes.append(f"{missing} run(s) without {metric} are listed last")
    if param is not None and param not in table.columns:
        by_id = {r.info.run_id: r.data.params.get(param) for r in runs}
        if all(v is None for v in by_id.values()):
            known = sorted({k for r in runs for k in r.data.params})
            raise CompareError(f"no run of task {task!r} logged param {param!r}; params: {known}")
        table.insert(table.columns.get_loc("commit") + 1, param, table["run_id"].map(by_id))
    result.param = param or choose_param(table, table.attrs["params"])
    if result.param is None:
        result.notes.append("no param differs between these runs: the metric is plotted per run")
    result.curve = curve or monitor
    if curve is not None and curve not in logged:
        raise CompareError(f"no run of task {task!r} logged {curve!r}; metrics: {logged}")
    if result.curve not in logged:
        result.notes.append(f"no learning curves: the runs never logged {result.curve!r}")
        result.curve = None
    out = Path(output_dir or Path(os.environ.get("DEEPMS_ROOT", ".")) / "outputs/compare" / task)
    _write_outputs(client, result, out)
    if log:
        result.run_id = _log(client, runs, result)
    return result


def format_table(table: pd.DataFrame, fmt: str = "table") -> str:
    """``table`` (aligned text), ``markdown`` or ``csv``; text formats show 8-character run ids
    and cut other cells at 40 characters (lists of modifications make rows unreadable)."""
    if fmt == "csv":
        return table.to_csv(index=False)
    shown = table.assign(run_id=table["run_id"].str[:8])
    floats = shown.select_dtypes("float").columns
    shown[floats] = shown[floats].map(lambda v: "-" if v != v else f"{v:.4f}")
    shown = shown.fillna("-").astype(str)
    cells = shown.columns.drop("run")  # the name identifies the run: never cut
    shown[cells] = shown[cells].map(lambda s: s if len(s) <= 40 else s[:37] + "...")
    if fmt == "table":
        return shown.to_string(index=False)
    if fmt != "markdown":
        raise CompareError(f"unknown format {fmt!r}: table, markdown or csv")
    rows = [list(shown.columns), ["---"] * shown.shape[1], *shown.values.tolist()]
    return "\n".join("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows)
