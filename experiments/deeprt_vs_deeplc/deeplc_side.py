"""DeepLC's side of the comparison; runs inside the DeepLC venv (pandas < 3), never imports deepms.

Usage: ``python deeplc_side.py CALIBRATION.csv TEST.csv OUT.csv --threads N``. Both inputs have a
ProForma ``peptide`` column; the calibration file also ``rt`` (minutes). DeepLC's pretrained default
model is calibrated on the calibration peptides (``deeplc.calibrate``, its default ridge calibration
over the multitask heads), then predicts the test peptides with that fitted calibration. Writes
``peptide,predicted_rt`` and prints one JSON line with the timings.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd


def _psms(frame: pd.DataFrame, with_rt: bool):
    from psm_utils import PSM, PSMList

    rts = frame["rt"] if with_rt else [None] * len(frame)
    return PSMList(
        psm_list=[
            PSM(peptidoform=p, spectrum_id=str(i), retention_time=rt)
            for i, (p, rt) in enumerate(zip(frame["peptide"], rts, strict=True))
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("calibration")
    parser.add_argument("test")
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import deeplc

    calibration, test = pd.read_csv(args.calibration), pd.read_csv(args.test)
    reference = _psms(calibration, with_rt=True)
    start = time.perf_counter()
    fitted = deeplc.calibrate(reference)
    calibrate_s = time.perf_counter() - start
    start = time.perf_counter()  # the reference is only passed along: the fit is not redone
    predicted = deeplc.predict_and_calibrate(
        _psms(test, with_rt=False), psm_list_reference=reference, calibration=fitted
    )
    predict_s = time.perf_counter() - start
    pd.DataFrame({"peptide": test["peptide"], "predicted_rt": predicted}).to_csv(
        args.out, index=False
    )
    print(
        json.dumps(
            {
                "deeplc_version": deeplc.__version__,
                "torch_version": torch.__version__,
                "n_calibration": len(calibration),
                "n_test": len(test),
                "calibrate_seconds": calibrate_s,
                "predict_seconds": predict_s,
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
