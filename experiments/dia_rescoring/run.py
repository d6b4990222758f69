"""What deepms-predicted sub-scores add to OpenSWATH's on DIAlignR's merged.osw (3 SWATH runs).

(a) per sub-score, separation of each target precursor-run's PyProphet-confident peak group
    (SCORE_MS2 RANK 1, QVALUE < 0.01) from its other candidate peak groups: pooled AUC and
    top-1 (the confident group has the best value in its group);
(b) grouped-CV (folds by precursor) logistic regression picking the confident peak group per
    precursor-run from OpenSWATH sub-scores alone vs plus the deepms sub-scores;
(c) indicative only (10 decoy precursors): the (b) models applied to the decoys' peak groups,
    best per precursor-run, target-decoy counts.

Usage: MLFLOW_TRACKING_URI=... python experiments/dia_rescoring/run.py OSW --out-dir DIR
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from deepms.chem import parse_proforma
from deepms.io.library import library_peptide
from deepms.io.openswath import read_peak_groups
from deepms.registry.resolve import load_predictor
from deepms.tasks.dia.rescore import (
    FEATURE_COLUMNS,
    feature_transitions,
    precursor_table,
    prediction_features,
)

DEEPMS = list(FEATURE_COLUMNS)
#: OpenSWATH sub-scores that compare with the experimental library (RT and intensities)
LIBRARY_BASED = (
    "var_library_corr",
    "var_library_dotprod",
    "var_library_manhattan",
    "var_library_rmsd",
    "var_library_rootmeansquare",
    "var_library_sangle",
    "var_norm_rt_score",
)
#: +1: higher is better; -1: lower is better (for AUC / top-1)
DIRECTION = {
    "var_library_corr": 1,
    "var_deepms_library_corr": 1,
    "var_library_sangle": -1,
    "var_deepms_library_sa": 1,
    "var_norm_rt_score": -1,
    "var_deepms_rt_deviation": -1,
    "var_control_library_library_corr": 1,
    "var_control_library_library_sa": 1,
    "var_control_library_rt_deviation": -1,
}


class LibraryIntensities:
    """Control: the OSW's own experimental library served through the predictor interface, so the
    same join/similarity code reproduces OpenSWATH's var_library_corr (checks the plumbing)."""

    def __init__(self, osw: Path) -> None:
        ions = feature_transitions(osw).drop_duplicates("transition_id")
        with sqlite3.connect(f"file:{osw}?mode=ro", uri=True) as conn:
            lib = pd.read_sql_query(
                "SELECT CAST(ID AS TEXT) AS transition_id, LIBRARY_INTENSITY FROM TRANSITION", conn
            )
        pre = precursor_table(osw)
        pre = pre[pre["peptide"] != ""]
        pre = pre.assign(
            ModifiedPeptide=[library_peptide(parse_proforma(p)) for p in pre["peptide"]]
        )
        self.table = ions.merge(lib, on="transition_id").merge(pre, on="precursor_id")

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        t = self.table
        return pd.DataFrame(
            {
                "ModifiedPeptide": t["ModifiedPeptide"],
                "PrecursorCharge": t["charge"],
                "FragmentType": t["fragment_type"],
                "FragmentNumber": t["fragment_number"],
                "FragmentCharge": t["fragment_charge"],
                "RelativeIntensity": t["LIBRARY_INTENSITY"],
            }
        )


class LibraryRT:
    """Control: the library's own iRT (PRECURSOR.LIBRARY_RT) as the 'prediction'."""

    def __init__(self, osw: Path) -> None:
        pre = precursor_table(osw)
        with sqlite3.connect(f"file:{osw}?mode=ro", uri=True) as conn:
            lib = pd.read_sql_query(
                "SELECT CAST(ID AS TEXT) AS precursor_id, LIBRARY_RT FROM PRECURSOR", conn
            )
        self.irt = pre.merge(lib, on="precursor_id").groupby("peptide")["LIBRARY_RT"].mean()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"predicted_rt": frame["peptide"].map(self.irt).to_numpy()})


def labels(osw: Path, frame: pd.DataFrame) -> pd.Series:
    with sqlite3.connect(f"file:{osw}?mode=ro", uri=True) as conn:
        s = pd.read_sql_query(
            "SELECT CAST(FEATURE_ID AS TEXT) AS feature_id, RANK, QVALUE FROM SCORE_MS2", conn
        )
    m = frame[["feature_id"]].merge(s, on="feature_id", how="left")
    return pd.Series(((m["RANK"] == 1) & (m["QVALUE"] < 0.01)).to_numpy(), index=frame.index)


def per_score(frame: pd.DataFrame) -> list[dict]:
    rows = []
    for col, sign in DIRECTION.items():
        ok = frame[col].notna()
        x = sign * frame.loc[ok, col]
        auc = roc_auc_score(frame.loc[ok, "y"], x)
        sub = frame[ok].assign(x=x)
        best = sub.groupby("group")["x"].transform("max")
        hits = sub[sub["y"]]
        top1 = float((hits["x"] == best[hits.index]).mean())
        rows.append(
            {"score": col, "peak_groups": int(ok.sum()), "auc": round(auc, 3), "top1": top1}
        )
    return rows


def cv_scores(frame: pd.DataFrame, columns: list[str], folds: int = 5) -> np.ndarray:
    """Out-of-fold logit per training row (``train``: targets of evaluated groups); every other
    row (decoys, targets without a confident peak group) gets the mean of the fold models."""
    X = frame[columns].to_numpy(dtype=float)
    target = frame["train"].to_numpy()
    out = np.full(len(frame), np.nan)
    decoy_sum = np.zeros(len(frame))
    groups = frame["precursor_id"].to_numpy()
    tr_rows = np.flatnonzero(target)
    for train, test in GroupKFold(folds).split(tr_rows, groups=groups[tr_rows]):
        tr, te = tr_rows[train], tr_rows[test]
        med = np.nanmedian(X[tr], axis=0)
        Xf = np.where(np.isnan(X), med, X)
        mu, sd = Xf[tr].mean(0), Xf[tr].std(0) + 1e-9
        Z = (Xf - mu) / sd
        model = LogisticRegression(max_iter=2000, C=1.0).fit(Z[tr], frame["y"].to_numpy()[tr])
        out[te] = model.decision_function(Z[te])
        decoy_sum += model.decision_function(Z) / folds
    out[~target] = decoy_sum[~target]
    return out


def picks(frame: pd.DataFrame, score: np.ndarray) -> pd.Series:
    """Per evaluated precursor-run group: did the highest-scored peak group be the confident one."""
    mask = frame["train"].to_numpy()
    sub = frame[mask].assign(s=score[mask])
    picked = sub.loc[sub.groupby("group")["s"].idxmax()]
    return picked.set_index("group")["y"].sort_index()


def decoy_counts(frame: pd.DataFrame, score: np.ndarray) -> dict:
    best = frame.assign(s=score).sort_values("s", ascending=False).drop_duplicates("group")
    t = best.loc[~best["decoy"], "s"].to_numpy()
    d = best.loc[best["decoy"], "s"].to_numpy()
    ratio = len(t) / max(len(d), 1)  # scale the few decoys to the target count
    out = {
        "target_groups": len(t),
        "decoy_groups": len(d),
        "targets_above_all_decoys": int((t > d.max()).sum()),
    }
    for q in (0.05, 0.10):
        cut = [s for s in np.sort(t)[::-1] if ratio * (d >= s).sum() / max((t >= s).sum(), 1) <= q]
        out[f"targets_at_scaled_fdr_{q:g}"] = int((t >= min(cut)).sum()) if cut else 0
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("osw", type=Path)
    ap.add_argument("--pdeep", default="models:/pdeep@champion")
    ap.add_argument("--rt", default="models:/deeprt@champion")
    ap.add_argument("--collision-energy", type=float, default=None)
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    times = {}
    t0 = time.perf_counter()
    frame = read_peak_groups(args.osw)
    pdeep, rt = load_predictor(args.pdeep), load_predictor(args.rt)
    times["read_and_load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    feats = prediction_features(frame, args.osw, pdeep, rt, args.collision_energy)
    times["prediction_features_s"] = time.perf_counter() - t0
    control = prediction_features(
        frame, args.osw, LibraryIntensities(args.osw), LibraryRT(args.osw)
    )
    control.columns = ["feature_id"] + [c.replace("deepms", "control_library") for c in DEEPMS]
    frame = frame.merge(feats, on="feature_id", how="left").merge(control, on="feature_id")
    frame["y"] = labels(args.osw, frame).to_numpy()
    frame["group"] = frame["precursor_id"].astype(str) + "@" + frame["run"].astype(str)
    frame["has_confident"] = frame.groupby("group")["y"].transform("any")
    sizes = frame.groupby("group")["feature_id"].transform("size")
    frame.to_csv(args.out_dir / "features.csv", index=False)

    t0 = time.perf_counter()
    evalset = frame[frame["has_confident"] & (sizes > 1) & ~frame["decoy"]]
    result: dict = {
        "peak_groups": len(frame),
        "eval_groups": int(evalset["group"].nunique()),
        "eval_peak_groups": len(evalset),
        "deepms_nan": {c: int(frame[c].isna().sum()) for c in DEEPMS},
        "per_score": per_score(evalset),
    }
    openswath = [
        c for c in frame.columns if c.startswith("var_") and c not in DEEPMS and "control" not in c
    ]
    openswath = [c for c in openswath if frame[c].notna().any()]
    no_library = [c for c in openswath if c not in LIBRARY_BASED]
    sets = {
        "openswath": openswath,
        "openswath+deepms": openswath + DEEPMS,
        "openswath_without_library_rt": no_library,
        "openswath_without_library_rt+deepms": no_library + DEEPMS,
        "openswath_without_library_rt+deepms_intensity": no_library + DEEPMS[:2],
        "deepms_only": DEEPMS,
    }
    frame["train"] = frame["has_confident"] & (sizes > 1) & ~frame["decoy"]
    cv_frame = frame.reset_index(drop=True)
    result["models"] = {}
    right = {}
    for name, cols in sets.items():
        score = cv_scores(cv_frame, cols)
        right[name] = picks(cv_frame, score)
        result["models"][name] = {
            "n_features": len(cols),
            "pick_accuracy": round(float(right[name].mean()), 4),
            "groups_right": int(right[name].sum()),
            "decoys_indicative": decoy_counts(cv_frame, score),
        }
    result["discordant_groups"] = {  # (only the first right, only the second right)
        f"{a} vs {b}": [int((right[a] & ~right[b]).sum()), int((~right[a] & right[b]).sum())]
        for a, b in (
            ("openswath", "openswath+deepms"),
            ("openswath_without_library_rt", "openswath_without_library_rt+deepms"),
            ("openswath_without_library_rt", "openswath_without_library_rt+deepms_intensity"),
        )
    }
    times["evaluation_s"] = time.perf_counter() - t0
    result["wall_times_s"] = {k: round(v, 2) for k, v in times.items()}
    result["collision_energy"] = args.collision_energy
    (args.out_dir / "summary.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
