"""Per-sample columns a fold adds to the out-of-fold table, beyond the DBN's probability.

The baselines are fitted in ``on_test_epoch_end`` (same fold, same preprocessing), long before
``predict_step`` runs; their test probabilities are kept here keyed by sample id so each
out-of-fold row carries ``p_<baseline>`` next to the DBN's, and the parent can compare models on
identical samples. A row also names its ``site`` (if the datamodule groups by one), its CV
``repeat`` (fold // n_splits) and the fold's ``panel`` (a JSON list of the top-k proteins in
rank order, the same on every row of a fold: the parent has no other way to read the fold's
``panel.csv`` without going back to the child runs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def fold_columns(
    ids: Sequence[str],
    baselines: Mapping[str, np.ndarray],
    panel: Sequence[str],
    datamodule: Any = None,
) -> dict[str, dict[str, Any]]:
    """sample id -> its extra columns (``p_<baseline>``, ``site``, ``repeat``, ``panel``)."""
    sites = (getattr(datamodule, "group_values", None) or {}).get("site", {})
    cv = getattr(datamodule, "cv", None)
    repeat = None
    if cv is not None and cv.scheme != "leave_one_group_out":
        repeat = int(cv.fold) // int(cv.n_splits)
    panel_json = json.dumps([str(p) for p in panel])
    out: dict[str, dict[str, Any]] = {}
    for i, sample in enumerate(ids):
        row: dict[str, Any] = {f"p_{name}": float(p[i]) for name, p in baselines.items()}
        if sites:
            row["site"] = str(sites.get(sample, ""))
        if repeat is not None:
            row["repeat"] = repeat
        row["panel"] = panel_json
        out[str(sample)] = row
    return out


def batch_columns(extras: Mapping[str, Mapping[str, Any]], ids: Sequence[str]) -> dict[str, list]:
    """The extra columns of a predict batch: none when the fold kept none (a plain predict),
    None cells for a sample the fold did not test (every batch keeps the same columns)."""
    if not extras:
        return {}
    keys = list(dict.fromkeys(k for r in extras.values() for k in r))
    rows = [extras.get(str(i), {}) for i in ids]
    return {k: [r.get(k) for r in rows] for k in keys}
