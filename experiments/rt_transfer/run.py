"""rt_transfer: deepms's multi-system RT model calibrated to held-out LC systems, beside DeepLC.

Usage: ``make bench ARGS=rt_transfer`` or ``.venv/bin/python experiments/rt_transfer/run.py
[--folds 0 2] [--skip-in-split]``. For each fold of ``folds``: train the multi-system model
without those systems; for each held-out set, split it by peptide (its own configured split),
draw nested reference sets of ``reference_sizes`` peptides from its train part and at most
``max_test`` test peptides from its test part, calibrate (every method of
:mod:`deepms.tasks.deeprt.calibration`) and score; DeepLC 4.5 runs ``predict_and_calibrate`` on
the same largest reference set and the same test peptides. Then one model on every system is
scored per system against DeepLC calibrated on that system's training peptides. Results:
``results.json`` and ``results.md`` here.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/: _common, deeprt_vs_deeplc

from _common import (  # noqa: E402
    ROOT,
    compose_run,
    machine_line,
    results_header,
    table,
    timed_run,
    write_results,
)
from deeprt_vs_deeplc.run import deeplc_python, run_deeplc  # noqa: E402
from deeprt_vs_deeplc.run import load_spec as deeplc_spec  # noqa: E402

STUDY = HERE.name
DATA = "deeprt_multi_system"


@cache
def _all_sources() -> tuple[dict[str, Any], ...]:
    """The multi-system config's sources, composed once; the primary set's ``keep_all`` (whole
    DLOmix for the iRT champion) is dropped, so every system is capped alike."""
    from omegaconf import OmegaConf

    cfg = compose_run(["task=deeprt", f"data={DATA}"])
    sources = OmegaConf.to_container(cfg.data.sources, resolve=True)
    return tuple({k: v for k, v in s.items() if k != "keep_all"} for s in sources)


def system_sources(keep: Any) -> list[dict[str, Any]]:
    """The multi-system sources whose system passes ``keep``."""
    return [dict(s) for s in _all_sources() if keep(s["system"])]


def train(spec: dict[str, Any], tag: str, sources: list[dict[str, Any]]) -> tuple[Any, float]:
    overrides = [
        "task=deeprt",
        f"data={DATA}",
        f"seed={spec['seed']}",
        f"data.max_per_system={spec['max_per_system']}",
        *spec["train_overrides"],
    ]
    return timed_run(overrides, STUDY, tag, sources)


def held_out_set(spec: dict[str, Any], sources: list[dict[str, Any]]) -> Any:
    """The held-out system's own datamodule (its configured peptide-grouped split)."""
    from hydra.utils import instantiate

    cfg = compose_run(["task=deeprt", f"data={DATA}", f"seed={spec['seed']}"], sources=sources)
    cfg.data.max_per_system = None
    datamodule = instantiate(cfg.data, _convert_="partial")
    datamodule.setup("fit")
    return datamodule


def draw(samples: list[Any], n: int, seed: int) -> list[Any]:
    """A fixed-seed draw of ``n`` samples; smaller draws are prefixes (nested sets)."""
    order = np.random.default_rng(seed).permutation(len(samples))
    return [samples[i] for i in order[:n]]


def score(predicted: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    from deepms.metrics import regression_report

    return regression_report(np.asarray(predicted), np.asarray(observed))


def finetune(
    spec: dict[str, Any], result: Any, reference: list[Any], test: list[Any], unit: str, tag: str
) -> dict[str, Any]:
    """``train.py``'s fine-tuning from the fold's model on the reference peptides (90 % train,
    10 % val; the pretrained heads folded into the new one first), scored on the test peptides."""
    import pandas as pd

    folder = ROOT / "outputs" / "bench" / STUDY / tag / f"finetune{len(reference)}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, samples in (("reference", reference), ("test", test)):
        paths[name] = folder / f"{name}.csv"
        frame = {
            "peptide": [s.peptide.to_proforma() for s in samples],
            "rt": [s.rt for s in samples],
        }
        pd.DataFrame(frame).to_csv(paths[name], index=False)
    common = {"format": "rt_proforma", "unit": unit}
    sources = [
        {"path": str(paths["reference"]), **common, "split": [0.9, 0.1, 0.0]},
        {"path": str(paths["test"]), **common, "role": "test"},
    ]
    overrides = [
        "task=deeprt",
        "data=deeprt_deeplc_unmod",  # a one-source template; the sources are replaced
        # another seed: the references come from the seed's own train part, which the same
        # seed's hash would put wholly into train again (no val peptides)
        f"seed={spec['seed'] + 1}",
        f"finetune.from={result.best_checkpoint}",
        *spec["finetune_overrides"],
    ]
    tuned, seconds = timed_run(overrides, STUDY, f"{tag}-finetune{len(reference)}", sources, folder)
    metrics = {
        k.removeprefix("test_"): v for k, v in tuned.metrics.items() if k.startswith("test_")
    }
    return {
        **metrics,
        "n_reference": len(reference),
        "fit_seconds": seconds,
        "run_id": tuned.run_id,
    }


def calibrate_and_score(
    spec: dict[str, Any], result: Any, target: Any, threads: int, tag: str
) -> dict:
    """Every calibration method at every reference size, and DeepLC at the largest."""
    from deepms.tasks.deeprt.calibration import METHODS, RTCalibration
    from deepms.tasks.deeprt.predict import RTPredictor

    train_part = target.datasets["train"].samples
    test = draw(target.datasets["test"].samples, spec["max_test"], spec["seed"])
    observed = np.array([s.rt for s in test])
    reference = draw(train_part, max(spec["reference_sizes"]), spec["seed"] + 1)
    predictor = RTPredictor.from_checkpoint(result.best_checkpoint)
    start = time.perf_counter()
    test_outputs = predictor.head_outputs([s.peptide for s in test])
    speed = len(test) / (time.perf_counter() - start)
    ref_outputs = predictor.head_outputs([s.peptide for s in reference])
    rows: dict[str, Any] = {}
    for size in spec["reference_sizes"]:
        n = min(size, len(reference))
        ref_rt = np.array([s.rt for s in reference[:n]])
        for method in METHODS:
            fitted = RTCalibration.fit(ref_outputs[:n], ref_rt, method)
            rows[f"deepms {method} {size}"] = {
                **score(fitted.apply(test_outputs), observed),
                "n_reference": n,
            }
    for size in spec.get("finetune_sizes", []):
        rows[f"deepms finetune {size}"] = finetune(
            spec, result, reference[: min(size, len(reference))], test, target.rt_unit, tag
        )
    predicted, info = run_deeplc(deeplc_spec(), reference, test, threads)
    rows[f"DeepLC {max(spec['reference_sizes'])}"] = {
        **score(predicted, observed),
        "n_reference": len(reference),
        "peptides_per_s": len(test) / info["predict_seconds"],
    }
    return {
        "rt_unit": target.rt_unit,
        "split": target.split_name,
        "n_test": len(test),
        "deepms_peptides_per_s": speed,
        "rows": rows,
    }


def in_split(spec: dict[str, Any], threads: int) -> dict[str, Any]:
    """One model on every system vs DeepLC calibrated on each system's training peptides."""
    from deepms.tasks.deeprt.predict import RTPredictor

    sources = system_sources(lambda name: True)
    result, seconds = train(spec, "all-systems", sources)
    datamodule = result.datamodule
    predictor = RTPredictor.from_checkpoint(result.best_checkpoint)
    out: dict[str, Any] = {"run_id": result.run_id, "fit_seconds": seconds, "sets": {}}
    for index, name in enumerate(datamodule.systems):
        test = [s for s in datamodule.datasets["test"].samples if s.system == index]
        train_part = [s for s in datamodule.datasets["train"].samples if s.system == index]
        test = draw(test, spec["max_test"], spec["seed"])
        observed = np.array([s.rt for s in test])
        predictor.select_system(name)
        ours = predictor.predict_peptides([s.peptide for s in test])
        reference = draw(train_part, spec["deeplc_max_calibration"], spec["seed"] + 1)
        theirs, _ = run_deeplc(deeplc_spec(), reference, test, threads)
        out["sets"][name] = {
            "rt_unit": datamodule.system_units[name],
            "n_test": len(test),
            "n_train": len(train_part),
            "deepms": score(ours, observed),
            "DeepLC": {**score(theirs, observed), "n_reference": len(reference)},
        }
    out["split"] = datamodule.split_name
    return out


def fold_results(spec: dict[str, Any], fold: list[str], threads: int) -> dict[str, Any]:
    train_sources = system_sources(lambda name: name not in fold)
    result, seconds = train(spec, "without-" + "-".join(fold), train_sources)
    entry: dict[str, Any] = {
        "held_out": fold,
        "run_id": result.run_id,
        "fit_seconds": seconds,
        "train_systems": result.datamodule.systems,
        "sets": {},
    }
    for name in fold:
        target_sources = system_sources(lambda system, name=name: system == name)
        target = held_out_set(spec, target_sources)
        entry["sets"][name] = calibrate_and_score(spec, result, target, threads, name)
    return entry


def best_deepms(rows: dict[str, Any], size: int) -> tuple[str, dict[str, float]]:
    """The ridge calibration at ``size`` references (the method fixed in advance, not picked
    on the test peptides)."""
    key = f"deepms ridge {size}"
    return key, rows[key]


def markdown(results: dict[str, Any], spec: dict[str, Any]) -> str:
    big = max(spec["reference_sizes"])
    lines = [f"# {STUDY}", "", results["description"], ""]
    lines += ["## Held-out systems, calibrated from their own peptides", ""]
    header = [
        "set (unit)",
        "test",
        "method",
        *[f"MAE @{n}" for n in spec["reference_sizes"]],
        f"R @{big}",
        f"delta-t95 @{big}",
    ]
    rows = []
    ratio_rows = []
    for entry in results["folds"]:
        for name, s in entry["sets"].items():
            unit = s["rt_unit"]
            for method in ("ridge", "piecewise", "linear", "finetune"):
                found = {n: s["rows"].get(f"deepms {method} {n}") for n in spec["reference_sizes"]}
                if not any(found.values()):
                    continue
                maes = [f"{m['mae']:.2f}" if m else "" for m in found.values()]
                top = found[big] or {}
                rows.append(
                    [
                        f"{name} ({unit})",
                        s["n_test"],
                        f"deepms {method}",
                        *maes,
                        f"{top['r']:.4f}" if top else "",
                        f"{top['delta_t95']:.2f}" if top else "",
                    ]
                )
            d = s["rows"][f"DeepLC {big}"]
            rows.append(
                [
                    f"{name} ({unit})",
                    s["n_test"],
                    "DeepLC 4.5 predict_and_calibrate",
                    *[""] * (len(spec["reference_sizes"]) - 1),
                    f"{d['mae']:.2f}",
                    f"{d['r']:.4f}",
                    f"{d['delta_t95']:.2f}",
                ]
            )
            _, ours = best_deepms(s["rows"], big)
            ratio_rows.append(
                [name, f"{ours['mae']:.2f}", f"{d['mae']:.2f}", f"{ours['mae'] / d['mae']:.2f}"]
            )
    lines += [*table(header, rows), ""]
    lines += [f"### MAE ratio deepms (ridge, {big} references) / DeepLC", ""]
    lines += [*table(["held-out set", "deepms MAE", "DeepLC MAE", "ratio"], ratio_rows), ""]
    if results.get("in_split"):
        ins = results["in_split"]
        lines += ["## Trained on the set's own split (one model, every system)", ""]
        rows = [
            [
                name,
                s["rt_unit"],
                s["n_test"],
                f"{s['deepms']['mae']:.2f}",
                f"{s['DeepLC']['mae']:.2f}",
                f"{s['deepms']['mae'] / s['DeepLC']['mae']:.2f}",
                f"{s['deepms']['r']:.4f}",
                f"{s['DeepLC']['r']:.4f}",
            ]
            for name, s in ins["sets"].items()
        ]
        header = [
            "set",
            "unit",
            "test",
            "deepms MAE",
            "DeepLC MAE",
            "ratio",
            "deepms R",
            "DeepLC R",
        ]
        lines += [*table(header, rows), "", f"Split `{ins['split']}`.", ""]
    lines += [
        f"Seed {results['seed']}; {results['threads']} torch thread(s) for both tools; "
        f"{machine_line(results)}.",
        "",
    ]
    return "\n".join(lines)


def figures(results: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    big = max(spec["reference_sizes"])
    ratios = {}
    for entry in results["folds"]:
        for name, s in entry["sets"].items():
            ratios[name] = best_deepms(s["rows"], big)[1]["mae"] / s["rows"][f"DeepLC {big}"]["mae"]
    out = {f"mae_ratio_{k}": v for k, v in ratios.items()}
    if ratios:
        out["median_mae_ratio_vs_deeplc"] = float(np.median(list(ratios.values())))
    return out


def main(spec: dict[str, Any] | None = None, argv: list[str] | None = None) -> dict[str, Any]:
    """The whole study; ``make bench`` calls this with the study's spec."""
    spec = spec or yaml.safe_load((HERE / "study.yaml").read_text())
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", nargs="+", type=int, default=list(range(len(spec["folds"]))))
    parser.add_argument("--skip-in-split", action="store_true")
    args = parser.parse_args(argv or [])
    import torch

    torch.set_num_threads(spec["threads"])
    deeplc_python(deeplc_spec())
    start = time.perf_counter()
    results = {
        **results_header(STUDY, spec),
        "folds": [],
        "in_split": None,
    }
    for index in args.folds:  # results are rewritten after every fold: a crash loses one fold
        results["folds"].append(fold_results(spec, spec["folds"][index], spec["threads"]))
        write_results(HERE, results, markdown(results, spec))
    if not args.skip_in_split:
        results["in_split"] = in_split(spec, spec["threads"])
    results["wall_seconds"] = time.perf_counter() - start
    write_results(HERE, results, markdown(results, spec))
    return figures(results, spec)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    print(main(argv=sys.argv[1:]))
