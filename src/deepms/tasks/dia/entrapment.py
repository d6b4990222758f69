"""Entrapment: decoys posing as targets, to check that the estimated FDR is honest.

Why: a semi-supervised scorer learns from the very decoys that later estimate its FDR; if it
learned those decoys rather than what "false" looks like, held-out nulls would pass its
threshold more often than the decoys say, and the q-values would be optimistic. Here a seeded
half of the decoy *pairs* (a decoy's ``pair_id`` names its target) is relabelled ``decoy=False``
and flagged ``entrapment=True`` in a column the model never reads; the other half stay decoys.
The whole pipeline (training labels, q-values, peers) sees the entrapment rows as targets.

Observed FDP at a q-value threshold alpha, over the accepted identification units (one best
peak group per unit; ``n_T`` real targets and ``n_E`` entrapments accepted, ``N_T`` real target
and ``N_E`` entrapment units in the table):

* ``fdp`` (the figure reported against the estimate) = (n_E + n_E * pi0 * N_T / N_E) /
  (n_T + n_E): the entrapments accepted are certainly false, and the false real targets are
  estimated from them: a null real target passes as often as an entrapment does, and there are
  about pi0 * N_T null real targets (pi0: Storey's estimate for the real targets against the
  decoys, :func:`deepms.metrics.fdr.pi0_storey`);
* ``fdp_upper`` the same with pi0 = 1 (Wen et al. 2025's "combined" estimate: every real target
  as likely a false hit as an entrapment; an upper bound);
* ``fdp_lower`` = n_E / (n_T + n_E) (only the known false hits; a lower bound).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def split_entrapment(frame: pd.DataFrame, fraction: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """A copy with ``entrapment`` (bool) and ``fraction`` of the decoy pairs relabelled targets.

    Pairs are drawn by ``pair_id`` (sorted, then a seeded permutation), so all peak groups of one
    decoy precursor go the same way and a run order does not change the draw.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"entrapment fraction {fraction}: use 0 <= fraction < 1")
    out = frame.copy()
    decoy = out["decoy"].astype(bool).to_numpy()
    pairs = np.array(sorted(set(out.loc[decoy, "pair_id"].astype(str))), dtype=object)
    rng = np.random.default_rng(seed)
    chosen = set(rng.permutation(pairs)[: round(fraction * len(pairs))].tolist())
    flagged = decoy & out["pair_id"].astype(str).isin(chosen).to_numpy()
    out["entrapment"] = flagged
    out["decoy"] = decoy & ~flagged
    return out


def entrapment_fdp(
    accepted_entrapment: Sequence[bool],
    n_real_units: int,
    n_entrapment_units: int,
    pi0: float,
) -> dict[str, float]:
    """``fdp``, ``fdp_upper`` and ``fdp_lower`` of one accepted set (see the module docstring).

    ``accepted_entrapment``: one flag per accepted target unit (entrapment or real target).
    """
    flags = np.asarray(accepted_entrapment, dtype=bool)
    n_e, n_t = int(flags.sum()), int((~flags).sum())
    total = n_e + n_t
    if total == 0:
        return {"fdp": 0.0, "fdp_upper": 0.0, "fdp_lower": 0.0}
    scale = n_real_units / n_entrapment_units if n_entrapment_units else float("nan")
    return {
        "fdp": min(1.0, (n_e + n_e * pi0 * scale) / total),
        "fdp_upper": min(1.0, (n_e + n_e * scale) / total),
        "fdp_lower": n_e / total,
    }
