"""Isotope traces, their windows, their labels and the rule-based grouper (deepiso's non-learned
parts).

Why traces first (a simplification of DeepIso, stated plainly): DeepIso slides its CNN over every
pixel of a 0.01 Th x scan image of the whole run; on 2 CPU cores a 2,000-scan run at 0.01 Th is
~10^8 pixels. Centroided maps are sparse, so deepiso links centroids across scans into candidate
traces (m/z within ``link_ppm``, gaps up to ``max_gap`` scans) and shows the CNN one dense window
per candidate: ``window_scans`` scans around the trace apex x ``window_bins`` bins of ``mz_step``
Th centred on the trace m/z (wide enough to see the neighbouring isotopes of charge 1). The CNN
says whether the centre trace is an isotope trace, its charge and its isotope index; the grouper
(:func:`group_traces`) assembles traces into features along the isotope spacing of that charge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepms.io.features import FEATURE_COLUMNS
from deepms.io.ms1map import Ms1Map

PROTON = 1.007276466812
ISOTOPE_SPACING = 1.00286  # Da between isotope peaks of peptides (averagine mean of 13C/15N/...)
MAX_CHARGE = 5
MAX_INDEX = 5  # isotope index classes 0..MAX_INDEX (the last one: "MAX_INDEX or above")
# averagine (Senko 1995): elemental composition per Da of peptide
_AVERAGINE = {"C": 4.9384, "H": 7.7583, "N": 1.3577, "O": 1.4773, "S": 0.0417}
_AVERAGINE_MASS = 111.1254


@dataclass
class Traces:
    """Candidate isotope traces of a map: per-trace arrays, plus each peak's trace (-1: none)."""

    mz: np.ndarray  # intensity-weighted mean m/z
    first: np.ndarray  # first scan index
    last: np.ndarray  # last scan index
    apex: np.ndarray  # scan index of the largest peak
    apex_intensity: np.ndarray
    total: np.ndarray  # summed intensity
    n_scans: np.ndarray
    peak_trace: np.ndarray  # per peak of the map

    def __len__(self) -> int:
        return len(self.mz)


def extract_traces(
    ms1: Ms1Map, link_ppm: float = 20.0, max_gap: int = 1, min_scans: int = 3
) -> Traces:
    """Link centroids scan to scan into traces (nearest active trace within ``link_ppm``)."""
    peak_trace = np.full(ms1.n_peaks, -1, dtype=np.int64)
    active_mz = np.empty(0)
    active_id = np.empty(0, dtype=np.int64)
    active_last = np.empty(0, dtype=np.int64)
    next_id = 0
    for s in range(len(ms1)):
        a, b = int(ms1.offsets[s]), int(ms1.offsets[s + 1])
        mz = ms1.mz[a:b]
        ids = np.full(b - a, -1, dtype=np.int64)
        if len(active_mz) and len(mz):
            order = np.argsort(active_mz)
            sorted_mz = active_mz[order]
            pos = np.searchsorted(sorted_mz, mz)
            left = np.clip(pos - 1, 0, len(sorted_mz) - 1)
            right = np.clip(pos, 0, len(sorted_mz) - 1)
            d_left, d_right = np.abs(mz - sorted_mz[left]), np.abs(mz - sorted_mz[right])
            nearest = np.where(d_left <= d_right, left, right)
            dist = np.minimum(d_left, d_right)
            ok = np.flatnonzero(dist <= mz * link_ppm * 1e-6)
            ok = ok[np.argsort(dist[ok], kind="stable")]
            _, first_use = np.unique(nearest[ok], return_index=True)  # one peak per trace
            ok = ok[first_use]
            slot = order[nearest[ok]]
            ids[ok] = active_id[slot]
            active_mz[slot] = 0.5 * (active_mz[slot] + mz[ok])
            active_last[slot] = s
        new = np.flatnonzero(ids < 0)
        ids[new] = np.arange(next_id, next_id + len(new))
        next_id += len(new)
        peak_trace[a:b] = ids
        active_mz = np.concatenate([active_mz, mz[new]])
        active_id = np.concatenate([active_id, ids[new]])
        active_last = np.concatenate([active_last, np.full(len(new), s)])
        alive = s - active_last <= max_gap
        active_mz, active_id, active_last = active_mz[alive], active_id[alive], active_last[alive]
    return _trace_stats(ms1, peak_trace, min_scans)


def _trace_stats(ms1: Ms1Map, peak_trace: np.ndarray, min_scans: int) -> Traces:
    scan = ms1.spectrum_index()
    frame = pd.DataFrame(
        {"t": peak_trace, "scan": scan, "mz": ms1.mz, "i": ms1.intensity.astype(float)}
    )
    frame["wmz"] = frame["mz"] * frame["i"]
    g = frame.groupby("t", sort=True)
    stats = g.agg(
        first=("scan", "min"),
        last=("scan", "max"),
        n=("scan", "size"),
        total=("i", "sum"),
        wmz=("wmz", "sum"),
        apex_i=("i", "max"),
    )
    apex_rows = frame.loc[g["i"].idxmax().to_numpy()]
    stats["apex"] = apex_rows["scan"].to_numpy()
    keep = stats["n"].to_numpy() >= min_scans
    kept_ids = stats.index.to_numpy()[keep]
    remap = np.full(int(peak_trace.max()) + 1 if len(peak_trace) else 0, -1, dtype=np.int64)
    remap[kept_ids] = np.arange(len(kept_ids))
    s = stats[keep]
    return Traces(
        mz=(s["wmz"] / s["total"]).to_numpy(float),
        first=s["first"].to_numpy(np.int64),
        last=s["last"].to_numpy(np.int64),
        apex=s["apex"].to_numpy(np.int64),
        apex_intensity=s["apex_i"].to_numpy(float),
        total=s["total"].to_numpy(float),
        n_scans=s["n"].to_numpy(np.int64),
        peak_trace=remap[peak_trace] if len(peak_trace) else peak_trace,
    )


def trace_windows(
    ms1: Ms1Map,
    centre_mz: np.ndarray,
    apex: np.ndarray,
    scale: np.ndarray,
    window_scans: int = 16,
    window_bins: int = 224,
    mz_step: float = 0.01,
) -> np.ndarray:
    """Dense (n, window_scans, window_bins) windows around each (apex scan, centre m/z).

    Intensities are divided by ``scale`` (the centre trace's apex) and square-rooted, clipped at
    3: the network sees shapes and relative heights, not a run's absolute scale. Built scan by
    scan, vectorised over the windows that include the scan.
    """
    n = len(centre_mz)
    out = np.zeros((n, window_scans, window_bins), dtype=np.float32)
    half_scans = window_scans // 2
    lo_mz = centre_mz - window_bins / 2 * mz_step
    order = np.argsort(apex, kind="stable")
    sorted_apex = apex[order]
    for s in range(len(ms1)):
        # windows whose rows cover scan s: apex - half <= s < apex - half + window_scans
        i0 = np.searchsorted(sorted_apex, s - window_scans + half_scans + 1, side="left")
        i1 = np.searchsorted(sorted_apex, s + half_scans, side="right")
        if i1 <= i0:
            continue
        w = order[i0:i1]
        a, b = int(ms1.offsets[s]), int(ms1.offsets[s + 1])
        if a == b:
            continue
        mz = ms1.mz[a:b]
        lo = np.searchsorted(mz, lo_mz[w], side="left")
        hi = np.searchsorted(mz, lo_mz[w] + window_bins * mz_step, side="left")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            continue
        seg = np.repeat(np.arange(len(w)), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        peak = np.arange(total) - starts + np.repeat(lo, counts)
        win = w[seg]
        col = np.floor((mz[peak] - lo_mz[win]) / mz_step).astype(np.int64)
        col = np.clip(col, 0, window_bins - 1)
        row = s - (apex[win] - half_scans)
        np.add.at(out, (win, row, col), ms1.intensity[a:b][peak] / scale[win])
    np.sqrt(out, out=out)
    np.clip(out, 0.0, 3.0, out=out)
    return out


def truth_isotopes(truth: pd.DataFrame, carbamidomethyl: bool = True) -> pd.DataFrame:
    """One row per truth isotope: feature, charge, index, exact m/z and the feature's RT span."""
    from deepms.tasks.deepiso.simulate import isotope_envelope, peptide_composition

    rows = []
    for feature in truth.itertuples(index=False):
        masses, _ = isotope_envelope(
            peptide_composition(str(feature.peptide), carbamidomethyl), int(feature.n_isotopes)
        )
        z = int(feature.charge)
        for k, m in enumerate(masses):
            rows.append(
                (feature.feature_id, z, k, (m + z * PROTON) / z, feature.rt_start, feature.rt_end)
            )
    return pd.DataFrame(rows, columns=["feature_id", "charge", "index", "mz", "rt_start", "rt_end"])


def nearest_isotope(
    traces: Traces, rt: np.ndarray, isotopes: pd.DataFrame, ppm: float = 10.0
) -> np.ndarray:
    """Per trace, the row of ``isotopes`` it records (-1: noise).

    A trace records a truth isotope when that isotope lies within ``ppm`` of its m/z and its apex
    lies inside the feature's RT span; the nearest such isotope in m/z wins.
    """
    iso_mz = isotopes["mz"].to_numpy(float)
    order = np.argsort(iso_mz)
    sorted_mz = iso_mz[order]
    apex_rt = rt[traces.apex]
    row = np.full(len(traces), -1, dtype=np.int64)
    lo = np.searchsorted(sorted_mz, traces.mz * (1 - ppm * 1e-6))
    hi = np.searchsorted(sorted_mz, traces.mz * (1 + ppm * 1e-6), side="right")
    starts, ends = isotopes["rt_start"].to_numpy(float), isotopes["rt_end"].to_numpy(float)
    for i in np.flatnonzero(hi > lo):
        cand = order[lo[i] : hi[i]]
        cand = cand[(starts[cand] <= apex_rt[i]) & (apex_rt[i] <= ends[cand])]
        if len(cand):
            row[i] = cand[np.argmin(np.abs(iso_mz[cand] - traces.mz[i]))]
    return row


def label_traces(
    traces: Traces, rt: np.ndarray, isotopes: pd.DataFrame, ppm: float = 10.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(is_isotope 0/1, charge 0..5 (0: noise), isotope index 0..5 (-1: noise)) per trace, from
    the truth isotope each trace records (:func:`nearest_isotope`)."""
    return labels_of(nearest_isotope(traces, rt, isotopes, ppm), isotopes)


def labels_of(row: np.ndarray, isotopes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`label_traces` from the rows :func:`nearest_isotope` found (-1: noise)."""
    found = row >= 0
    is_iso = found.astype(np.int64)
    charge = np.zeros(len(row), dtype=np.int64)
    index = np.full(len(row), -1, dtype=np.int64)
    charge[found] = isotopes["charge"].to_numpy(int)[row[found]]
    index[found] = np.minimum(isotopes["index"].to_numpy(int)[row[found]], MAX_INDEX)
    return is_iso, charge, index


def averagine_envelope(neutral_mass: float, n: int) -> np.ndarray:
    """Relative isotope abundances of an averagine peptide of this mass (first ``n`` peaks)."""
    from deepms.tasks.deepiso.simulate import isotope_envelope

    units = max(neutral_mass, 1.0) / _AVERAGINE_MASS
    composition = {e: max(round(v * units), 0) for e, v in _AVERAGINE.items()}
    _, abundance = isotope_envelope(composition, max(n, 1))
    return abundance[:n]


def group_traces(
    ms1: Ms1Map,
    traces: Traces,
    p_iso: np.ndarray,
    p_charge: np.ndarray,
    p_index: np.ndarray,
    min_p_iso: float = 0.5,
    ppm: float = 15.0,
    apex_scans: int = 3,
    min_isotopes: int = 2,
    merge_splits: bool = False,
) -> pd.DataFrame:
    """Rule-based IsoGrouping: isotope traces -> features in :data:`FEATURE_COLUMNS` layout.

    Seeds in decreasing apex intensity; a seed's charge is the z maximising (isotope neighbours
    found at +-1/z) + 2 p(z) from the CNN; the chain is walked up while a free trace sits at the
    next isotope m/z (within ``ppm``, apex within ``apex_scans``) and down while the CNN does not
    call the current trace monoisotopic (p(index 0) < 0.5). The learned grouper
    (:mod:`deepms.tasks.deepiso.grouping`, the default) replaces it; this one stays as the
    ablation and for ``model.grouper=rules``. ``merge_splits``
    joins chains that continue a stronger one's ladder (:func:`merge_split_groups`).
    """
    n = len(traces)
    candidates = np.flatnonzero(p_iso >= min_p_iso)
    order_mz = candidates[np.argsort(traces.mz[candidates])]
    sorted_mz = traces.mz[order_mz]
    free = np.zeros(n, dtype=bool)
    free[candidates] = True

    def find(mz: float, apex: int) -> int:
        lo = np.searchsorted(sorted_mz, mz * (1 - ppm * 1e-6))
        hi = np.searchsorted(sorted_mz, mz * (1 + ppm * 1e-6), side="right")
        best, best_d = -1, np.inf
        for j in order_mz[lo:hi]:
            d = abs(int(traces.apex[j]) - apex)
            if free[j] and d <= apex_scans and d < best_d:
                best, best_d = int(j), d
        return best

    groups: list[tuple[list[int], int]] = []
    for seed in candidates[np.argsort(-traces.apex_intensity[candidates], kind="stable")]:
        if not free[seed]:
            continue
        apex, mz0 = int(traces.apex[seed]), float(traces.mz[seed])
        scores = []
        for z in range(1, MAX_CHARGE + 1):
            step = ISOTOPE_SPACING / z
            found = sum(find(mz0 + d * step, apex) >= 0 for d in (-1, 1))
            scores.append(found + 2.0 * float(p_charge[seed, z]))
        z = int(np.argmax(scores)) + 1
        step = ISOTOPE_SPACING / z
        members = [int(seed)]
        free[seed] = False
        current = int(seed)
        while p_index[current, 0] < 0.5:  # walk down towards the monoisotopic trace
            j = find(float(traces.mz[current]) - step, apex)
            if j < 0:
                break
            members.insert(0, j)
            free[j] = False
            current = j
        current = members[-1]
        while len(members) <= 2 * MAX_INDEX + 2:
            j = find(float(traces.mz[current]) + step, apex)
            if j < 0:
                break
            members.append(j)
            free[j] = False
            current = j
        groups.append((members, z))
    if merge_splits:
        groups = merge_split_groups(traces, groups, ppm, apex_scans)
    kept = [(members, z) for members, z in groups if len(members) >= min_isotopes]
    return features_from_groups(ms1, traces, kept, p_iso)


def merge_split_groups(
    traces: Traces, groups: list[tuple[list[int], int]], ppm: float, apex_scans: int
) -> list[tuple[list[int], int]]:
    """Join a weaker chain that continues a stronger one's isotope ladder (same charge, its first
    trace at the stronger chain's next or next-but-one isotope, apexes within ``apex_scans``).

    Why: a broken or missing isotope trace stops the upward walk, and the rest of the envelope
    then forms a second feature with a wrong monoisotopic m/z (a split: one false positive).
    ``groups`` come in seed order (strongest first); the stronger chain absorbs the weaker.
    """
    if not groups:
        return groups
    members = [list(m) for m, _ in groups]
    charges = np.array([z for _, z in groups])
    monos = np.array([traces.mz[m[0]] for m in members])
    apexes = np.array([traces.apex[m[0]] for m in members])
    order = np.argsort(monos)
    sorted_monos = monos[order]
    alive = np.ones(len(groups), dtype=bool)
    for a in range(len(groups)):
        if not alive[a] or len(members[a]) < 2:  # lone traces do not absorb: no ladder to extend
            continue
        step = ISOTOPE_SPACING / charges[a]
        grown = True
        while grown:
            grown = False
            lo_mz = monos[a] + (len(members[a]) - 0.5) * step
            hi_mz = monos[a] + (len(members[a]) + 1.5) * step
            lo, hi = np.searchsorted(sorted_monos, [lo_mz, hi_mz])
            for b in order[lo:hi]:
                if b == a or not alive[b] or charges[b] != charges[a]:
                    continue
                if abs(int(apexes[b]) - int(apexes[a])) > apex_scans:
                    continue
                k = (monos[b] - monos[a]) / step
                if abs(k - round(k)) * step > 2 * ppm * 1e-6 * monos[b]:
                    continue
                members[a] = sorted(members[a] + members[b], key=lambda t: traces.mz[t])
                alive[b] = False
                grown = True
                break
    return [(members[i], int(charges[i])) for i in np.flatnonzero(alive)]


def features_from_groups(
    ms1: Ms1Map, traces: Traces, groups: list[tuple[list[int], int]], p_iso: np.ndarray
) -> pd.DataFrame:
    """Per group (traces in isotope order, charge): the feature row and its traces' hulls."""
    scan = ms1.spectrum_index()
    by_trace = pd.Series(np.arange(len(scan)))[traces.peak_trace >= 0]
    peaks_of = by_trace.groupby(traces.peak_trace[traces.peak_trace >= 0]).apply(np.asarray)
    rows = []
    for number, (members, z) in enumerate(groups):
        profile: dict[int, float] = {}
        hulls = []
        totals = traces.total[members]
        for t in members:
            peaks = peaks_of[t]
            for s, i in zip(scan[peaks], ms1.intensity[peaks], strict=True):
                profile[int(s)] = profile.get(int(s), 0.0) + float(i)
            hulls.append(np.column_stack([ms1.rt[scan[peaks]], ms1.mz[peaks]]))
        scans = np.array(sorted(profile))
        values = np.array([profile[s] for s in scans])
        apex_scan = int(scans[np.argmax(values)])
        above = scans[values >= values.max() / 2]
        mono = float(traces.mz[members[0]])
        expected = averagine_envelope((mono - PROTON) * z, len(members))
        corr = float(
            np.dot(expected, totals) / (np.linalg.norm(expected) * np.linalg.norm(totals) + 1e-12)
        )
        rows.append(
            {
                "feature_id": f"f_{number}",
                "mz": mono,
                "charge": z,
                "rt_start": float(ms1.rt[scans[0]]),
                "rt_apex": float(ms1.rt[apex_scan]),
                "rt_end": float(ms1.rt[scans[-1]]),
                "intensity_apex": float(values.max()),
                "intensity_sum": float(values.sum()),
                "n_isotopes": len(members),
                "n_scans": len(scans),
                "quality": float(np.mean(p_iso[members]) * max(corr, 0.0)),
                "fwhm": float(ms1.rt[above[-1]] - ms1.rt[above[0]]),
                "most_abundant_mz": float(traces.mz[members[int(np.argmax(totals))]]),
                "averagine_corr": corr,
                "hulls": hulls,
            }
        )
    frame = pd.DataFrame(rows, columns=[*FEATURE_COLUMNS, "hulls"])
    return frame.sort_values(["rt_apex", "mz"]).reset_index(drop=True)
