"""`deepms compare`: runs written straight into a temporary MLflow store (no training)."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from deepms.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# name: (model.hidden_size, model.loss, seed, test_median_pcc or None, status)
PDEEP_RUNS = {
    "pdeep-h64": ("64", "spectral_angle", 1, 0.80, "FINISHED"),
    "pdeep-h128": ("128", "masked_mse", 2, 0.90, "FINISHED"),
    "pdeep-h256": ("256", "spectral_angle", 3, 0.85, "FINISHED"),
    "pdeep-h512": ("512", "masked_mse", 4, 0.70, "FINISHED"),
    "pdeep-notest": ("32", "masked_mse", 5, None, "FINISHED"),
    "pdeep-failed": ("1024", "masked_mse", 6, 0.99, "FAILED"),
}


def _write_run(client, experiment_id: str, name: str, tags: dict, params: dict, metrics: dict):
    """One run as the runner leaves it: tags, flat params, final metrics, val history by step."""
    from mlflow.entities import Metric, Param

    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    now = int(time.time() * 1000)
    points = [Metric(k, v, now, 40) for k, v in metrics.items() if not isinstance(v, list)]
    for key, history in ((k, v) for k, v in metrics.items() if isinstance(v, list)):
        points += [Metric(key, v, now, 10 * (i + 1)) for i, v in enumerate(history)]
        points += [Metric("epoch", float(i), now, 10 * (i + 1)) for i in range(len(history))]
    params = [Param(k, str(v)) for k, v in params.items()]
    client.log_batch(run_id, metrics=points, params=params)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """pdeep runs differing in hidden size (plus noise params), a deeprt run, two `toy` runs."""
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("compare_store")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiments = {
        task: client.create_experiment(task, artifact_location=(tmp / "artifacts").as_uri())
        for task in ("pdeep", "deeprt", "toy")
    }
    ids = {}
    for i, (name, (hidden, loss, seed, pcc, status)) in enumerate(PDEEP_RUNS.items()):
        tags = {"task": "pdeep", "model": "PDeepModel", "data": "pdeep_massivekb",
                "split": f"peptide_grouped_80_10_10_seed{seed}", "seed": str(seed),
                "git_commit": f"{i}abcdef0123456789"}  # fmt: skip
        params = {"model.hidden_size": hidden, "hidden_size": hidden, "model.loss": loss,
                  "model.optimizer.lr": 0.001, "optimizer/lr": 0.001, "seed": seed,
                  "data.split.seed": seed, "paths.output_dir": f"/out/{name}",
                  "encoder/n_params": int(hidden) * 10 + i}  # fmt: skip
        if i % 2:  # logged by newer code only: not a difference between the runs
            params["callbacks.epoch_seed._target_"] = "deepms.training.callbacks.EpochSeed"
        start = 0.5 + 0.1 * i
        metrics = {"val_median_pcc": [start, start + 0.05, start + 0.1], "test_median_sa": 0.5}
        if pcc is not None:
            metrics["test_median_pcc"] = pcc
        ids[name] = _write_run(client, experiments["pdeep"], name, tags, params, metrics)
        client.set_terminated(ids[name], status)
    run = _write_run(client, experiments["deeprt"], "rt", {"task": "deeprt"}, {}, {"test_mae": 1})
    client.set_terminated(run, "FINISHED")
    toy_params = {"task.test_metric": "test_loss", "task.monitor": "val_loss", "task.mode": "min"}
    for name, loss in (("toy-a", 0.3), ("toy-b", 0.1)):
        metrics = {"test_loss": loss, "val_loss": [1.0, 0.5, loss]}
        run = _write_run(client, experiments["toy"], name, {"task": "toy"}, toy_params, metrics)
        client.set_terminated(run, "FINISHED")
    return SimpleNamespace(uri=uri, db=tmp / "mlflow.db", ids=ids)


@pytest.fixture
def copied(store: SimpleNamespace, tmp_path: Path) -> str:
    """A private copy of the store, for tests that log comparison runs into it."""
    shutil.copy(store.db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def run_cli(capsys, uri: str, out: Path, *args: str) -> tuple[int, str, str]:
    code = main(["compare", "--tracking-uri", uri, "--output-dir", str(out), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_rows(text: str) -> list[str]:
    """Run names of the printed table (first cell of each row before the blank line)."""
    return [line.split()[0] for line in text.split("\n\n")[0].splitlines()[1:]]


def assert_png(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000
    with Image.open(path) as image:
        assert min(image.size) > 200


def test_table_sorted_by_the_task_test_metric_and_cut_to_top(store, tmp_path, capsys) -> None:
    code, out, _ = run_cli(capsys, store.uri, tmp_path, "--task", "pdeep", "--top", "3", "--no-log")
    assert code == 0
    assert table_rows(out) == ["pdeep-h128", "pdeep-h256", "pdeep-h64"]
    header = out.splitlines()[0].split()
    assert header[:11] == ["run", "run_id", "status", "model", "data", "split", "seed", "commit",
                           "encoder/n_params", "model.hidden_size", "model.loss"]  # fmt: skip
    assert header.index("test_median_pcc") < header.index("test_median_sa")
    for noise in ("hidden_size", "optimizer/lr", "model.optimizer.lr", "paths.output_dir",
                  "callbacks.epoch_seed._target_"):  # fmt: skip
        assert noise not in header
    assert header.count("seed") == 1 and "data.split.seed" not in header
    row = out.splitlines()[1].split()
    assert row[1] == store.ids["pdeep-h128"][:8] and row[7] == "1abcdef0" and "0.9000" in row
    assert "sorted by test_median_pcc (descending); 3 run(s)" in out


def test_ascending_puts_the_run_without_the_metric_last(store, tmp_path, capsys) -> None:
    code, out, _ = run_cli(capsys, store.uri, tmp_path, "--task", "pdeep", "--ascending",
                           "--no-log")  # fmt: skip
    assert code == 0
    assert table_rows(out) == ["pdeep-h512", "pdeep-h64", "pdeep-h256", "pdeep-h128",
                               "pdeep-notest"]  # fmt: skip
    assert "note: 1 run(s) without test_median_pcc are listed last" in out
    code, out, _ = run_cli(capsys, store.uri, tmp_path, "--task", "pdeep", "--all-status",
                           "--top", "2", "--no-log")  # fmt: skip
    assert table_rows(out) == ["pdeep-failed", "pdeep-h128"]


def test_defaults_come_from_the_runs_params_when_no_yaml(store, tmp_path, capsys) -> None:
    code, out, err = run_cli(capsys, store.uri, tmp_path, "--task", "toy", "--format", "csv",
                             "--no-log")  # fmt: skip
    assert code == 0
    table = pd.read_csv(io.StringIO(out))
    assert list(table["run"]) == ["toy-b", "toy-a"] and list(table["test_loss"]) == [0.1, 0.3]
    assert len(table["run_id"][0]) == 32  # csv keeps full ids
    assert "sorted by test_loss (ascending)" in err
    assert "no param differs" in err and (tmp_path / "metric_vs_run.png").exists()
    assert_png(tmp_path / "learning_curves_val_loss.png")


def test_plots_written_and_comparison_logged_then_excluded(copied, tmp_path, capsys) -> None:
    from mlflow import MlflowClient

    code, out, _ = run_cli(capsys, copied, tmp_path, "--task", "pdeep", "--top", "4")
    assert code == 0
    names = {"metric_vs_model.hidden_size.png", "learning_curves_val_median_pcc.png",
             "comparison.csv"}  # fmt: skip
    assert_png(tmp_path / "metric_vs_model.hidden_size.png")  # a config key, not encoder/...
    assert_png(tmp_path / "learning_curves_val_median_pcc.png")
    written = pd.read_csv(tmp_path / "comparison.csv")
    assert list(written["run"]) == ["pdeep-h128", "pdeep-h256", "pdeep-h64", "pdeep-h512"]
    client = MlflowClient(copied)
    logged = client.search_runs(
        [client.get_experiment_by_name("pdeep").experiment_id], "tags.`deepms.kind` = 'comparison'"
    )
    assert len(logged) == 1 and logged[0].info.run_name == "compare-pdeep"
    assert logged[0].info.status == "FINISHED" and logged[0].data.tags["task"] == "pdeep"
    assert {a.path for a in client.list_artifacts(logged[0].info.run_id)} == names
    assert f"logged comparison run {logged[0].info.run_id}" in out

    code, out, _ = run_cli(capsys, copied, tmp_path, "--task", "pdeep", "--all-status")
    assert code == 0 and "compare-pdeep" not in table_rows(out) and len(table_rows(out)) == 6


def test_categorical_param_and_markdown(store, tmp_path, capsys) -> None:
    code, out, _ = run_cli(capsys, store.uri, tmp_path, "--task", "pdeep", "--param",
                           "model.loss", "--format", "markdown", "--no-log")  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("| run | run_id | status |") and lines[1].startswith("| --- |")
    assert lines[2].startswith("| pdeep-h128 |")
    assert_png(tmp_path / "metric_vs_model.loss.png")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--task", "nosuch"], ["no runs of task 'nosuch'", "mlflow.db", "deeprt, pdeep, toy"]),
        (["--task", "pdeep", "--metric", "test_nope"], ["'test_nope'", "'test_median_pcc'"]),
        (["--task", "pdeep", "--param", "nope"], ["param 'nope'", "'model.hidden_size'"]),
        (["--task", "pdeep", "--curve", "val_nope"], ["'val_nope'", "'val_median_pcc'"]),
        (["--task", "pdeep", "--top", "0"], ["--top must be at least 1"]),
        (["--task", "p' OR 1=1"], ["a task name has letters"]),
    ],
)
def test_bad_requests_are_clear_errors(store, tmp_path, capsys, args, expected) -> None:
    code, out, err = run_cli(capsys, store.uri, tmp_path, *args, "--no-log")
    assert code == 2 and out == ""
    assert all(text in err for text in expected), err


def test_text_formats_round_metrics_and_cut_long_cells_but_not_names() -> None:
    from deepms.tracking.compare import CompareError, format_table

    name, mods = "r" * 50, ",".join(f"Mod{i}@K" for i in range(20))
    table = pd.DataFrame({"run": [name], "run_id": ["a" * 32], "mods": [mods], "m": [float("nan")]})
    lines = format_table(table.assign(m=0.123456)).splitlines()
    assert lines[1].split() == [name, "a" * 8, mods[:37] + "...", "0.1235"]
    assert format_table(table, "markdown").splitlines()[2].endswith("| - |")
    assert format_table(table, "csv").splitlines()[1].startswith(f"{name},{'a' * 32},")
    with pytest.raises(CompareError, match="unknown format 'html'"):
        format_table(table, "html")
