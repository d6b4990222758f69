"""deepms peer driver: mokapot.brew (default Percolator-style linear SVM) on a TSV; writes the
cross-validated score of every row and mokapot's PSM-level q-values."""

import json
import random
import sys

import mokapot
import numpy as np
import pandas as pd

with open(sys.argv[1]) as handle:
    args = json.load(handle)
# mokapot takes rng=seed for its folds and model; scikit-learn's LinearSVC inside draws from the
# global numpy RNG (random_state=None), so seed that too
random.seed(args["seed"])
np.random.seed(args["seed"])
table = pd.read_csv(args["input"], sep="\t", dtype={"run": str, "group_id": str, "peptide": str})
table["target"] = table["target"].astype(bool)
captured = {}


class Dataset(mokapot.LinearPsmDataset):
    def assign_confidence(self, scores=None, desc=True, eval_fdr=0.01):
        captured["scores"] = np.asarray(scores, dtype=float).copy()
        captured["desc"] = bool(desc)
        return super().assign_confidence(scores, desc=desc, eval_fdr=eval_fdr)


data = Dataset(
    psms=table,
    target_column="target",
    spectrum_columns=["run", "group_id"],
    peptide_column="peptide",
    feature_columns=args["features"],
    copy_data=True,
)
# brew's default model, built here so that it is seeded and single-threaded: brew's own
# PercolatorModel() draws its grid-search KFold seed from an unseeded RNG and uses n_jobs=-1
model = mokapot.PercolatorModel(rng=args["seed"], n_jobs=1)
confidence, models = mokapot.brew(
    data, model=model, test_fdr=args.get("test_fdr", 0.01), rng=args["seed"], max_workers=1
)
scores = captured["scores"] if captured["desc"] else -captured["scores"]
out = pd.DataFrame({"row_id": table["row_id"].to_numpy(), "score": scores})
psms = pd.concat(  # targets' and decoys' PSM-level (precursor-in-a-run) confidence
    [confidence.confidence_estimates["psms"], confidence.decoy_confidence_estimates["psms"]]
)
keys = psms[["run", "group_id", "mokapot q-value"]].astype({"run": str, "group_id": str})
out["run"] = table["run"].to_numpy()
out["group_id"] = table["group_id"].to_numpy()
best = out.sort_values("score", ascending=False, kind="stable").drop_duplicates(["run", "group_id"])
best = best.merge(keys, on=["run", "group_id"], how="left")
out = out.merge(best[["row_id", "mokapot q-value"]], on="row_id", how="left")
out = out.rename(columns={"mokapot q-value": "q_value"})[["row_id", "score", "q_value"]]
out.to_csv(args["output"], sep="\t", index=False)
info = {
    "best_feature": not captured["desc"] or bool(np.all([m.override for m in models])),
    "accepted": {k: int(v) for k, v in confidence.accepted.items() if v is not None},
}
with open(args["info"], "w") as handle:
    json.dump(info, handle)
