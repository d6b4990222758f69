"""Rescoring sub-scores from deepms's own predictions (pdeep fragment intensities, deeprt iRT).

Why: OpenSWATH scores a peak group against the *experimental* library it was given. A model
that predicts every precursor's spectrum and retention time gives two independent checks of the
same peak group: does its fragment pattern look like the predicted one, and does it elute where
the predicted iRT says it should. The sub-scores added per feature (``feature_id``):

* ``var_deepms_library_corr``: Pearson R of the feature's per-transition areas
  (FEATURE_TRANSITION.AREA_INTENSITY) with the pdeep-predicted intensities of the same fragments;
* ``var_deepms_library_sa``: Prosit's normalised spectral angle of the same pair (1 = same
  direction, 0 = orthogonal);
* ``var_deepms_rt_deviation``: |feature RT - (a + b * predicted iRT)|, seconds (the run's units).

RT calibration: per run, a Theil-Sen line (median of pairwise slopes; robust to the wrong peak
groups that are always among the anchors) fitted on *anchors*, by default each target precursor's
PyProphet-confident peak group (SCORE_MS2 RANK 1, QVALUE < 0.01) or, without SCORE_MS2, its best
peak group by the main score. Decoys never anchor. Leakage: anchors are chosen with the scores
being evaluated, so a line fitted on a precursor's own anchor would favour that peak group; the
fit is therefore cross-fitted by precursor (``folds`` groups): every peak group is measured
against a line fitted without any anchor of its own precursor.

Fragments the model cannot predict (ion types/charges absent from its output, e.g. ``a`` ions or
3+ fragments of pdeep) are left out of both vectors; a modelled fragment the model drops counts as
0. A peptide the model rejects (a modification outside its vocabulary; deeprt here knows none)
gets NaN features, not an error for the whole table.
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from contextlib import closing
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from deepms.chem import parse_proforma
from deepms.errors import DataFormatError
from deepms.io.library import library_peptide
from deepms.io.pqp import precursor_peptide

FEATURE_COLUMNS = ("var_deepms_library_corr", "var_deepms_library_sa", "var_deepms_rt_deviation")
#: OSW tables the intensity path needs (FEATURE_TRANSITION joined to the library tables)
REQUIRED_TABLES = ("FEATURE", "FEATURE_TRANSITION", "TRANSITION", "TRANSITION_PRECURSOR_MAPPING")
PEPTIDE_TABLES = ("PRECURSOR", "PRECURSOR_PEPTIDE_MAPPING", "PEPTIDE")
ION_KEY = ("key", "fragment_type", "fragment_number", "fragment_charge")
#: the pdeep output columns used (deepms.io.library names)
PDEEP_COLUMNS = ("ModifiedPeptide", "PrecursorCharge", "FragmentType", "FragmentNumber")
PDEEP_COLUMNS += ("FragmentCharge", "RelativeIntensity")
_PDEEP_NAMES = dict(zip(PDEEP_COLUMNS, ("key", "charge", *ION_KEY[1:], "predicted"), strict=True))
_TRAML_ION = re.compile(r"_([abcxyz])(\d+)(?:_(\d+))?$")
Pathish = str | PathLike[str]


class Predictor(Protocol):
    """What rescoring needs of a model: pdeep's/deeprt's ``predict(frame)`` (see module doc)."""

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame: ...


class RescoreError(DataFormatError):
    """An OSW file cannot be rescored: names the file, table and cause."""


# --- similarity and calibration (pure functions) ------------------------------------------------


def library_similarity(observed: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """(Pearson R, normalised spectral angle) of two intensity vectors over the same fragments.

    NaN R with < 3 fragments or a constant vector (R is then meaningless); NaN angle with < 2
    fragments or an all-zero vector. Negative intensities count as 0.
    """
    obs = np.clip(np.asarray(observed, dtype=float), 0, None)
    pred = np.clip(np.asarray(predicted, dtype=float), 0, None)
    corr = float("nan")
    if len(obs) >= 3 and obs.std() > 0 and pred.std() > 0:
        corr = float(np.corrcoef(obs, pred)[0, 1])
    angle = float("nan")
    norms = np.linalg.norm(obs) * np.linalg.norm(pred)
    if len(obs) >= 2 and norms > 0:
        cosine = np.clip(obs @ pred / norms, -1.0, 1.0)
        angle = float(1.0 - 2.0 * np.arccos(cosine) / np.pi)
    return corr, angle


def fit_rt_line(irt: np.ndarray, rt: np.ndarray) -> tuple[float, float]:
    """(intercept a, slope b) of rt = a + b * irt by Theil-Sen: a minority of wrong anchors
    (false peak groups) moves neither the median slope nor the median intercept."""
    from scipy.stats import theilslopes

    irt, rt = np.asarray(irt, dtype=float), np.asarray(rt, dtype=float)
    keep = np.isfinite(irt) & np.isfinite(rt)
    if keep.sum() < 2 or np.ptp(irt[keep]) == 0:
        return float("nan"), float("nan")
    slope, intercept, _, _ = theilslopes(rt[keep], irt[keep])
    return float(intercept), float(slope)


def _fold_of(key: str, folds: int) -> int:
    return zlib.crc32(key.encode()) % folds  # stable across processes (hash() is salted)


def cross_fitted_rt_deviation(
    frame: pd.DataFrame, anchor: np.ndarray, folds: int = 5
) -> np.ndarray:
    """|rt - (a + b * irt)| per row of ``frame`` (``run, precursor_id, rt, irt``), the line fitted
    per run on the ``anchor`` rows of *other* precursors (folds by precursor id)."""
    out = np.full(len(frame), np.nan)
    anchor = np.asarray(anchor, dtype=bool)
    fold = frame["precursor_id"].astype(str).map(lambda k: _fold_of(k, folds)).to_numpy()
    runs = frame["run"].astype(str).to_numpy()
    irt, rt = frame["irt"].to_numpy(dtype=float), frame["rt"].to_numpy(dtype=float)
    for run in np.unique(runs):
        in_run = runs == run
        for k in range(folds):
            rows = in_run & (fold == k)
            if not rows.any():
                continue
            train = in_run & anchor & (fold != k)
            a, b = fit_rt_line(irt[train], rt[train])
            out[rows] = np.abs(rt[rows] - (a + b * irt[rows]))
    return out


# --- reading the OSW -----------------------------------------------------------------------------


def _check_tables(conn: sqlite3.Connection, path: Path, tables: tuple[str, ...]) -> None:
    present = {r[0].upper() for r in conn.execute("SELECT name FROM sqlite_master")}
    for table in tables:
        if table not in present:
            raise RescoreError(
                path,
                f"table {table}",
                "missing: rescoring needs an OpenSWATH .osw with per-transition feature areas "
                "(FEATURE_TRANSITION, written by OpenSwathWorkflow -out_osw) and its library "
                "tables (TRANSITION, PRECURSOR, PEPTIDE + mappings)",
            )


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such OSW file")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _ion(kind: Any, number: Any, charge: Any, traml_id: Any) -> tuple[str, int, int]:
    """Type, number, charge from TYPE/ORDINAL/CHARGE, else from the TRAML_ID tail (``_y5``,
    ``_y16_2``; older OSW files leave the columns empty). ('', -1, -1) when neither says."""
    if kind and number is not None and not pd.isna(number) and int(number) > 0:
        z = int(charge) if charge is not None and not pd.isna(charge) else 1
        return str(kind), int(number), z
    match = _TRAML_ION.search(str(traml_id or ""))
    if match is None:
        return "", -1, -1
    return match[1], int(match[2]), int(match[3] or 1)


def feature_transitions(osw_path: Pathish) -> pd.DataFrame:
    """One row per (feature, transition): ``feature_id, precursor_id, transition_id, area,
    fragment_type, fragment_number, fragment_charge``, ids as text (as read_peak_groups)."""
    path = Path(osw_path)
    with closing(_connect(path)) as conn:
        _check_tables(conn, path, REQUIRED_TABLES + PEPTIDE_TABLES)
        raw = pd.read_sql_query(
            """SELECT CAST(ft.FEATURE_ID AS TEXT) AS feature_id,
                      CAST(f.PRECURSOR_ID AS TEXT) AS precursor_id,
                      CAST(ft.TRANSITION_ID AS TEXT) AS transition_id,
                      ft.AREA_INTENSITY AS area, t.TYPE, t.ORDINAL, t.CHARGE, t.TRAML_ID
               FROM FEATURE_TRANSITION ft
               JOIN FEATURE f ON f.ID = ft.FEATURE_ID
               JOIN TRANSITION t ON t.ID = ft.TRANSITION_ID
               ORDER BY ft.rowid""",
            conn,
        )
    ions = [_ion(*row) for row in raw[["TYPE", "ORDINAL", "CHARGE", "TRAML_ID"]].itertuples(False)]
    out = raw[["feature_id", "precursor_id", "transition_id", "area"]].copy()
    out["area"] = pd.to_numeric(out["area"], errors="coerce").fillna(0.0)
    out[list(ION_KEY[1:])] = pd.DataFrame(ions, index=out.index, columns=list(ION_KEY[1:]))
    return out.astype({"fragment_number": np.int64, "fragment_charge": np.int64})


def precursor_table(osw_path: Pathish) -> pd.DataFrame:
    """``precursor_id, peptide (ProForma or ''), charge, decoy`` per PRECURSOR."""
    path = Path(osw_path)
    with closing(_connect(path)) as conn:
        _check_tables(conn, path, PEPTIDE_TABLES)
        raw = pd.read_sql_query(
            """SELECT CAST(p.ID AS TEXT) AS precursor_id, p.TRAML_ID, p.CHARGE AS charge,
                      p.DECOY AS decoy, pep.UNMODIFIED_SEQUENCE AS seq,
                      pep.MODIFIED_SEQUENCE AS modified
               FROM PRECURSOR p
               JOIN (SELECT PRECURSOR_ID, MIN(PEPTIDE_ID) AS PEPTIDE_ID
                     FROM PRECURSOR_PEPTIDE_MAPPING GROUP BY PRECURSOR_ID) m
                 ON m.PRECURSOR_ID = p.ID
               JOIN PEPTIDE pep ON pep.ID = m.PEPTIDE_ID""",
            conn,
        )
    raw["decoy"] = raw["decoy"].astype(bool)
    raw["peptide"] = [
        precursor_peptide(t, s, m, d)
        for t, s, m, d in raw[["TRAML_ID", "seq", "modified", "decoy"]].itertuples(False)
    ]
    raw["charge"] = pd.to_numeric(raw["charge"], errors="coerce").fillna(0).astype(int)
    return raw[["precursor_id", "peptide", "charge", "decoy"]]


def confident_anchors(
    osw_path: Pathish, peak_groups: pd.DataFrame, qvalue: float = 0.01
) -> np.ndarray:
    """Boolean per row of ``peak_groups``: a target's best peak group in its run. SCORE_MS2 RANK 1
    with QVALUE < ``qvalue`` when the OSW has PyProphet's scores, else the highest main score."""
    path = Path(osw_path)
    target = ~peak_groups["decoy"].astype(bool).to_numpy()
    with closing(_connect(path)) as conn:
        tables = {r[0].upper() for r in conn.execute("SELECT name FROM sqlite_master")}
        scores = None
        if "SCORE_MS2" in tables:
            scores = pd.read_sql_query(
                "SELECT CAST(FEATURE_ID AS TEXT) AS feature_id, RANK, QVALUE FROM SCORE_MS2", conn
            ).drop_duplicates("feature_id")
    if scores is not None and len(scores):
        merged = peak_groups[["feature_id"]].merge(scores, on="feature_id", how="left")
        best = (merged["RANK"] == 1) & (merged["QVALUE"] < qvalue)
        return target & best.to_numpy()
    main = [c for c in peak_groups.columns if c.startswith("main_var_")]
    if not main:
        raise RescoreError(path, "table SCORE_MS2", "missing, and no main_var_* score to rank by")
    top = peak_groups.groupby(["precursor_id", "run"])[main[0]].transform("max")
    return target & (peak_groups[main[0]] == top).to_numpy()


# --- predictions ---------------------------------------------------------------------------------


def _predict_rows(predictor: Predictor, frame: pd.DataFrame) -> list[pd.DataFrame | None]:
    """The predictor on all rows at once; if it rejects the batch (one unknown modification
    fails a whole chunk), row by row, None for the rows it rejects."""
    try:
        return [predictor.predict(frame)]
    except Exception:
        parts: list[pd.DataFrame | None] = []
        for i in range(len(frame)):
            try:
                parts.append(predictor.predict(frame.iloc[[i]]))
            except Exception:
                parts.append(None)
        return parts


def _key(peptide: str) -> str:
    try:
        return library_peptide(parse_proforma(peptide)) if peptide else ""
    except Exception:
        return ""


def predicted_intensities(
    predictor: Predictor, precursors: pd.DataFrame, collision_energy: float | None
) -> pd.DataFrame:
    """``key`` (peptide, library notation), ``charge``, fragment type/number/charge, ``predicted``
    for the precursors with a peptide; ``min_intensity`` is the predictor's own setting."""
    todo = precursors.loc[precursors["peptide"] != "", ["peptide", "charge"]].drop_duplicates()
    frame = todo.reset_index(drop=True).assign(
        collision_energy=np.nan if collision_energy is None else float(collision_energy)
    )
    parts = [p for p in _predict_rows(predictor, frame) if p is not None and len(p)]
    if not parts:
        return pd.DataFrame(columns=["key", "charge", *ION_KEY[1:], "predicted"])
    out = pd.concat(parts, ignore_index=True).rename(columns=_PDEEP_NAMES)
    out = out.astype({"key": str, "charge": int, "fragment_number": int, "fragment_charge": int})
    out = out[["key", "charge", *ION_KEY[1:], "predicted"]].astype({"predicted": float})
    return out.drop_duplicates(["key", "charge", *ION_KEY[1:]])


def predicted_irt(predictor: Predictor, peptides: pd.Series) -> pd.Series:
    """Predicted iRT per distinct peptide (index: peptide); NaN where the model rejects one."""
    unique = pd.Series(sorted({p for p in peptides if p}), dtype=object)
    frame = pd.DataFrame({"peptide": unique})
    parts = _predict_rows(predictor, frame)
    if len(parts) == 1 and parts[0] is not None:
        values = parts[0]["predicted_rt"].to_numpy(dtype=float)
    else:
        values = np.array(
            [float(p["predicted_rt"].iloc[0]) if p is not None else np.nan for p in parts]
        )
    return pd.Series(values, index=unique.to_numpy(), dtype=float)


def prediction_features(
    peak_groups: pd.DataFrame,
    osw_path: Pathish,
    pdeep_predictor: Predictor,
    rt_predictor: Predictor,
    collision_energy: float | None = None,
    anchors: np.ndarray | None = None,
    folds: int = 5,
) -> pd.DataFrame:
    """``feature_id`` + :data:`FEATURE_COLUMNS` for every peak group of ``peak_groups`` (a
    :func:`deepms.io.openswath.read_peak_groups` frame of the same ``osw_path``), in its order.

    ``collision_energy``: NCE given to pdeep (None: unknown, the model's flag). ``anchors``:
    boolean per row, the peak groups the RT line is fitted on (default
    :func:`confident_anchors`).
    """
    path = Path(osw_path)
    transitions = feature_transitions(path)
    precursors = precursor_table(path)
    precursors = precursors.assign(key=[_key(p) for p in precursors["peptide"]])
    predicted = predicted_intensities(pdeep_predictor, precursors, collision_energy)
    modelled = set(zip(predicted["fragment_type"], predicted["fragment_charge"], strict=True))

    ions = transitions.merge(precursors, on="precursor_id", how="left")
    has_prediction = ions["key"].isin(set(predicted["key"])) & ions["key"].ne("")
    ions = ions[has_prediction].copy()
    in_model = [
        (t, z) in modelled
        for t, z in zip(ions["fragment_type"], ions["fragment_charge"], strict=True)
    ]
    ions = ions[np.asarray(in_model, dtype=bool)]
    ions = ions.merge(predicted, on=["key", "charge", *ION_KEY[1:]], how="left")
    ions["predicted"] = ions["predicted"].fillna(0.0)
    similarity = {
        fid: library_similarity(g["area"].to_numpy(), g["predicted"].to_numpy())
        for fid, g in ions.groupby("feature_id", sort=False)
    }

    groups = peak_groups[["feature_id", "precursor_id", "run", "rt", "decoy"]].copy()
    groups["feature_id"] = groups["feature_id"].astype(str)
    groups["precursor_id"] = groups["precursor_id"].astype(str)
    peptide_of = precursors.set_index("precursor_id")["peptide"]
    peptides = groups["precursor_id"].map(peptide_of).fillna("")
    irt = predicted_irt(rt_predictor, peptides)
    groups["irt"] = peptides.map(irt).astype(float)
    if anchors is None:
        anchors = confident_anchors(path, peak_groups)
    deviation = cross_fitted_rt_deviation(groups, np.asarray(anchors, dtype=bool), folds)

    pairs = [similarity.get(f, (np.nan, np.nan)) for f in groups["feature_id"]]
    return pd.DataFrame(
        {
            "feature_id": groups["feature_id"].to_numpy(),
            "var_deepms_library_corr": np.array([p[0] for p in pairs], dtype=float),
            "var_deepms_library_sa": np.array([p[1] for p in pairs], dtype=float),
            "var_deepms_rt_deviation": deviation,
        }
    )
