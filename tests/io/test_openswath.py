"""OpenSWATH/PyProphet peak groups: exact values, target/decoy pairing, errors, write-back."""

from __future__ import annotations

import hashlib
import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.errors import DataFormatError
from deepms.io.formats import get_format
from deepms.io.openswath import (
    STANDARD_COLUMNS,
    PeakGroupError,
    check_peak_groups,
    read_diann_report,
    read_osw_scores,
    read_peak_groups,
    score_columns,
    write_osw_scores,
)

TSV = """group_id\trun_id\tdecoy\tmain_var_xx_swath_prelim_score\tvar_bseries_score\t\
var_library_corr
459_run0\t0\t0\t5.25\t5\t0.5
459_run0\t0\t0\t-0.125\t0\t-0.25
DECOY_459_run0\t0\t1\t-1.5\t1\t0.125
DECOY_459_run0\t0\t1\t-2\t0\t0
17_run0\t0\t0\t3\t2\t0.75
DECOY_17_run0\t0\t1\t-3\t0\t0.0625
"""


def _tsv(tmp_path: Path, text: str = TSV, name: str = "scores.tsv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- a tiny OSW with the real schema's tables and columns ---------------------------------------
# precursors: 10 target "1_PEPTIDEK/2", 11 its decoy "DECOY_1_PEPTIDEK/2", 12 an unpaired target
PRECURSORS = [(10, "1_PEPTIDEK/2", 2, 0), (11, "DECOY_1_PEPTIDEK/2", 2, 1), (12, "2_AAAK/3", 3, 0)]
PEPTIDES = [(1, "PEPTIDEK", "PEPTIDEK", 0), (2, "KEDITPEP", "KEDITPEP", 1), (3, "AAAK", "AAAK", 0)]
FEATURES = [  # ID, RUN_ID, PRECURSOR_ID, EXP_RT, BSERIES, LIBRARY_CORR
    (1001, 100, 10, 1200.5, 3.0, 0.9),
    (1002, 100, 11, 1300.25, 0.0, 0.1),
    (1003, 200, 10, 1210.0, 4.0, 0.8),
    (1004, 200, 12, 900.75, 1.0, 0.5),
]


def _osw(tmp_path: Path, features=FEATURES, precursors=PRECURSORS, name="tiny.osw") -> Path:
    path = tmp_path / name
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE RUN(ID INT, FILENAME TEXT);
            CREATE TABLE PRECURSOR(ID INT PRIMARY KEY NOT NULL, TRAML_ID TEXT NULL,
              GROUP_LABEL TEXT NULL, PRECURSOR_MZ REAL NOT NULL, CHARGE INT NULL,
              LIBRARY_INTENSITY REAL NULL, LIBRARY_RT REAL NULL, DECOY INT NOT NULL);
            CREATE TABLE PEPTIDE(ID INT PRIMARY KEY NOT NULL, UNMODIFIED_SEQUENCE TEXT NOT NULL,
              MODIFIED_SEQUENCE TEXT NOT NULL, DECOY INT NOT NULL);
            CREATE TABLE PRECURSOR_PEPTIDE_MAPPING(PRECURSOR_ID INT NOT NULL,
              PEPTIDE_ID INT NOT NULL);
            CREATE TABLE FEATURE(ID INT, RUN_ID INT, PRECURSOR_ID INT, EXP_RT REAL, EXP_IM REAL,
              NORM_RT REAL, DELTA_RT REAL, LEFT_WIDTH REAL, RIGHT_WIDTH REAL);
            CREATE TABLE FEATURE_MS2(FEATURE_ID INT, AREA_INTENSITY REAL,
              VAR_BSERIES_SCORE REAL, VAR_LIBRARY_CORR REAL, VAR_SONAR_LAG REAL);
            CREATE TABLE SCORE_MS2(FEATURE_ID INT, SCORE REAL, RANK INT, PVALUE REAL,
              QVALUE REAL, PEP REAL);
            INSERT INTO RUN VALUES (100, 'a.mzML'), (200, 'b.mzML');
            INSERT INTO SCORE_MS2 VALUES (1001, 9, 1, 0, 0, 0);
            """
        )
        conn.executemany(
            "INSERT INTO PRECURSOR VALUES (?, ?, ?, 500.0, ?, NULL, 10.0, ?)",
            [(i, t, t, c, d) for i, t, c, d in precursors],
        )
        conn.executemany("INSERT INTO PEPTIDE VALUES (?, ?, ?, ?)", PEPTIDES)
        conn.executemany(
            "INSERT INTO PRECURSOR_PEPTIDE_MAPPING VALUES (?, ?)", [(10, 1), (11, 2), (12, 3)]
        )
        conn.executemany(
            "INSERT INTO FEATURE VALUES (?, ?, ?, ?, NULL, 0, 0, 0, 0)",
            [f[:4] for f in features],
        )
        conn.executemany(
            "INSERT INTO FEATURE_MS2 VALUES (?, 1.0, ?, ?, NULL)",
            [(f[0], f[4], f[5]) for f in features],
        )
    return path


def test_tsv_values_parsed_exactly(tmp_path: Path) -> None:
    path = _tsv(tmp_path)
    frame = read_peak_groups(path)
    assert list(frame.columns[: len(STANDARD_COLUMNS)]) == list(STANDARD_COLUMNS)
    assert frame["feature_id"].tolist() == ["0", "1", "2", "3", "4", "5"]
    assert frame["group_id"].tolist()[2] == "DECOY_459_run0"
    assert frame["precursor_id"].tolist() == [
        "459",
        "459",
        "DECOY_459",
        "DECOY_459",
        "17",
        "DECOY_17",
    ]
    assert frame["pair_id"].tolist() == ["459", "459", "459", "459", "17", "17"]
    assert frame["run"].tolist() == ["0"] * 6
    assert frame["decoy"].tolist() == [False, False, True, True, False, True]
    assert frame["decoy"].dtype == bool
    assert frame["peptide"].tolist() == [""] * 6 and frame["charge"].tolist() == [0] * 6
    assert frame["rt"].isna().all()
    assert score_columns(frame) == [
        "main_var_xx_swath_prelim_score",
        "var_bseries_score",
        "var_library_corr",
    ]
    assert frame.attrs["score_columns"] == score_columns(frame)
    assert frame.attrs["path"] == str(path)
    assert frame["main_var_xx_swath_prelim_score"].tolist() == [5.25, -0.125, -1.5, -2, 3, -3]
    assert frame["var_library_corr"].iloc[5] == 0.0625
    check_peak_groups(frame)  # a valid table passes


def test_tsv_transition_group_id_and_run_id_build_group_id(tmp_path: Path) -> None:
    text = "transition_group_id\trun_id\tdecoy\tRT\tFullPeptideName\tCharge\tvar_x\n"
    text += "7_AAK/2\t3\t0\t61.5\tAAK\t2\t1\nDECOY_7_AAK/2\t3\t1\t70\tKAA\t2\t0\n"
    frame = read_peak_groups(_tsv(tmp_path, text, "osw.txt"))
    assert frame["group_id"].tolist() == ["7_AAK/2_run3", "DECOY_7_AAK/2_run3"]
    assert frame["pair_id"].tolist() == ["7_AAK/2", "7_AAK/2"]
    assert frame["run"].tolist() == ["3", "3"]
    assert frame["rt"].tolist() == [61.5, 70.0] and frame["charge"].tolist() == [2, 2]
    assert frame["peptide"].tolist() == ["AAK", "KAA"]


def test_tsv_bad_inputs_name_file_column_and_cause(tmp_path: Path) -> None:
    bad_decoy = _tsv(tmp_path, TSV.replace("17_run0\t0\t0", "17_run0\t0\tyes"), "bad.tsv")
    with pytest.raises(PeakGroupError, match=r"bad\.tsv.*column 'decoy', row 4.*'yes'"):
        read_peak_groups(bad_decoy)
    no_group = _tsv(tmp_path, TSV.replace("group_id", "gid", 1), "nogroup.tsv")
    with pytest.raises(DataFormatError, match=r"nogroup\.tsv.*group_id.*missing"):
        read_peak_groups(no_group)
    with pytest.raises(PeakGroupError, match=r"not an \.osw"):
        read_peak_groups(_tsv(tmp_path, TSV, "scores.csv"))


def test_check_refuses_targets_only_decoys_only_and_empty(tmp_path: Path) -> None:
    frame = read_peak_groups(_tsv(tmp_path))
    targets = frame[~frame["decoy"]]
    with pytest.raises(PeakGroupError) as info:
        check_peak_groups(targets, "t.tsv")
    message = str(info.value)
    assert "t.tsv" in message and "'decoy'" in message and "targets-only" in message
    assert "OpenSwathDecoyGenerator" in message
    with pytest.raises(PeakGroupError, match=r"t\.tsv.*no target peak groups"):
        check_peak_groups(frame[frame["decoy"]], "t.tsv")
    with pytest.raises(PeakGroupError, match=r"t\.tsv.*no rows"):
        check_peak_groups(frame.iloc[:0], "t.tsv")
    with pytest.raises(PeakGroupError, match=r"t\.tsv.*feature_id 1: 1 repeated"):
        check_peak_groups(frame.assign(feature_id=["0", "1", "1", "3", "4", "5"]), "t.tsv")


def test_check_names_missing_required_and_bad_scores(tmp_path: Path) -> None:
    frame = read_peak_groups(_tsv(tmp_path))
    with pytest.raises(PeakGroupError, match=r"missing required columns: var_a, var_b"):
        check_peak_groups(frame, required=["var_library_corr", "var_a", "var_b"])
    bad = frame.copy()
    bad.loc[[3, 5], "var_library_corr"] = [np.nan, np.inf]
    bad.loc[4, "var_bseries_score"] = -np.inf
    with pytest.raises(PeakGroupError) as info:
        check_peak_groups(bad)
    message = str(info.value)
    assert str(tmp_path / "scores.tsv") in message  # the path from frame.attrs
    assert "column 'var_bseries_score'" in message and "1 NaN or infinite" in message
    assert "feature_id 4 (row 4)" in message and "also in: var_library_corr" in message
    assert info.value.record == "column 'var_bseries_score'"


def test_osw_values_pairing_and_dropped_all_null_scores(tmp_path: Path) -> None:
    frame = read_peak_groups(_osw(tmp_path))
    assert list(frame.columns) == [*STANDARD_COLUMNS, "var_bseries_score", "var_library_corr"]
    assert frame.attrs["dropped_score_columns"] == ["var_sonar_lag"]
    assert frame["feature_id"].tolist() == ["1001", "1002", "1003", "1004"]
    assert frame["group_id"].tolist() == ["10_100", "11_100", "10_200", "12_200"]
    assert frame["precursor_id"].tolist() == ["10", "11", "10", "12"]
    # the decoy DECOY_1_PEPTIDEK/2 pairs with the target 1_PEPTIDEK/2 (OpenSwathDecoyGenerator)
    assert frame["pair_id"].tolist() == ["1_PEPTIDEK/2", "1_PEPTIDEK/2", "1_PEPTIDEK/2", "2_AAAK/3"]
    assert frame["run"].tolist() == ["100", "100", "200", "200"]
    assert frame["decoy"].tolist() == [False, True, False, False]
    assert frame["peptide"].tolist() == ["PEPTIDEK", "KEDITPEP", "PEPTIDEK", "AAAK"]
    assert frame["charge"].tolist() == [2, 2, 2, 3]
    assert frame["rt"].tolist() == [1200.5, 1300.25, 1210.0, 900.75]
    assert frame["var_bseries_score"].tolist() == [3.0, 0.0, 4.0, 1.0]
    check_peak_groups(frame)


def test_osw_feature_without_precursor_is_refused(tmp_path: Path) -> None:
    path = _osw(tmp_path, features=[*FEATURES, (1005, 100, 99, 5.0, 0.0, 0.0)])
    with pytest.raises(PeakGroupError, match=r"tiny\.osw.*feature_id 1005.*no PRECURSOR"):
        read_peak_groups(path)


def test_osw_without_traml_ids_pairs_nothing(tmp_path: Path) -> None:
    precursors = [(i, "", c, d) for i, _, c, d in PRECURSORS]
    frame = read_peak_groups(_osw(tmp_path, precursors=precursors))
    assert frame["pair_id"].tolist() == ["10", "11", "10", "12"]


def test_osw_targets_only_and_library_only_are_refused(tmp_path: Path) -> None:
    targets = [f for f in FEATURES if f[2] != 11]
    path = _osw(tmp_path, features=targets)
    with pytest.raises(PeakGroupError, match=r"tiny\.osw.*targets-only"):
        check_peak_groups(read_peak_groups(path))
    library = tmp_path / "lib.pqp"
    with sqlite3.connect(library) as conn:
        conn.execute("CREATE TABLE PRECURSOR(ID INT, DECOY INT)")
    with pytest.raises(PeakGroupError, match=r"lib\.pqp.*table FEATURE.*OpenSwathWorkflow"):
        read_peak_groups(library)


def _scores(ids: list[str]) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "feature_id": ids,
            "score": np.linspace(2.0, -1.0, n),
            "rank": np.arange(1, n + 1),
            "pvalue": np.linspace(0.001, 0.9, n),
            "qvalue": np.linspace(0.001, 0.5, n),
            "pep": np.linspace(0.01, 1.0, n),
        }
    )


def test_write_osw_scores_round_trip_leaves_source_unchanged(tmp_path: Path) -> None:
    source = _osw(tmp_path)
    before = _sha(source)
    scores = _scores(["1001", "1002", "1003", "1004"])
    out = write_osw_scores(source, tmp_path / "scored.osw", scores)
    assert _sha(source) == before
    back = read_osw_scores(out)
    pd.testing.assert_frame_equal(back, scores, check_dtype=False)
    assert back["feature_id"].tolist() == ["1001", "1002", "1003", "1004"]
    assert read_osw_scores(source)["score"].tolist() == [9.0]  # the old table, untouched
    assert len(read_peak_groups(out)) == 4  # the copy still reads as peak groups
    assert not list(tmp_path.glob("*.part*"))
    with sqlite3.connect(out) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "idx_score_ms2_feature_id" in indexes


def test_write_osw_scores_refuses_bad_requests(tmp_path: Path) -> None:
    source = _osw(tmp_path)
    before = _sha(source)
    with pytest.raises(PeakGroupError, match="must differ from the source"):
        write_osw_scores(source, source, _scores(["1001"]))
    with pytest.raises(PeakGroupError, match=r"feature_id 9999.*1 scored id\(s\) not in FEATURE"):
        write_osw_scores(source, tmp_path / "out.osw", _scores(["1001", "9999"]))
    with pytest.raises(PeakGroupError, match="missing columns: pep"):
        write_osw_scores(source, tmp_path / "out.osw", _scores(["1001"]).drop(columns="pep"))
    with pytest.raises(PeakGroupError, match=r"feature_id 1001.*scored twice"):
        write_osw_scores(source, tmp_path / "out.osw", _scores(["1001", "1001"]))
    assert not (tmp_path / "out.osw").exists() and _sha(source) == before
    bare = tmp_path / "bare.osw"
    with sqlite3.connect(bare) as conn:
        conn.execute("CREATE TABLE FEATURE(ID INT)")
    with pytest.raises(PeakGroupError, match=r"bare\.osw.*SCORE_MS2.*not scored"):
        read_osw_scores(bare)


def test_diann_report_requires_its_columns(tmp_path: Path) -> None:
    path = _tsv(tmp_path, "Run\tPrecursor.Id\tQ.Value\nr1\tAAK2\t0.01\n", "report.tsv")
    assert read_diann_report(path, required=("Run", "Q.Value"))["Precursor.Id"].tolist() == ["AAK2"]
    with pytest.raises(PeakGroupError, match=r"report\.tsv.*Modified\.Sequence, Precursor\.Charge"):
        read_diann_report(path)


def test_formats_yield_one_table_per_file(tmp_path: Path) -> None:
    tables = list(get_format("pyprophet_tsv").open([_tsv(tmp_path)]))
    assert len(tables) == 1 and len(tables[0]) == 6
    osw = get_format("osw")
    assert osw.takes("x.osw") and not osw.takes("x.pqp")
    assert len(next(iter(osw.open([_osw(tmp_path)])))) == 4
    bad = _tsv(tmp_path, TSV.replace("\t0\t1\t", "\t0\tx\t"), "bad.tsv")
    assert list(get_format("pyprophet_tsv").open([bad], on_error="skip")) == []
    with pytest.raises(PeakGroupError):
        list(get_format("pyprophet_tsv").open([bad]))


# -- the real files (data mirror) ---------------------------------------------------------------


def _real(mirror: Path, name: str) -> Path:
    path = mirror / "dia" / name
    if not path.exists():
        pytest.skip(f"{path} not in the data mirror")
    return path


def test_real_pyprophet_tsv(mirror: Path) -> None:
    frame = read_peak_groups(_real(mirror, "pyprophet_openswath_scores_test_data.tsv"))
    assert len(frame) == 9165 and int((~frame["decoy"]).sum()) == 3510
    assert frame["feature_id"].is_unique and len(score_columns(frame)) == 17
    both = frame.groupby("pair_id")["decoy"].agg(["min", "max"])
    assert len(both) == 387 and bool((~both["min"] & both["max"]).all())  # 387 full pairs
    assert frame.loc[0, "main_var_xx_swath_prelim_score"] == pytest.approx(5.2789396330302)
    check_peak_groups(frame)


def test_real_merged_osw(mirror: Path, tmp_path: Path) -> None:
    source = _real(mirror, "dialignr_spyogenes_merged.osw")
    before = _sha(source)
    frame = read_peak_groups(source)
    assert len(frame) == 2759 and frame["feature_id"].is_unique
    assert frame.groupby("run").size().sort_values().tolist() == [854, 949, 956]
    assert int(frame["decoy"].sum()) == 62  # features of 9 of the 10 decoy precursors
    assert frame.loc[frame["decoy"], "precursor_id"].nunique() == 9
    # decoys are named DECOY_<target TRAML_ID> but their targets are not in this file
    both = frame.groupby("pair_id")["decoy"].agg(["min", "max"])
    assert int((~both["min"] & both["max"]).sum()) == 0
    assert not math.isnan(frame["rt"].iloc[0]) and frame["peptide"].ne("").all()
    check_peak_groups(frame)
    old = read_osw_scores(source)
    assert len(old) == 2759
    out = write_osw_scores(source, tmp_path / "merged_scored.osw", old)
    pd.testing.assert_frame_equal(read_osw_scores(out), old)
    assert _sha(source) == before


def test_real_targets_only_osw_is_refused(mirror: Path) -> None:
    frame = read_peak_groups(_real(mirror, "massdash_spyogenes_test.osw"))
    assert len(frame) == 65 and not frame["decoy"].any()
    with pytest.raises(PeakGroupError, match="targets-only"):
        check_peak_groups(frame)


def test_real_diann_report(mirror: Path) -> None:
    report = read_diann_report(_real(mirror, "massdash_diann_report_combined.tsv"))
    assert len(report) == 16 and report["Precursor.Id"].iloc[0] == "AGAANIVPNSTGAAK2"
