"""Learned IsoGrouping: attention over the candidate traces around a seed trace decides which of
them belong to the seed's feature, and the feature's charge.

DeepIso groups the isotope traces its CNN found with a recurrent network. Here a *set* is one seed
trace plus up to ``max_candidates - 1`` other traces whose apex lies within ``apex_window`` scans
and whose m/z lies within ``mz_span`` Th of the seed (six isotopes of charge 1 either side); a set
has no natural order, so a small transformer encoder reads it instead of an RNN. Each candidate is
described relative to the seed (m/z offset and its isotope-ladder residual for every charge, apex
offset, RT overlap, elution-profile correlation, intensity ratios) and by the CNN's answers for its
own window (p_isotope, p_charge, p_index), so the grouper sees what the rule-based walk of
:func:`deepms.tasks.deepiso.detect.group_traces` sees, and more, and learns how to weigh it.

Assembly (:func:`assemble_groups`) is greedy, as in the rule-based grouper: seeds in decreasing
apex intensity; a seed still free takes its free predicted members that fit one isotope ladder of
the predicted charge (one trace per isotope position, contiguous around the seed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from deepms.io.ms1map import Ms1Map
from deepms.tasks.deepiso.detect import ISOTOPE_SPACING, MAX_CHARGE, MAX_INDEX, Traces

PROFILE_HALF = 8  # scans either side of a trace's apex kept in its elution profile
CHARGES = np.arange(1, MAX_CHARGE + 1)
N_RESIDUAL_START = 8  # geometry columns: 8 scalars, then residual and position per charge
N_GEOMETRY = N_RESIDUAL_START + 2 * MAX_CHARGE  # per-candidate features from the traces
N_CNN = 1 + 2 * (MAX_CHARGE + 1)  # p_isotope, p_charge (0..5), p_index (0..5)
N_FEATURES = N_GEOMETRY + N_CNN


def trace_profiles(ms1: Ms1Map, traces: Traces, half: int = PROFILE_HALF) -> np.ndarray:
    """(n_traces, 2 half + 1): each trace's intensity per scan around its own apex."""
    scan = ms1.spectrum_index()
    out = np.zeros((len(traces), 2 * half + 1))
    on_trace = np.flatnonzero(traces.peak_trace >= 0)
    trace = traces.peak_trace[on_trace]
    column = scan[on_trace] - traces.apex[trace] + half
    inside = (column >= 0) & (column <= 2 * half)
    np.add.at(out, (trace[inside], column[inside]), ms1.intensity[on_trace][inside])
    return out


def candidate_sets(
    traces: Traces,
    seeds: np.ndarray,
    max_candidates: int = 16,
    mz_span: float = 6.5,
    apex_window: int = 4,
    ppm: float = 15.0,
) -> np.ndarray:
    """(n_seeds, max_candidates) trace indices, the seed first, padded with -1.

    When more traces fall in the box than fit, those closest to an isotope ladder of some charge
    (residual in units of ``ppm``) and to the seed's apex come first.
    """
    order = np.argsort(traces.mz, kind="stable")
    sorted_mz = traces.mz[order]
    seed_mz = traces.mz[seeds]
    lo = np.searchsorted(sorted_mz, seed_mz - mz_span)
    hi = np.searchsorted(sorted_mz, seed_mz + mz_span, side="right")
    out = np.full((len(seeds), max_candidates), -1, dtype=np.int64)
    out[:, 0] = seeds
    for row, (seed, a, b) in enumerate(zip(seeds, lo, hi, strict=True)):
        cand = order[a:b]
        d_apex = np.abs(traces.apex[cand] - traces.apex[seed])
        near = (d_apex <= apex_window) & (cand != seed)
        cand, d_apex = cand[near], d_apex[near]
        if not len(cand):
            continue
        if len(cand) > max_candidates - 1:
            residual = _ladder_residual(traces.mz[cand] - traces.mz[seed], traces.mz[seed])
            rank = np.minimum(np.abs(residual).min(axis=1) / ppm, 10.0) + d_apex / apex_window
            cand = cand[np.argsort(rank, kind="stable")[: max_candidates - 1]]
        out[row, 1 : 1 + len(cand)] = cand
    return out


def _ladder_residual(d_mz: np.ndarray, seed_mz: np.ndarray | float) -> np.ndarray:
    """(..., n_charges) ppm from the nearest isotope position of each charge 1..MAX_CHARGE."""
    step = ISOTOPE_SPACING / CHARGES
    position = np.round(d_mz[..., None] / step)
    return (d_mz[..., None] - position * step) / (np.asarray(seed_mz)[..., None] * 1e-6)


def set_geometry(
    traces: Traces,
    profiles: np.ndarray,
    sets: np.ndarray,
    mz_span: float = 6.5,
    apex_window: int = 4,
    ppm: float = 15.0,
) -> np.ndarray:
    """(n_sets, K, N_GEOMETRY) float32 features of each candidate relative to its set's seed."""
    seed = sets[:, :1]
    cand = np.where(sets >= 0, sets, seed)
    mz_s = traces.mz[seed]
    d_mz = traces.mz[cand] - mz_s
    residual = np.clip(_ladder_residual(d_mz, mz_s) / ppm, -4, 4) / 4
    position = np.clip(np.round(d_mz[..., None] * CHARGES / ISOTOPE_SPACING), -7, 7) / 7
    d_apex = traces.apex[cand] - traces.apex[seed]
    first = np.maximum(traces.first[cand], traces.first[seed])
    last = np.minimum(traces.last[cand], traces.last[seed])
    span = np.maximum(traces.last[cand], traces.last[seed]) - np.minimum(
        traces.first[cand], traces.first[seed]
    )
    overlap = np.clip(last - first + 1, 0, None) / (span + 1)
    # the candidate's profile in the seed's frame: column j holds scan apex_seed - half + j
    width = profiles.shape[1]
    column = np.arange(width) + d_apex[..., None]  # (n, K, width) in the candidate's own frame
    valid = (column >= 0) & (column < width)
    shifted = np.where(valid, profiles[cand[..., None], np.clip(column, 0, width - 1)], 0.0)
    seed_profile = profiles[seed]  # (n, 1, width)
    cosine = (shifted * seed_profile).sum(-1) / (
        np.linalg.norm(shifted, axis=-1) * np.linalg.norm(seed_profile, axis=-1) + 1e-12
    )
    is_seed = np.zeros(sets.shape)
    is_seed[:, 0] = 1.0
    columns = [
        d_mz / mz_span,
        d_apex / apex_window,
        np.log(traces.apex_intensity[cand] / traces.apex_intensity[seed]) / 5,
        np.log(traces.total[cand] / traces.total[seed]) / 5,
        overlap,
        np.log(traces.n_scans[cand] / traces.n_scans[seed]) / 3,
        cosine,
        is_seed,
    ]
    out = np.concatenate([np.stack(columns, -1), residual, position], axis=-1)
    out[sets < 0] = 0.0
    return out.astype(np.float32)


def sets_and_geometry(
    ms1: Ms1Map, traces: Traces, seeds: np.ndarray, box: dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`candidate_sets` of ``seeds`` and their :func:`set_geometry`, with the candidate box
    of the data config (``max_candidates``, ``mz_span``, ``apex_window``, ``ppm``): training and
    prediction build sets the same way."""
    shape = dict(box or {})
    max_candidates = int(shape.pop("max_candidates", 16))
    sets = candidate_sets(traces, seeds, max_candidates, **shape)
    return sets, set_geometry(traces, trace_profiles(ms1, traces), sets, **shape)


def set_labels(
    sets: np.ndarray, feature: np.ndarray, charge: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(member (n, K) 0/1, seed charge (n,) 0..5) from each trace's truth feature (-1: noise)."""
    seed_feature = feature[sets[:, 0]]
    member = (feature[np.where(sets >= 0, sets, 0)] == seed_feature[:, None]) & (sets >= 0)
    member &= seed_feature[:, None] >= 0
    return member.astype(np.float32), charge[sets[:, 0]].astype(np.int64)


class IsoGroupNet(nn.Module):
    """Transformer encoder over a candidate set -> member logit per candidate, charge logits."""

    def __init__(
        self,
        n_features: int = N_FEATURES,
        width: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, width))
        layer = nn.TransformerEncoderLayer(
            width, heads, 2 * width, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.member = nn.Linear(width, 1)
        self.charge = nn.Linear(width, MAX_CHARGE + 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (n, K, N_FEATURES), ``mask`` (n, K) True where a candidate is present."""
        h = self.encoder(self.embed(x), src_key_padding_mask=~mask)
        return self.member(h).squeeze(-1), self.charge(h[:, 0])


def assemble_groups(
    traces: Traces,
    sets: np.ndarray,
    p_member: np.ndarray,
    p_charge: np.ndarray,
    ppm: float = 15.0,
) -> list[tuple[list[int], int]]:
    """Greedy: seeds (rows of ``sets``) in decreasing apex intensity take their free members.

    Members must sit on the predicted charge's isotope ladder (within 2 ``ppm``), one per isotope
    position (the most probable), contiguous around the seed: the network proposes, the ladder
    keeps the feature physically consistent.
    """
    free = np.ones(len(traces), dtype=bool)
    groups: list[tuple[list[int], int]] = []
    seeds = sets[:, 0]
    for row in np.argsort(-traces.apex_intensity[seeds], kind="stable"):
        seed = int(seeds[row])
        if not free[seed]:
            continue
        z = int(np.argmax(p_charge[row, 1:])) + 1
        chosen = (sets[row] >= 0) & (p_member[row] >= 0.5)
        chosen[0] = True
        members, probability = sets[row][chosen], p_member[row][chosen]
        keep = free[members]
        members, probability = members[keep], probability[keep]
        step = ISOTOPE_SPACING / z
        d_mz = traces.mz[members] - traces.mz[seed]
        position = np.round(d_mz / step).astype(np.int64)
        on_ladder = np.abs(d_mz - position * step) <= 2 * ppm * 1e-6 * traces.mz[seed]
        best: dict[int, tuple[float, int]] = {0: (np.inf, seed)}
        for t, k, p, ok in zip(members, position, probability, on_ladder, strict=True):
            if ok and k != 0 and p > best.get(int(k), (-1.0, -1))[0]:
                best[int(k)] = (float(p), int(t))
        low = 0
        while low - 1 in best and -low < MAX_INDEX + 2:
            low -= 1
        high = 0
        while high + 1 in best and high < 2 * MAX_INDEX + 2:
            high += 1
        chain = [best[k][1] for k in range(low, high + 1)]
        free[chain] = False
        groups.append((chain, z))
    return groups
