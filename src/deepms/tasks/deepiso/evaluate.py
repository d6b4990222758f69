"""deepiso's test-time evaluation: the whole detector (and each peer) on the same maps.

What each metric can and cannot show:

- ``sim_*`` (held-out simulated maps): precision, recall, F1 under the issue's match rule (10 ppm
  mono m/z, same charge, truth apex inside the feature's RT span) and the quantification error
  (median |log2 ratio| of summed intensity after median normalisation). Exact, but only for what
  the simulator produces: a detector tuned to it may be rewarded for its simplifications.
- ``openms_ref_recall``: the share of OpenMS's 17 reference features of LCMS-centroided.mzML
  found by the same rule (reference m/z and apex as the "truth"). Agreement with another
  algorithm, not correctness; precision against it is not meaningful (OpenMS's list is not
  complete), so the number of features is logged beside it.
- ``replicates_*``: feature counts on in1 / in2 and reproducibility (share of in1's features found
  in in2 after a linear RT alignment). Consistency, not correctness: a detector reporting the same
  wrong signal twice scores.
- ``in1_spectra_per_s``: reading plus detection of the 2,035-spectrum in1 run on this process's
  threads; peers' ``in1_seconds`` are subprocess wall times (start-up and mzML reading included).
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepms.io.features import read_featurexml
from deepms.io.ms1map import Ms1Map, read_ms1_map
from deepms.tasks.deepiso.matching import evaluate_features, match_features, reproducibility

log = logging.getLogger(__name__)
Detector = Callable[[Ms1Map, Path | None], pd.DataFrame]


def simulated_scores(
    detected: list[pd.DataFrame], truths: list[pd.DataFrame], ppm: float
) -> dict[str, float]:
    """Pooled precision/recall/F1 over maps; quantification error as the maps' mean."""
    tp = n_det = n_truth = 0
    mae, sd = [], []
    for features, truth in zip(detected, truths, strict=True):
        result = evaluate_features(features, truth, ppm)
        tp, n_det, n_truth = (
            tp + result.true_positives,
            n_det + result.n_detected,
            n_truth + result.n_truth,
        )
        if np.isfinite(result.quant_log2_mae):
            mae.append(result.quant_log2_mae)
            sd.append(result.quant_log2_sd)
    precision = tp / n_det if n_det else 0.0
    recall = tp / n_truth if n_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "sim_precision": precision,
        "sim_recall": recall,
        "sim_f1": f1,
        "sim_quant_log2_mae": float(np.mean(mae)) if mae else float("nan"),
        "sim_quant_log2_sd": float(np.mean(sd)) if sd else float("nan"),
        "sim_n_detected": float(n_det),
        "sim_n_truth": float(n_truth),
    }


def reference_recall(features: pd.DataFrame, reference: pd.DataFrame, ppm: float) -> float:
    """Share of reference features matched one-to-one by ``features`` (the issue's rule)."""
    if not len(reference):
        return float("nan")
    truth = reference.rename(columns={"mz": "mono_mz"})
    return len(match_features(features, truth, ppm)) / len(reference)


def evaluate_detector(
    run: Detector, datamodule: Any, ppm: float, workdir: Path, in_process: bool = True
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """One detector on every evaluation map: metrics and the feature lists kept for pictures.

    ``in_process`` detectors get the map read here (its reading counts in their speed); peers
    (subprocesses) get the file path only.
    """
    metrics: dict[str, float] = {}
    kept: dict[str, pd.DataFrame] = {}
    detected = []
    for i, m in enumerate(datamodule.test_maps):
        detected.append(run(m.ms1, workdir / f"sim_{i}.mzML"))
    kept["sim_0"] = detected[0]
    metrics.update(simulated_scores(detected, [m.truth for m in datamodule.test_maps], ppm))
    real = datamodule.real
    if real.example is not None:
        features = run(read_ms1_map(real.example), real.example)
        kept["openms_example"] = features
        metrics["openms_n_features"] = float(len(features))
        if real.example_reference is not None:
            reference = read_featurexml(real.example_reference)
            metrics["openms_ref_recall"] = reference_recall(features, reference, ppm)
        if real.example_test_output is not None:
            reference = read_featurexml(real.example_test_output)
            metrics["openms_test_output_recall"] = reference_recall(features, reference, ppm)
    if len(real.replicates) >= 2:
        runs = []
        for j, path in enumerate(real.replicates[:2]):
            start = time.perf_counter()
            ms1 = read_ms1_map(path) if in_process else None
            features = run(ms1, path)
            seconds = time.perf_counter() - start
            runs.append(features)
            if j == 0:
                metrics["in1_seconds"] = seconds
                if ms1 is not None:
                    metrics["in1_spectra_per_s"] = len(ms1) / seconds
        repro = reproducibility(runs[0], runs[1], ppm=ppm)
        metrics.update(
            replicates_n_in1=float(len(runs[0])),
            replicates_n_in2=float(len(runs[1])),
            replicates_reproducibility=repro["reproducibility"],
            replicates_rt_slope=repro["rt_slope"],
        )
        kept["in1"] = runs[0]
    return metrics, kept


def _peer_runner(name: str, workdir: Path) -> Detector:
    from deepms.io.ms1map import write_ms1_mzml
    from deepms.tasks.deepiso.peers import run_peer

    def run(ms1: Ms1Map | None, path: Path | None) -> pd.DataFrame:
        assert path is not None
        if ms1 is not None and not path.is_file():  # a simulated map: write it once for peers
            write_ms1_mzml(ms1, path)
        return run_peer(name, path, workdir / name / path.stem)

    return run


def evaluate_all(model: Any, datamodule: Any, loggers: Any = None) -> dict[str, float]:
    """deepms and the configured peers on the same maps; pictures to MLflow. Prefixed metrics."""
    h = model.hparams
    ppm = float(h.match_ppm)
    metrics: dict[str, float] = {}
    lists: dict[str, dict[str, pd.DataFrame]] = {}
    with tempfile.TemporaryDirectory(prefix="deepiso_eval_") as tmp:
        workdir = Path(tmp)
        ours, lists["deepms"] = evaluate_detector(
            lambda ms1, path: model.detect(ms1), datamodule, ppm, workdir
        )
        metrics.update({f"deepms_{k}": v for k, v in ours.items()})
        if h.get("ablation", True):  # the grouper without the CNN: what the network adds
            from deepms.tasks.deepiso.predict import detect_features

            found, _ = evaluate_detector(
                lambda ms1, path: detect_features(model, ms1, rules_only=True),
                datamodule,
                ppm,
                workdir,
            )
            metrics.update({f"rules_only_{k}": v for k, v in found.items()})
            if h.get("grouper", "rules") == "learned":  # the CNN with the rule-based grouper
                found, _ = evaluate_detector(
                    lambda ms1, path: detect_features(model, ms1, grouper="rules"),
                    datamodule,
                    ppm,
                    workdir,
                )
                metrics.update({f"rules_grouper_{k}": v for k, v in found.items()})
        if h.peers:
            try:
                import deepms.tasks.deepiso.peers  # noqa: F401
            except ImportError as exc:
                warnings.warn(
                    f"deepiso peers unavailable ({exc}); only deepms is scored", stacklevel=2
                )
            else:
                for peer in h.peers:
                    try:
                        found, lists[peer] = evaluate_detector(
                            _peer_runner(peer, workdir), datamodule, ppm, workdir, in_process=False
                        )
                    except Exception as exc:  # a peer's failure must not lose deepms's figures
                        log.warning("peer %s failed: %s", peer, exc)
                        continue
                    metrics.update({f"{peer}_{k}": v for k, v in found.items()})
    if h.pictures and loggers:
        _pictures(datamodule, lists, loggers)
    for key, value in sorted(metrics.items()):
        log.info("deepiso test %s = %.4g", key, value)
    return metrics


def _pictures(datamodule: Any, lists: dict[str, dict[str, pd.DataFrame]], loggers: Any) -> None:
    """Map images with features outlined (deepms red, peers other colours) and envelopes."""
    from deepms.tasks.deepiso import pictures
    from deepms.tracking.mlflow_setup import log_figure

    real = datamodule.real
    maps = {"sim_0": datamodule.test_maps[0].ms1}
    if real.example is not None:
        maps["openms_example"] = read_ms1_map(real.example)
    for key, ms1 in maps.items():
        named = {name: kept[key] for name, kept in lists.items() if key in kept}
        if key == "openms_example" and real.example_reference is not None:
            named["openms_reference"] = read_featurexml(real.example_reference)
        if key == "sim_0":
            truth = datamodule.test_maps[0].truth.rename(columns={"mono_mz": "mz"})
            named = {"truth": truth, **named}
        log_figure(loggers, pictures.map_with_features(ms1, named, key), f"plots/map_{key}.png")
    log_figure(
        loggers,
        pictures.envelopes(maps["sim_0"], lists["deepms"]["sim_0"]),
        "plots/envelopes_sim_0.png",
    )
