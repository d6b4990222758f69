"""Compare a predicted DIA library with an experimental one on their shared precursors.

DeepDIA's question: is a library predicted from sequences alone as good as one built from runs?
Precursors are matched by modified peptide + charge (targets only), fragments by ion type, number,
charge and loss. Per precursor: Pearson correlation and normalised spectral angle (Prosit's, via
:mod:`deepms.metrics.spectrum`) of the library intensities over the shared fragments. Retention
time, per modified peptide: the predicted iRT is mapped onto the library's RT scale by a
least-squares line (libraries use their own scales: iRT, minutes, DIA-NN's recalibrated units),
then Pearson R and the MAE of the fit, in library units.

Subcommands::

    compare.py precursors EXPERIMENTAL --output precursors.csv   # the list to predict
    compare.py compare PREDICTED EXPERIMENTAL --out-dir DIR       # per_precursor.csv, summary.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from deepms.io.dia_library import read_dia_library
from deepms.io.library import parse_library_peptide

KEY = ["ModifiedPeptide", "PrecursorCharge"]
ION = ["FragmentType", "FragmentNumber", "FragmentCharge", "FragmentLossType"]


def precursor_list(library: pd.DataFrame) -> pd.DataFrame:
    """The target precursors of a library as ``deepms predict`` input (ProForma, charge)."""
    targets = library[library["Decoy"] == 0].drop_duplicates(KEY)
    return pd.DataFrame(
        {
            "peptide": [parse_library_peptide(p).to_proforma() for p in targets["ModifiedPeptide"]],
            "charge": targets["PrecursorCharge"].to_numpy(),
            "protein": targets["ProteinId"].to_numpy(),
        }
    )


def fragment_scores(predicted: pd.DataFrame, experimental: pd.DataFrame) -> pd.DataFrame:
    """Per shared precursor: shared fragments, Pearson, spectral angle, experimental fragments
    the prediction lacks (below its intensity threshold, or an ion type it does not predict)."""
    import torch

    from deepms.metrics.spectrum import masked_pearson, spectral_angle

    pred = predicted[predicted["Decoy"] == 0][[*KEY, *ION, "RelativeIntensity"]]
    exp = experimental[experimental["Decoy"] == 0][[*KEY, *ION, "RelativeIntensity"]]
    shared = exp.merge(pred, on=[*KEY, *ION], suffixes=("_exp", "_pred"))
    counts = exp.groupby(KEY).size().rename("n_experimental")
    rows = []
    for key, group in shared.groupby(KEY, sort=False):
        p = torch.tensor(group["RelativeIntensity_pred"].to_numpy(), dtype=torch.float64)[None]
        t = torch.tensor(group["RelativeIntensity_exp"].to_numpy(), dtype=torch.float64)[None]
        rows.append(
            (
                *key,
                len(group),
                float(masked_pearson(p, t)[0]) if len(group) >= 3 else np.nan,
                float(spectral_angle(p, t)[0]),
            )
        )
    scores = pd.DataFrame(rows, columns=[*KEY, "n_shared", "pearson", "spectral_angle"])
    scores = scores.merge(counts.reset_index(), on=KEY, how="left")
    scores["n_missing"] = scores["n_experimental"] - scores["n_shared"]
    return scores


def rt_scores(predicted: pd.DataFrame, experimental: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Per shared modified peptide (RT does not depend on the charge): predicted iRT, library RT,
    the fitted line's value; summary R, MAE, median AE, line."""
    rt, key = "NormalizedRetentionTime", ["ModifiedPeptide"]
    pred = predicted[predicted["Decoy"] == 0].drop_duplicates(key)[[*key, rt]]
    exp = experimental[experimental["Decoy"] == 0].drop_duplicates(key)[[*key, rt]]
    both = pred.merge(exp, on=key, suffixes=("_pred", "_exp")).dropna()
    x, y = both[f"{rt}_pred"].to_numpy(), both[f"{rt}_exp"].to_numpy()
    if len(both) < 3:
        nan = float("nan")
        return both, {"n": len(both), "r": nan, "mae": nan, "slope": nan, "icpt": nan}
    slope, intercept = np.polyfit(x, y, 1)
    both["rt_fitted"] = slope * x + intercept
    error = np.abs(both["rt_fitted"].to_numpy() - y)
    summary = {
        "n": len(both),
        "r": float(np.corrcoef(x, y)[0, 1]),
        "mae": float(error.mean()),
        "median_ae": float(np.median(error)),
        "slope": float(slope),
        "icpt": float(intercept),
        "rt_range": float(y.max() - y.min()),
    }
    return both, summary


def compare(predicted_path: Path, experimental_path: Path, out_dir: Path) -> dict:
    """Write ``per_precursor.csv``, ``summary.json`` and ``summary.md`` into ``out_dir``."""
    predicted = read_dia_library(predicted_path)
    experimental = read_dia_library(experimental_path)
    scores = fragment_scores(predicted, experimental)
    rt_table, rt = rt_scores(predicted, experimental)
    per = scores.merge(rt_table, on="ModifiedPeptide", how="left")
    out_dir.mkdir(parents=True, exist_ok=True)
    per.to_csv(out_dir / "per_precursor.csv", index=False)
    n_exp = experimental.loc[experimental["Decoy"] == 0, KEY].drop_duplicates().shape[0]
    summary = {
        "predicted": str(predicted_path),
        "experimental": str(experimental_path),
        "experimental_precursors": n_exp,
        "shared_precursors": len(scores),
        "median_pearson": float(scores["pearson"].median()),
        "median_spectral_angle": float(scores["spectral_angle"].median()),
        "share_pearson_above_0.9": float((scores["pearson"] > 0.9).mean()),
        "median_shared_fragments": float(scores["n_shared"].median()),
        "shared_fragment_share": float(scores["n_shared"].sum() / scores["n_experimental"].sum()),
        "rt": rt,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"# {predicted_path.name} vs {experimental_path.name}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| shared precursors / experimental | {len(scores)} / {n_exp} |",
        f"| median shared fragments per precursor | {summary['median_shared_fragments']:.0f} |",
        f"| experimental fragments also predicted | {summary['shared_fragment_share']:.1%} |",
        f"| median Pearson (>= 3 shared fragments) | {summary['median_pearson']:.3f} |",
        f"| Pearson > 0.9 | {summary['share_pearson_above_0.9']:.1%} |",
        f"| median spectral angle | {summary['median_spectral_angle']:.3f} |",
        f"| RT: peptides / Pearson R | {rt['n']} / {rt['r']:.3f} |",
        f"| RT: MAE after linear fit (library units) | {rt['mae']:.3f} |",
        f"| RT: library range (library units) | {rt.get('rt_range', np.nan):.3f} |",
        f"| RT: fit library = {rt['slope']:.4g} x iRT + {rt['icpt']:.4g} | |",
        "",
    ]
    (out_dir / "summary.md").write_text("\n".join(lines))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("precursors", help="target precursors of a library, as CSV")
    listing.add_argument("library", type=Path)
    listing.add_argument("--output", type=Path, required=True)
    scoring = commands.add_parser("compare", help="predicted vs experimental library")
    scoring.add_argument("predicted", type=Path)
    scoring.add_argument("experimental", type=Path)
    scoring.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "precursors":
        table = precursor_list(read_dia_library(args.library))
        table.to_csv(args.output, index=False)
        print(f"wrote {args.output}: {len(table)} precursors")
        return 0
    summary = compare(args.predicted, args.experimental, args.out_dir)
    print((args.out_dir / "summary.md").read_text())
    return 0 if summary["shared_precursors"] else 1


if __name__ == "__main__":
    sys.exit(main())
