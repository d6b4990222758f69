"""Transfer of a pretrained RT model to a new LC system: fine-tune vs calibrate vs from scratch.

Usage: ``.venv/bin/python experiments/deeprt_transfer/run.py [--pretrained URI]``. The pretrained
model is ``models:/deeprt@champion`` (the registry's champion, as in the issue's command); when the
registry has none, the default ``python train.py task=deeprt`` model (DLOmix iRT) is trained,
registered as ``deeprt`` and promoted to ``@champion`` first. Every arm then trains and tests on the
same target set (HeLa phosphopeptides) with the same peptide-grouped split; ``fraction`` is the
share of the target's train and val peptides it may use (the test split is always whole):

* scratch     -- a new model on the fraction only;
* finetune    -- the pretrained weights, all layers trained on the fraction;
* finetune_frozen -- the same with the embedding and convolutions frozen;
* calibrate   -- the pretrained model unchanged, a piecewise-linear map of its output fitted on
  the fraction (the classic calibration baseline).

Results: ``results.json`` and ``results.md`` beside this file; every arm is an MLflow run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/: _common

from _common import (  # noqa: E402
    ROOT,
    compose_run,
    machine_line,
    provenance,
    table,
    write_results,
)

STUDY = HERE.name


def ensure_pretrained(uri: str, spec: dict[str, Any], seed: int) -> tuple[str, dict[str, Any]]:
    """``uri`` when it resolves; else train, register and promote the default deeprt model."""
    from deepms.errors import DeepMSError
    from deepms.training.finetune import resolve_checkpoint
    from deepms.training.runner import run

    try:
        path = resolve_checkpoint(uri)
        return uri, {"source": uri, "trained_here": False, "checkpoint": path.name}
    except DeepMSError as missing:
        print(f"{STUDY}: {missing}; training the default deeprt model first", flush=True)
    name = uri.removeprefix("models:/").split("@")[0].split("/")[0]
    cfg = compose_run(
        [
            "task=deeprt",
            f"seed={seed}",
            *spec.get("pretrain_overrides", []),
            "registry.register=true",
            f"registry.name={name}",
            "registry.promote_if=always",
        ],
        study=STUDY,
        run_name=f"{STUDY}-pretrain-s{seed}",
        output_dir=ROOT / "outputs" / "bench" / STUDY / "pretrain",
    )
    result = run(cfg)
    metrics = {k: v for k, v in result.metrics.items() if k.startswith("test_")}
    return uri, {"source": uri, "trained_here": True, "run_id": result.run_id, **metrics}


ARMS: dict[str, list[str]] = {
    "scratch": [],
    "finetune": ["finetune.from={uri}"],
    "finetune_frozen": ["finetune.from={uri}", "finetune.freeze=[net.embed,net.convs]"],
    "calibrate": ["finetune.from={uri}", "finetune.mode=calibrate"],
}


def run_arm(arm: str, fraction: float, uri: str, spec: dict[str, Any], seed: int):
    from deepms.training.runner import run

    tag = f"{arm}-f{fraction:g}"
    cfg = compose_run(
        [
            "task=deeprt",
            f"data={spec['target']}",
            f"seed={seed}",
            f"finetune.fraction={fraction}",
            *[a.format(uri=uri) for a in ARMS[arm]],
            *spec.get("arm_overrides", []),
        ],
        study=STUDY,
        run_name=f"{STUDY}-{tag}-s{seed}",
        output_dir=ROOT / "outputs" / "bench" / STUDY / tag,
    )
    start = time.perf_counter()
    result = run(cfg)
    return {
        "arm": arm,
        "fraction": fraction,
        "n_train": result.lineage["n_samples"]["train"],
        "n_val": result.lineage["n_samples"]["val"],
        "n_test": result.lineage["n_samples"]["test"],
        "split": result.lineage["split"],
        "rt_unit": result.lineage["rt_unit"],
        "run_id": result.run_id,
        "seconds": time.perf_counter() - start,
        "metrics": {k: v for k, v in result.metrics.items() if k.startswith("test_")},
    }


HEADER = [
    "arm",
    "fraction",
    "train peptides",
    "MAE",
    "median AE",
    "delta-t95",
    "R",
    "R2",
    "seconds",
]


def _row(r: dict[str, Any]) -> list[Any]:
    m = r["metrics"]
    figures = [f"{m[k]:.2f}" for k in ("test_median_ae", "test_delta_t95")]
    figures += [f"{m[k]:.4f}" for k in ("test_r", "test_r2")]
    mae = f"{m['test_mae']:.2f} {r['rt_unit']}"
    return [r["arm"], f"{r['fraction']:g}", r["n_train"], mae, *figures, f"{r['seconds']:.0f}"]


def markdown(results: dict[str, Any]) -> str:
    first = results["arms"][0]
    lines = [
        f"# {STUDY}",
        "",
        results["description"],
        "",
        f"Pretrained: `{results['pretrained']['source']}`; target `{results['target']}`.",
        "",
        *table(HEADER, [_row(r) for r in results["arms"]]),
        "",
        f"Test split of `{first['split'].split('_frac')[0]}` ({first['n_test']} peptides, the "
        "same for every arm; `fraction` thins only train and val); "
        f"seed {results['seed']}; {machine_line(results)}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    spec = yaml.safe_load((HERE / "study.yaml").read_text())
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pretrained", default=spec["pretrained"])
    parser.add_argument("--seed", type=int, default=spec.get("seeds", [42])[0])
    parser.add_argument("--fractions", nargs="+", type=float, default=spec["fractions"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    uri, pretrained = ensure_pretrained(args.pretrained, spec, args.seed)
    start = time.perf_counter()
    arms = [
        run_arm(arm, fraction, uri, spec, args.seed) for fraction in args.fractions for arm in ARMS
    ]
    results = {
        "study": STUDY,
        "description": spec["description"],
        "target": spec["target"],
        "pretrained": pretrained,
        **provenance(),
        "seed": args.seed,
        "arms_seconds": time.perf_counter() - start,
        "arms": arms,
    }
    write_results(HERE, results, markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
