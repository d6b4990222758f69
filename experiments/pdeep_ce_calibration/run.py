"""Collision-energy calibration on a source the model never saw (issue 19, Build 1).

Usage: ``.venv/bin/python experiments/pdeep_ce_calibration/run.py --checkpoint CKPT``, where CKPT
is a pdeep model trained WITHOUT MassIVE-KB (the command is in this folder's README). MassIVE-KB
(500 HCD spectra, no NCE recorded) is split by peptide sequence into a calibration pool and an
evaluation half; calibration draws n spectra from the pool (n = 50, 200, the whole pool; five
draws each), chooses the NCE (:mod:`deepms.tasks.pdeep.calibrate`) and is scored by the median
Pearson correlation on the evaluation half, which it never saw. Before: the model with the NCE
flagged unknown (what ``deepms predict`` does for such a file), and at a fixed NCE of 30.
Results: ``results.json`` and ``results.md`` beside this file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/: _common

from _common import machine_line, provenance, table, write_results  # noqa: E402

SIZES = (50, 200, None)  # None: the whole calibration pool
DRAWS = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--checkpoint", required=True, help="pdeep model trained without MassIVE-KB"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from deepms.datasets.registry import get_dataset, resolve_file
    from deepms.io import write_mgf
    from deepms.io.formats import get_format
    from deepms.tasks.pdeep.calibrate import calibrate, load_identified, spectrum_pcc
    from deepms.tasks.pdeep.predict import PDeepPredictor

    start = time.perf_counter()
    files = [resolve_file(f) for f in get_dataset("pdeep_massivekb").files]
    spectra = list(get_format("peprec_mgf").read(files, "skip"))
    predictor = PDeepPredictor.from_checkpoint(args.checkpoint, batch_size=128)
    with tempfile.TemporaryDirectory() as tmp:
        mgf = Path(tmp) / "massivekb.mgf"
        write_mgf(spectra, mgf)
        samples, unusable = load_identified(
            mgf, predictor.fragment_charges, encoder=predictor.encoder
        )
    rng = np.random.default_rng(args.seed)
    sequences = sorted({s.peptide.sequence for s in samples})
    rng.shuffle(sequences)
    pool_sequences = set(sequences[: len(sequences) // 2])
    pool = [s for s in samples if s.peptide.sequence in pool_sequences]
    held_out = [s for s in samples if s.peptide.sequence not in pool_sequences]

    def median_at(nce: float | None) -> float:
        return float(np.median(spectrum_pcc(predictor, held_out, nce)))

    before = {"unknown": median_at(None), "30": median_at(30.0)}
    rows = []
    for size in SIZES:
        n = len(pool) if size is None else size
        draws = 1 if size is None else DRAWS
        chosen, after = [], []
        for _ in range(draws):
            picked = [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]
            result = calibrate(predictor, picked, "massivekb pool")
            chosen.append(result.nce)
            after.append(median_at(result.nce))
        rows.append({"n": n, "draws": draws, "nce": chosen, "median_pcc": after})
    curve = calibrate(predictor, pool, "massivekb pool").curve
    results = {
        **provenance(),
        "checkpoint": str(args.checkpoint),
        "spectra": len(samples),
        "unusable": unusable,
        "pool": len(pool),
        "held_out": len(held_out),
        "before": before,
        "calibrated": rows,
        "pool_curve": curve,
        "seconds": time.perf_counter() - start,
    }
    lines = [
        "# pdeep: collision-energy calibration on MassIVE-KB, a source the model never saw",
        "",
        f"Model: `{args.checkpoint}` (trained without MassIVE-KB). MassIVE-KB: {len(samples)} "
        f"usable spectra ({unusable} unusable), split by peptide into a calibration pool of "
        f"{len(pool)} and {len(held_out)} held-out spectra. Median PCC on the held-out spectra:",
        "",
        *table(
            ["NCE used", "chosen NCE (per draw)", "held-out median PCC"],
            [
                ["unknown (no calibration)", "-", f"{before['unknown']:.4f}"],
                ["30 (fixed)", "-", f"{before['30']:.4f}"],
                *[
                    [
                        f"calibrated on {r['n']} spectra ({r['draws']} draws)",
                        ", ".join(f"{x:g}" for x in r["nce"]),
                        f"{np.mean(r['median_pcc']):.4f} ± {np.std(r['median_pcc']):.4f}",
                    ]
                    for r in rows
                ],
            ],
        ),
        "",
        "Calibration curve on the whole pool (NCE: median PCC): "
        + ", ".join(f"{k}: {v:.3f}" for k, v in curve.items()),
        "",
        f"{results['seconds']:.0f} s in all. {machine_line(results)}",
        "",
    ]
    write_results(HERE, results, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
