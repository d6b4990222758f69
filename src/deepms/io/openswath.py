"""OpenSWATH / PyProphet peak groups (``.osw`` SQLite, PyProphet TSV) and DIA-NN reports.

Why one table: a DIA scorer needs, per peak group, its sub-scores, whether it is a decoy and
which target it competes with. Both OpenSWATH outputs are read into the same STANDARD columns
(:data:`STANDARD_COLUMNS`) followed by the sub-score columns (``main_var_*``/``var_*``), so the
scoring code never looks at the file format. Scores go back into a *copy* of the ``.osw`` as
PyProphet's ``SCORE_MS2`` table, so downstream tools (PyProphet export, DIAlignR) read them.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from deepms.errors import DataFormatError
from deepms.io.atomic import atomic_path

#: the columns every peak-group table starts with (the contract scoring code relies on)
STANDARD_COLUMNS = (
    "feature_id",
    "group_id",
    "precursor_id",
    "pair_id",
    "run",
    "decoy",
    "peptide",
    "charge",
    "rt",
)
#: OpenSwathDecoyGenerator's default tag: a decoy's id is the tag + its target's id
DECOY_PREFIX = "DECOY_"
#: PyProphet's SCORE_MS2 columns, in order, and the lower-case names used in frames
SCORE_MS2_COLUMNS = ("feature_id", "score", "rank", "pvalue", "qvalue", "pep")
#: DIA-NN main-report columns a DIA workflow needs
DIANN_REQUIRED = ("Run", "Precursor.Id", "Modified.Sequence", "Precursor.Charge", "Q.Value", "RT")

_RUN_SUFFIX = re.compile(r"_run\d+$")
_SQLITE_MAGIC = b"SQLite format 3\x00"
Pathish = str | PathLike[str]


class PeakGroupError(DataFormatError):
    """A peak-group, score or report file cannot be used: names file, column/row and cause."""


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(16) == _SQLITE_MAGIC


def _connect_ro(path: Path) -> sqlite3.Connection:
    """Open read-only (``mode=ro``): reading must never touch the user's results file."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0].upper() for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def read_peak_groups(path: Pathish, include_ms1: bool = False) -> pd.DataFrame:
    """Peak groups of an OpenSWATH ``.osw`` or a PyProphet TSV (``.tsv``/``.txt``).

    Columns: :data:`STANDARD_COLUMNS`, then the sub-scores (see :func:`score_columns`).
    ``include_ms1`` adds an ``.osw``'s FEATURE_MS1 ``VAR_*`` scores as ``var_ms1_*``
    (PyProphet's naming for its ms1ms2 level).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such peak-group file")
    name = path.name.lower()
    if name.endswith((".osw", ".sqlite")) or _is_sqlite(path):
        frame = _read_osw(path, include_ms1)
    elif name.endswith((".tsv", ".txt", ".tsv.gz", ".txt.gz")):
        frame = _read_tsv(path)
    else:
        raise PeakGroupError(path, "file", "not an .osw (SQLite) nor a PyProphet .tsv/.txt file")
    frame.attrs["path"] = str(path)
    frame.attrs["score_columns"] = score_columns(frame)
    return frame


def score_columns(frame: pd.DataFrame) -> list[str]:
    """The sub-score columns (``main_var_*`` and ``var_*``), in table order."""
    return [c for c in frame.columns if c.startswith(("main_var_", "var_"))]


def _decoy_flags(values: pd.Series, path: Path) -> pd.Series:
    text = values.astype(str).str.strip().str.lower()
    known = {"0": False, "1": True, "false": False, "true": True, "0.0": False, "1.0": True}
    bad = ~text.isin(list(known))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PeakGroupError(
            path, f"column 'decoy', row {row}", f"decoy must be 0/1, got {values.iloc[row]!r}"
        )
    return text.map(known).astype(bool)


def _first_present(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    lower = {c.lower(): c for c in frame.columns}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _read_tsv(path: Path) -> pd.DataFrame:
    """PyProphet TSV: ``group_id`` (or ``transition_group_id`` + ``run_id``) and ``decoy``."""
    raw = pd.read_csv(path, sep="\t", low_memory=False)
    group_col = _first_present(raw, ("group_id", "transition_group_id"))
    for needed, present in (("group_id or transition_group_id", group_col), ("decoy", "decoy")):
        if present is None or present not in raw.columns:
            raise PeakGroupError(path, f"column {needed!r}", "missing from the TSV header")
    run_col = _first_present(raw, ("run_id",))
    runs = raw[run_col].astype(str) if run_col else pd.Series("", index=raw.index)
    groups = raw[group_col].astype(str)
    if group_col.lower() == "group_id":
        precursors = groups.str.replace(_RUN_SUFFIX, "", regex=True)
        if run_col is None:
            runs = groups.str.extract(r"_run(\d+)$", expand=False).fillna("")
    else:  # transition_group_id: PyProphet builds group_id = id + "_run" + run_id
        precursors = groups
        groups = precursors + "_run" + runs if run_col else precursors
    id_col = _first_present(raw, ("id", "feature_id"))
    pep_col = _first_present(raw, ("FullPeptideName", "ModifiedPeptide", "Sequence"))
    charge_col = _first_present(raw, ("Charge", "PrecursorCharge"))
    rt_col = _first_present(raw, ("RT",))
    frame = pd.DataFrame(
        {
            "feature_id": raw[id_col].astype(str) if id_col else raw.index.astype(str),
            "group_id": groups,
            "precursor_id": precursors,
            "pair_id": precursors.str.replace(f"^{DECOY_PREFIX}", "", regex=True),
            "run": runs,
            "decoy": _decoy_flags(raw["decoy"], path),
            "peptide": raw[pep_col].fillna("").astype(str) if pep_col else "",
            "charge": pd.to_numeric(raw[charge_col], errors="coerce").fillna(0).astype(int)
            if charge_col
            else 0,
            "rt": pd.to_numeric(raw[rt_col], errors="coerce").astype(float) if rt_col else np.nan,
        }
    )
    scores = [c for c in raw.columns if c.lower().startswith(("main_var_", "var_"))]
    for col in scores:
        frame[col.lower()] = pd.to_numeric(raw[col], errors="coerce").astype(float)
    return frame


_OSW_QUERY = """
SELECT CAST(f.ID AS TEXT) AS feature_id, CAST(f.RUN_ID AS TEXT) AS run,
       CAST(f.PRECURSOR_ID AS TEXT) AS precursor_id, f.EXP_RT AS rt,
       COALESCE(NULLIF(p.TRAML_ID, ''), NULLIF(p.GROUP_LABEL, '')) AS label,
       p.CHARGE AS charge, p.DECOY AS decoy, pep.MODIFIED_SEQUENCE AS peptide,
       p.ID IS NULL AS orphan
FROM FEATURE f
LEFT JOIN PRECURSOR p ON p.ID = f.PRECURSOR_ID
LEFT JOIN (SELECT PRECURSOR_ID, MIN(PEPTIDE_ID) AS PEPTIDE_ID
           FROM PRECURSOR_PEPTIDE_MAPPING GROUP BY PRECURSOR_ID) pp ON pp.PRECURSOR_ID = p.ID
LEFT JOIN PEPTIDE pep ON pep.ID = pp.PEPTIDE_ID
ORDER BY f.rowid
"""


def _osw_scores(conn: sqlite3.Connection, table: str, prefix: str) -> pd.DataFrame:
    cols = [c for c in _columns(conn, table) if c.upper().startswith(("VAR_", "MAIN_VAR_"))]
    if not cols:
        return pd.DataFrame({"feature_id": pd.Series(dtype=str)})
    select = ", ".join(f'"{c}"' for c in cols)
    scores = pd.read_sql_query(
        f"SELECT CAST(FEATURE_ID AS TEXT) AS feature_id, {select} FROM {table}", conn
    )
    # VAR_MASSDEV_SCORE -> var_massdev_score (prefix "ms1_": var_ms1_massdev_score)
    names = {c: re.sub(r"^(main_)?var_", rf"\1var_{prefix}", c.lower()) for c in cols}
    return scores.rename(columns=names).drop_duplicates("feature_id")


def _read_osw(path: Path, include_ms1: bool) -> pd.DataFrame:
    """OSW: one row per FEATURE. ``pair_id`` is the precursor's TRAML_ID (else GROUP_LABEL)
    without the ``DECOY_`` tag, as OpenSwathDecoyGenerator names a decoy after its target;
    a precursor with neither falls back to its PRECURSOR.ID (then it pairs with nothing).
    Sub-score columns that are NULL in every row (scores the workflow did not compute, e.g.
    ion mobility or SONAR) are dropped and listed in ``attrs["dropped_score_columns"]``.
    """
    with closing(_connect_ro(path)) as conn:
        tables = _tables(conn)
        for table in ("FEATURE", "PRECURSOR", "FEATURE_MS2"):
            if table not in tables:
                raise PeakGroupError(
                    path,
                    f"table {table}",
                    "missing: not an OpenSWATH results file (a .pqp library has no FEATURE; "
                    "run OpenSwathWorkflow with -out_osw to score peak groups)",
                )
        frame = pd.read_sql_query(_OSW_QUERY, conn)
        scores = _osw_scores(conn, "FEATURE_MS2", "")
        if include_ms1 and "FEATURE_MS1" in tables:
            scores = scores.merge(_osw_scores(conn, "FEATURE_MS1", "ms1_"), "left", "feature_id")
    orphan = frame.pop("orphan").astype(bool)
    if orphan.any():
        first = frame.loc[orphan, "feature_id"].iloc[0]
        raise PeakGroupError(
            path, f"feature_id {first}", f"{int(orphan.sum())} FEATURE row(s) with no PRECURSOR"
        )
    label = frame.pop("label")
    frame["pair_id"] = label.fillna(frame["precursor_id"]).str.replace(
        f"^{DECOY_PREFIX}", "", regex=True
    )
    frame["group_id"] = frame["precursor_id"] + "_" + frame["run"]
    frame["decoy"] = frame["decoy"].fillna(0).astype(int).astype(bool)
    frame["peptide"] = frame["peptide"].fillna("").astype(str)
    frame["charge"] = pd.to_numeric(frame["charge"]).fillna(0).astype(int)
    frame["rt"] = frame["rt"].astype(float)
    frame = frame[list(STANDARD_COLUMNS)].merge(scores, "left", "feature_id")
    empty = [c for c in score_columns(frame) if frame[c].isna().all()]
    frame = frame.drop(columns=empty)
    frame[score_columns(frame)] = frame[score_columns(frame)].astype(float)
    frame.attrs["dropped_score_columns"] = empty
    return frame


def check_peak_groups(
    frame: pd.DataFrame, path: Pathish | None = None, required: Sequence[str] | None = None
) -> None:
    """Refuse a table target-decoy scoring cannot use, naming file, column and cause."""
    path = path if path is not None else frame.attrs.get("path", "<peak groups>")
    if len(frame) == 0:
        raise PeakGroupError(path, "table", "no peak groups (no rows)")
    missing = [c for c in ("feature_id", "decoy") if c not in frame.columns]
    missing += [c for c in (required or ()) if c not in frame.columns]
    if missing:
        raise PeakGroupError(path, "columns", f"missing required columns: {', '.join(missing)}")
    repeated = frame["feature_id"].duplicated()
    if repeated.any():
        first = frame["feature_id"][repeated].iloc[0]
        raise PeakGroupError(
            path, f"feature_id {first}", f"{int(repeated.sum())} repeated feature id(s)"
        )
    decoys = int(frame["decoy"].astype(bool).sum())
    if decoys == 0:
        raise PeakGroupError(
            path,
            "column 'decoy'",
            f"no decoy peak groups among {len(frame)} rows: a targets-only file cannot be used "
            "for target-decoy scoring; add decoys to the library (OpenSwathDecoyGenerator "
            "-in lib.pqp -out lib_decoy.pqp) and rerun OpenSwathWorkflow",
        )
    if decoys == len(frame):
        raise PeakGroupError(
            path, "column 'decoy'", f"no target peak groups: all {len(frame)} rows are decoys"
        )
    columns = list(dict.fromkeys([*score_columns(frame), *(required or ())]))
    if not columns:
        raise PeakGroupError(path, "columns", "no sub-score columns (main_var_*/var_*)")
    bad_columns = []
    for col in columns:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            bad_columns.append((col, int(bad.sum()), int(np.flatnonzero(bad)[0])))
    if bad_columns:
        col, count, row = bad_columns[0]
        others = ", ".join(c for c, _, _ in bad_columns[1:])
        cause = (
            f"{count} NaN or infinite value(s) in score column {col!r}, first at feature_id "
            f"{frame['feature_id'].iloc[row]} (row {row}); impute or drop the column"
        )
        raise PeakGroupError(
            path, f"column {col!r}", cause + (f"; also in: {others}" if others else "")
        )


def _check_scores(scores: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in SCORE_MS2_COLUMNS if c not in scores.columns]
    if missing:
        raise PeakGroupError(where, "scores", f"missing columns: {', '.join(missing)}")
    out = scores[list(SCORE_MS2_COLUMNS)].copy()
    try:
        out["feature_id"] = [int(v) for v in out["feature_id"]]
    except (TypeError, ValueError) as exc:
        raise PeakGroupError(
            where, "column 'feature_id'", f"OSW feature ids are integers: {exc}"
        ) from exc
    if out["feature_id"].duplicated().any():
        dup = out["feature_id"][out["feature_id"].duplicated()].iloc[0]
        raise PeakGroupError(where, f"feature_id {dup}", "scored twice")
    return out


def write_osw_scores(source_osw: Pathish, output_osw: Pathish, scores: pd.DataFrame) -> Path:
    """Copy ``source_osw`` to ``output_osw`` with ``scores`` as its SCORE_MS2 table.

    Why a copy: the source is the user's OpenSWATH result; an interrupted or wrong scoring
    must never damage it. The copy appears whole or not at all (:func:`atomic_path`).
    """
    source, output = Path(source_osw), Path(output_osw)
    if output.resolve() == source.resolve():
        raise PeakGroupError(output, "output", "must differ from the source .osw (never modified)")
    rows = _check_scores(scores, str(output))
    with closing(_connect_ro(source)) as src:
        if "FEATURE" not in _tables(src):
            raise PeakGroupError(source, "table FEATURE", "missing: not an OpenSWATH results file")
        known = {r[0] for r in src.execute("SELECT ID FROM FEATURE")}
        unknown = [f for f in rows["feature_id"] if f not in known]
        if unknown:
            raise PeakGroupError(
                source, f"feature_id {unknown[0]}", f"{len(unknown)} scored id(s) not in FEATURE"
            )
        with atomic_path(output) as partial:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
                dst.execute("DROP TABLE IF EXISTS SCORE_MS2")
                dst.execute(
                    "CREATE TABLE SCORE_MS2(FEATURE_ID INT, SCORE REAL, RANK INT, PVALUE REAL, "
                    "QVALUE REAL, PEP REAL)"
                )
                dst.execute(  # PyProphet's index, dropped with the old table
                    "CREATE INDEX IF NOT EXISTS idx_score_ms2_feature_id ON SCORE_MS2 (FEATURE_ID)"
                )
                dst.executemany(
                    "INSERT INTO SCORE_MS2 VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (int(f), float(s), int(r), float(p), float(q), float(e))
                        for f, s, r, p, q, e in rows.itertuples(index=False)
                    ],
                )
                dst.commit()
            finally:
                dst.close()
    return output


def read_osw_scores(path: Pathish) -> pd.DataFrame:
    """An ``.osw``'s SCORE_MS2 table with lower-case columns and ``feature_id`` as str."""
    path = Path(path)
    with closing(_connect_ro(path)) as conn:
        if "SCORE_MS2" not in _tables(conn):
            raise PeakGroupError(path, "table SCORE_MS2", "missing: the file was not scored")
        frame = pd.read_sql_query(
            "SELECT CAST(FEATURE_ID AS TEXT) AS feature_id, SCORE AS score, RANK AS rank, "
            "PVALUE AS pvalue, QVALUE AS qvalue, PEP AS pep FROM SCORE_MS2 ORDER BY rowid",
            conn,
        )
    frame["rank"] = pd.to_numeric(frame["rank"]).astype(int)
    frame.attrs["path"] = str(path)
    return frame


def read_diann_report(path: Pathish, required: Sequence[str] = DIANN_REQUIRED) -> pd.DataFrame:
    """A DIA-NN main report (``.tsv`` or ``.parquet``), all columns kept as DIA-NN names them."""
    path = Path(path)
    if path.name.lower().endswith(".parquet"):
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, sep="\t", low_memory=False)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PeakGroupError(
            path,
            "columns",
            f"missing DIA-NN report columns: {', '.join(missing)} (is this the main report?)",
        )
    frame.attrs["path"] = str(path)
    return frame
