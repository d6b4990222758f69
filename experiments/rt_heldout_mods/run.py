"""Held-out modifications: deepms's composition encoding beside DeepLC on peptides whose
modification kind was never in training (issue 18, Build 1).

Usage: ``.venv/bin/python experiments/rt_heldout_mods/run.py [--folds oxidation ...]``.
First the random split (``encodings``), then per fold of ``folds``: deepms trained with
``data.held_out_mods=[...]`` for each of ``held_out_encodings``, and DeepLC 4.5 calibrated on the
same training peptides, both predicting the held-out peptides; every result is also broken down
by modification kind. Results: ``results.json`` and ``results.md`` beside this file.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/: _common, deeprt_vs_deeplc

from _common import machine_line, results_header, table, timed_run, write_results  # noqa: E402
from deeprt_vs_deeplc.run import deeplc_python, run_deeplc  # noqa: E402
from deeprt_vs_deeplc.run import load_spec as deeplc_spec  # noqa: E402

STUDY = HERE.name


def train(spec: dict[str, Any], tag: str, extra: list[str]) -> tuple[Any, float]:
    overrides = [
        "task=deeprt",
        f"data=deeprt_{spec['set']}",
        f"seed={spec['seed']}",
        *spec["train_overrides"],
        *extra,
    ]
    return timed_run(overrides, STUDY, tag)


def kinds_of(sample: Any, names: list[str]) -> list[str]:
    """The held-out kinds a peptide carries."""
    carried = {m.name.lower() for m in sample.peptide.mods if m is not None}
    return [n for n in names if n.lower() in carried]


def score(predicted: np.ndarray, samples: list[Any], names: list[str] | None = None) -> dict:
    """Metrics over all samples, and (with ``names``) per held-out kind."""
    from deepms.metrics import regression_report

    observed = np.array([s.rt for s in samples])
    out = {"all": {**regression_report(predicted, observed), "n": len(samples)}}
    for name in names or []:
        rows = np.array([bool(kinds_of(s, [name])) for s in samples])
        if rows.sum() >= 2:
            out[name] = {**regression_report(predicted[rows], observed[rows]), "n": int(rows.sum())}
    return out


def deepms_predict(result: Any, samples: list[Any]) -> tuple[np.ndarray, float]:
    from deepms.tasks.deeprt.predict import RTPredictor

    predictor = RTPredictor.from_checkpoint(result.best_checkpoint)
    start = time.perf_counter()
    predicted = predictor.predict_peptides([s.peptide for s in samples])
    return predicted, len(samples) / (time.perf_counter() - start)


def random_split(spec: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for encoding in spec["encodings"]:
        result, seconds = train(spec, f"random-{encoding}", [f"data.mod_encoding={encoding}"])
        test = result.datamodule.datasets["test"].samples
        predicted, speed = deepms_predict(result, test)
        rows[encoding] = {
            **score(predicted, test)["all"],
            "run_id": result.run_id,
            "split": result.datamodule.split_name,
            "fit_seconds": seconds,
            "peptides_per_s": speed,
        }
    return rows


def held_out_fold(spec: dict[str, Any], fold: str, names: list[str], threads: int) -> dict:
    listed = "[" + ",".join(names) + "]"
    entry: dict[str, Any] = {"fold": fold, "held_out": names, "rows": {}}
    datamodule = None
    for encoding in spec["held_out_encodings"]:
        result, seconds = train(
            spec,
            f"{fold}-{encoding}",
            [f"data.mod_encoding={encoding}", f"data.held_out_mods={listed}"],
        )
        datamodule = result.datamodule
        held = datamodule.datasets["held_out_mods"].samples
        predicted, _ = deepms_predict(result, held)
        entry["rows"][f"deepms ({encoding})"] = {
            **score(predicted, held, names),
            "run_id": result.run_id,
            "fit_seconds": seconds,
        }
    train_samples = datamodule.datasets["train"].samples
    predicted, info = run_deeplc(deeplc_spec(), train_samples, held, threads)
    entry["rows"]["DeepLC 4.5"] = {**score(predicted, held, names), "info": info}
    entry.update(split=datamodule.split_name, n_train=len(train_samples), n_held_out=len(held))
    return entry


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# {STUDY}", "", results["description"], "", "## Random split (all kinds seen)", ""]
    header = ["encoding", "MAE min", "median AE", "delta-t95", "R", "test peptides", "fit s"]
    rows = [
        [
            k,
            f"{m['mae']:.2f}",
            f"{m['median_ae']:.2f}",
            f"{m['delta_t95']:.2f}",
            f"{m['r']:.4f}",
            m["n"],
            f"{m['fit_seconds']:.0f}",
        ]
        for k, m in results["random"].items()
    ]
    splits = {m["split"] for m in results["random"].values()}
    lines += [*table(header, rows), "", f"Split: {', '.join(f'`{s}`' for s in splits)}.", ""]
    lines += ["## Held-out modification kinds", ""]
    header = ["fold / kind", "peptides", *results["folds"][0]["rows"]] if results["folds"] else []
    rows = []
    ratio: dict[str, list[float]] = defaultdict(list)
    for entry in results["folds"]:
        models = list(entry["rows"])
        for kind in ["all", *entry["held_out"]]:
            first = entry["rows"][models[0]]
            if kind not in first:
                continue
            label = f"**{entry['fold']}** (all)" if kind == "all" else kind
            maes = [entry["rows"][m][kind]["mae"] for m in models]
            rows.append([label, first[kind]["n"], *[f"{v:.2f}" for v in maes]])
            if kind == "all":
                for model, value in zip(models[:-1], maes[:-1], strict=True):
                    ratio[model].append(value / maes[-1])
    lines += ["MAE (min) on the held-out peptides:", "", *table(header, rows), ""]
    for model, values in ratio.items():
        lines.append(
            f"- {model} / DeepLC MAE ratio per fold: " + ", ".join(f"{v:.2f}" for v in values)
        )
    lines += [
        "",
        f"Seed {results['seed']}; {results['threads']} torch thread(s); {machine_line(results)}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    spec = yaml.safe_load((HERE / "study.yaml").read_text())
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", nargs="+", default=list(spec["folds"]))
    parser.add_argument("--skip-random", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(spec["threads"])
    deeplc_python(deeplc_spec())
    start = time.perf_counter()
    results = {
        **results_header(STUDY, spec),
        "random": {} if args.skip_random else random_split(spec),
        "folds": [],
    }
    for fold in args.folds:  # rewritten after every fold: a crash loses one fold only
        results["folds"].append(held_out_fold(spec, fold, spec["folds"][fold], spec["threads"]))
        write_results(HERE, results, markdown(results))
    results["wall_seconds"] = time.perf_counter() - start
    write_results(HERE, results, markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
