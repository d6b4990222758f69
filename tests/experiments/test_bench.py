"""`make bench`: studies -> results/<study>.json (mean, spread) -> markdown and README table.

The end-to-end test runs a tiny deeprt study (2 seeds, each in its own process, with the ridge
baseline) into a temporary folder; the README it rewrites is a temporary copy, never the real one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

import bench  # noqa: E402
import bench_report  # noqa: E402

README = "# x\n\nintro\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\n## after\n"


def _run(seed: int, value: float, baseline: float) -> dict:
    return {
        "seed": seed,
        "run_id": f"r{seed}",
        "mode": "min",
        "metrics": {"test_mae": value},
        "train_samples_per_s": 100.0,
        "inference_samples_per_s": 1000.0,
        "fit_seconds": 3.0,
        "seconds": 5.0,
        "peak_memory_mb": 500.0 + seed,
        "checkpoint_mb": 1.5,
        "params": 123_456,
        "data": "set",
        "split": f"grouped_seed{seed}",
        "datasets": {},
        "baselines": {
            "ridge": {"metrics": {"test_mae": baseline}, "seconds": 0.1},
            "worse": {"metrics": {"test_mae": baseline + 10}, "seconds": 0.1},
        },
    }


def test_summary_and_tables_come_from_the_runs(tmp_path: Path) -> None:
    spec = {"name": "s", "task": "deeprt", "primary_metric": "test_mae", "description": "d"}
    stamp = {"commit": "a" * 40, "dirty": False, "date": "now", "machine": {"platform": "p"}}
    stamp["machine"]["cpus"] = 2
    summary = bench_report.summarise(spec, [_run(42, 4.0, 6.0), _run(43, 6.0, 8.0)], stamp)
    assert summary["metrics"]["test_mae"] == pytest.approx({"mean": 5.0, "std": 2**0.5, "n": 2})
    assert summary["peak_memory_mb"] == 543.0
    assert bench_report.best_baseline(summary)[0] == "ridge"  # mode min: lower is better
    row = bench_report.readme_row(summary)
    assert row[3] == "test_mae 5.00 ± 1.41 (2)" and row[4] == "ridge: 7.00 ± 1.41"
    assert row[2] == "set (grouped_seed{42,43})"
    results = tmp_path / "results"
    results.mkdir()
    (results / "s.json").write_text(json.dumps(summary))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    bench_report.update_readme(readme, results, tmp_path)
    text = readme.read_text()
    assert "old" not in text and text.endswith("## after\n") and text.startswith("# x\n")
    assert "| deeprt | s | set (grouped_seed{42,43}) | test_mae 5.00 ± 1.41 (2) |" in text
    assert "| seed | split | test_mae |" in bench_report.study_markdown(summary)


def test_suite_skips_long_and_own_runner_studies() -> None:
    suite = bench.list_studies(EXPERIMENTS, suite_only=True)
    assert "pdeep_quick" in suite and "deeprt_quick" in suite
    assert "pdeep_reference" not in suite and "deeprt_vs_deeplc" not in suite
    assert "pdeep_reference" in bench.list_studies(EXPERIMENTS, suite_only=False)
    for name in bench.list_studies(EXPERIMENTS, suite_only=False):
        spec = bench.load_study(EXPERIMENTS / name)
        assert spec["task"] and (spec.get("primary_metric") or spec.get("bench_script")), name


@pytest.mark.slow
def test_bench_runs_a_tiny_study_end_to_end(tmp_path: Path, mirror: Path) -> None:
    study = tmp_path / "experiments" / "tiny_rt"
    study.mkdir(parents=True)
    spec = {
        "task": "deeprt",
        "description": "tiny",
        "overrides": [
            "experiment=deeprt_tiny",
            "trainer.max_epochs=1",
            f"paths.data_mirror={mirror}",
            f"paths.mlruns_dir={tmp_path / 'mlruns'}",
            f"logger.mlflow.tracking_uri=sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        ],
        "seeds": [42, 43],
        "inference_method": "predict_rt",
        "baselines": {"ridge": "baselines.rt:ridge_composition"},
        "primary_metric": "test_mae",
    }
    (study / "study.yaml").write_text(yaml.safe_dump(spec))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    args = ["--experiments", str(study.parent), "--results", str(tmp_path / "results")]
    args += ["--readme", str(readme), "--outputs", str(tmp_path / "out")]
    assert bench.main(args) == 0
    summary = json.loads((tmp_path / "results" / "tiny_rt.json").read_text())
    assert summary["seeds"] == [42, 43]
    assert set(summary["metrics"]["test_mae"]) == {"mean", "std", "n"}
    assert summary["metrics"]["test_mae"]["n"] == 2
    assert summary["baselines"]["ridge"]["metrics"]["test_mae"]["n"] == 2
    for run in summary["runs"]:
        assert run["train_samples_per_s"] > 0 and run["inference_samples_per_s"] > 0
        assert run["params"] > 0 and run["checkpoint_mb"] > 0 and run["split"]
    assert summary["commit"]
    assert (tmp_path / "results" / "tiny_rt.md").exists()
    assert "| deeprt | tiny_rt |" in readme.read_text()
