"""A small synthetic peak-group table in the reader's standard columns (and as a PyProphet TSV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SCORES = ("main_var_xx_swath_prelim_score", "var_library_corr", "var_xcorr_shape", "var_noise")


def peak_groups(n_pairs: int = 120, per_group: int = 4, seed: int = 0) -> pd.DataFrame:
    """``n_pairs`` target precursors and their decoys; 70 % of targets hold one true peak group
    whose informative sub-scores are shifted up; everything else is null."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_pairs):
        present = rng.random() < 0.7
        for decoy in (False, True):
            precursor = f"{'DECOY_' if decoy else ''}{i}"
            for j in range(per_group):
                x = rng.normal(size=len(SCORES))
                if present and not decoy and j == 0:
                    x[:3] += (3.0, 2.5, 2.0)
                rows.append(
                    {
                        "feature_id": f"f{len(rows)}",
                        "group_id": f"{precursor}_run0",
                        "precursor_id": precursor,
                        "pair_id": str(i),
                        "run": "0",
                        "decoy": decoy,
                        "peptide": f"{'DECOY_' if decoy else ''}PEPTIDE{i}K",
                        "charge": 2,
                        "rt": float(rng.uniform(0, 100)),
                        **dict(zip(SCORES, x.tolist(), strict=True)),
                    }
                )
    frame = pd.DataFrame(rows)
    frame.attrs["score_columns"] = list(SCORES)
    return frame


def write_pyprophet_tsv(frame: pd.DataFrame, path: Path) -> Path:
    """PyProphet's test-data layout: group_id, run_id, decoy (0/1), then the sub-scores."""
    out = pd.DataFrame(
        {"group_id": frame["group_id"], "run_id": 0, "decoy": frame["decoy"].astype(int)}
    )
    for column in SCORES:
        out[column] = frame[column]
    out.to_csv(path, sep="\t", index=False)
    return path
