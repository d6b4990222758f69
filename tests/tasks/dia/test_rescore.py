"""deepms rescoring sub-scores: similarity by hand, RT calibration, the OSW join, errors."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.tasks.dia.rescore import (
    FEATURE_COLUMNS,
    RescoreError,
    confident_anchors,
    cross_fitted_rt_deviation,
    feature_transitions,
    fit_rt_line,
    library_similarity,
    precursor_peptide,
    precursor_table,
    prediction_features,
)


def test_library_similarity_by_hand() -> None:
    # obs (1,1,0), pred (1,0,0): cos = 1/sqrt(2) -> angle pi/4 -> SA = 1 - 2(pi/4)/pi = 0.5;
    # centred (1/3,1/3,-2/3)·(2/3,-1/3,-1/3) = 1/3, each variance sum 2/3 -> R = 0.5
    corr, sa = library_similarity(np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    assert corr == pytest.approx(0.5)
    assert sa == pytest.approx(0.5)
    corr, sa = library_similarity(np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0]))
    assert corr == pytest.approx(1.0) and sa == pytest.approx(1.0)
    corr, sa = library_similarity(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert math.isnan(corr)  # < 3 fragments
    assert sa == pytest.approx(0.0)  # orthogonal
    corr, sa = library_similarity(np.zeros(3), np.ones(3))
    assert math.isnan(corr) and math.isnan(sa)


def test_rt_line_recovers_known_line_despite_outlier() -> None:
    irt = np.linspace(-20, 120, 21)
    rt = 100.0 + 30.0 * irt
    rt[5] += 900.0  # a wrong peak group among the anchors
    a, b = fit_rt_line(irt, rt)
    assert a == pytest.approx(100.0) and b == pytest.approx(30.0)


def test_cross_fitted_deviation_finds_planted_outlier() -> None:
    rows = []
    for run in ("r1", "r2"):
        offset = 0.0 if run == "r1" else 50.0
        for i in range(40):
            irt = -10.0 + 3.0 * i
            rows.append((run, f"p{i}", offset + 200.0 + 25.0 * irt, irt, True))
    frame = pd.DataFrame(rows, columns=["run", "precursor_id", "rt", "irt", "anchor"])
    frame.loc[7, "rt"] += 400.0  # planted: its own anchor must not set its calibration
    extra = pd.DataFrame(  # a non-anchor candidate of p3 in r2, 120 s off the line
        [("r2", "p3", 50.0 + 200.0 + 25.0 * -1.0 + 120.0, -1.0, False)], columns=frame.columns
    )
    frame = pd.concat([frame, extra], ignore_index=True)
    dev = cross_fitted_rt_deviation(frame, frame["anchor"].to_numpy(), folds=5)
    assert dev[7] == pytest.approx(400.0)
    assert dev[-1] == pytest.approx(120.0)
    others = np.delete(dev, [7, len(dev) - 1])
    assert np.allclose(others, 0.0, atol=1e-6)


def _osw(path: Path, feature_transition: bool = True) -> Path:
    """Two target precursors (one oxidised only in its TRAML_ID) and a decoy; 3 features."""
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE PEPTIDE(ID INT, UNMODIFIED_SEQUENCE TEXT, MODIFIED_SEQUENCE TEXT, DECOY INT);
        CREATE TABLE PRECURSOR(ID INT, TRAML_ID TEXT, GROUP_LABEL TEXT, PRECURSOR_MZ REAL,
            CHARGE INT, LIBRARY_RT REAL, DECOY INT);
        CREATE TABLE PRECURSOR_PEPTIDE_MAPPING(PRECURSOR_ID INT, PEPTIDE_ID INT);
        CREATE TABLE TRANSITION(ID INT, TRAML_ID TEXT, PRODUCT_MZ REAL, CHARGE INT, TYPE TEXT,
            ORDINAL INT, LIBRARY_INTENSITY REAL, DECOY INT);
        CREATE TABLE TRANSITION_PRECURSOR_MAPPING(TRANSITION_ID INT, PRECURSOR_ID INT);
        CREATE TABLE FEATURE(ID INT, RUN_ID INT, PRECURSOR_ID INT, EXP_RT REAL);
        INSERT INTO PEPTIDE VALUES (1, 'PEPTIDEK', 'PEPTIDEK', 0), (2, 'AFDMEER', 'AFDMEER', 0),
            (3, 'EDITPEPK', 'EDITPEPK', 1);
        INSERT INTO PRECURSOR VALUES (10, '1_PEPTIDEK/2', '', 400, 2, 20, 0),
            (11, '2_AFDM[147]EER/2', '', 432, 2, 10, 0),
            (12, 'DECOY_1_PEPTIDEK/2', '', 400, 2, 20, 1);
        INSERT INTO PRECURSOR_PEPTIDE_MAPPING VALUES (10, 1), (11, 2), (12, 3);
        INSERT INTO TRANSITION VALUES
            (100, '5_PEPTIDEK/2_y3', 1, NULL, '', -1, 1, 0),
            (101, '6_PEPTIDEK/2_b2', 1, NULL, '', -1, 1, 0),
            (102, 'x', 1, 2, 'y', 5, 1, 0),
            (103, '8_PEPTIDEK/2_a2', 1, NULL, '', -1, 1, 0),
            (110, '9_AFDM[147]EER/2_y2', 1, NULL, '', -1, 1, 0),
            (111, '10_AFDM[147]EER/2_y3', 1, NULL, '', -1, 1, 0);
        INSERT INTO TRANSITION_PRECURSOR_MAPPING VALUES
            (100, 10), (101, 10), (102, 10), (103, 10), (110, 11), (111, 11);
        INSERT INTO FEATURE VALUES (1000, 1, 10, 600.0), (1001, 1, 10, 900.0),
            (1100, 1, 11, 300.0);
        """
    )
    if feature_transition:
        conn.executescript(
            """
            CREATE TABLE FEATURE_TRANSITION(FEATURE_ID INT, TRANSITION_ID INT,
                AREA_INTENSITY REAL);
            INSERT INTO FEATURE_TRANSITION VALUES
                (1000, 100, 10.0), (1000, 101, 20.0), (1000, 102, 30.0), (1000, 103, 99.0),
                (1001, 100, 30.0), (1001, 101, 20.0), (1001, 102, 10.0), (1001, 103, 99.0),
                (1100, 110, 5.0), (1100, 111, 5.0);
            """
        )
    conn.commit()
    conn.close()
    return path


class FakePDeep:
    """pdeep's documented output columns; b/y 1+ and 2+ only (no a ions), one peptide known."""

    def __init__(self) -> None:
        self.seen: list[pd.DataFrame] = []

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.seen.append(frame.copy())
        rows = [
            ("PEPTIDEK", 2, "y", 3, 1, 1.0),
            ("PEPTIDEK", 2, "b", 2, 1, 2.0),
            ("PEPTIDEK", 2, "y", 5, 2, 3.0),
            ("PEPTIDEK", 2, "y", 4, 1, 0.5),  # predicted, not a transition: ignored
        ]
        rows = [r for r in rows if r[0] in set(frame["peptide"])]
        return pd.DataFrame(
            rows,
            columns=[
                "ModifiedPeptide",
                "PrecursorCharge",
                "FragmentType",
                "FragmentNumber",
                "FragmentCharge",
                "RelativeIntensity",
            ],
        )


class FakeRT:
    """deeprt's documented columns; rejects modified peptides as the real champion does."""

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        if frame["peptide"].str.contains(r"\[").any():
            raise ValueError("modification Oxidation@M was not in the model's vocabulary")
        return pd.DataFrame({"peptide": frame["peptide"], "predicted_rt": 10.0})


def test_feature_transitions_join(tmp_path: Path) -> None:
    ions = feature_transitions(_osw(tmp_path / "t.osw"))
    f0 = ions[ions["feature_id"] == "1000"]
    assert list(f0["area"]) == [10.0, 20.0, 30.0, 99.0]
    assert list(f0["fragment_type"]) == ["y", "b", "y", "a"]
    assert list(f0["fragment_number"]) == [3, 2, 5, 2]
    assert list(f0["fragment_charge"]) == [1, 1, 2, 1]
    assert set(ions["precursor_id"]) == {"10", "11"}


def test_precursor_peptides_from_traml_ids(tmp_path: Path) -> None:
    table = precursor_table(_osw(tmp_path / "t.osw")).set_index("precursor_id")
    assert table.loc["11", "peptide"] == "AFDM[Oxidation]EER"
    assert table.loc["12", "peptide"] == "EDITPEPK"
    # a decoy's modification moves with its residue (pseudo-reverse keeps the C-terminus)
    assert precursor_peptide("DECOY_3_LM[147]EEK/2", "EEMLK", "EEMLK", True) == "EEM[Oxidation]LK"
    assert precursor_peptide("4_C[999]K/2", "CK", "CK", False) == ""  # unknown mass tag


def test_prediction_features_vectors(tmp_path: Path) -> None:
    osw = _osw(tmp_path / "t.osw")
    groups = pd.DataFrame(
        {
            "feature_id": ["1000", "1001", "1100"],
            "precursor_id": ["10", "10", "11"],
            "run": ["1", "1", "1"],
            "rt": [600.0, 900.0, 300.0],
            "decoy": [False, False, False],
        }
    )
    pdeep = FakePDeep()
    out = prediction_features(
        groups, osw, pdeep, FakeRT(), collision_energy=30, anchors=np.array([1, 0, 0], bool)
    )
    assert list(out.columns) == ["feature_id", *FEATURE_COLUMNS]
    assert pdeep.seen[0]["collision_energy"].eq(30).all()
    # the a2 transition is left out: vectors are (y3, b2, y5^2)
    expect0 = library_similarity(np.array([10.0, 20.0, 30.0]), np.array([1.0, 2.0, 3.0]))
    expect1 = library_similarity(np.array([30.0, 20.0, 10.0]), np.array([1.0, 2.0, 3.0]))
    got = out.set_index("feature_id")
    assert got.loc["1000", "var_deepms_library_corr"] == pytest.approx(expect0[0])
    assert got.loc["1000", "var_deepms_library_sa"] == pytest.approx(expect0[1])
    assert got.loc["1001", "var_deepms_library_corr"] == pytest.approx(-1.0)
    assert got.loc["1001", "var_deepms_library_sa"] == pytest.approx(expect1[1])
    # AFDM[Oxidation]EER: pdeep fake knows no prediction for it, deeprt rejects it -> NaN
    assert got.loc["1100", FEATURE_COLUMNS].isna().all()
    # one anchor is too few for a line in the other folds: NaN deviation, not an error
    assert got.loc[["1000", "1001"], "var_deepms_rt_deviation"].isna().all()


def test_missing_feature_transition_names_file(tmp_path: Path) -> None:
    osw = _osw(tmp_path / "no_ft.osw", feature_transition=False)
    with pytest.raises(RescoreError, match=r"no_ft\.osw.*FEATURE_TRANSITION"):
        feature_transitions(osw)
    with pytest.raises(FileNotFoundError, match=r"absent\.osw"):
        feature_transitions(tmp_path / "absent.osw")


def test_confident_anchors_score_ms2_then_main_score(tmp_path: Path) -> None:
    osw = _osw(tmp_path / "t.osw")
    groups = pd.DataFrame(
        {
            "feature_id": ["1000", "1001", "1100", "1200"],
            "precursor_id": ["10", "10", "11", "12"],
            "run": ["1"] * 4,
            "decoy": [False, False, False, True],
            "main_var_xx": [0.1, 0.9, 0.5, 2.0],
        }
    )
    # no SCORE_MS2: the best main score per precursor-run; decoys never anchor
    assert list(confident_anchors(osw, groups)) == [False, True, True, False]
    conn = sqlite3.connect(osw)
    conn.executescript(
        """CREATE TABLE SCORE_MS2(FEATURE_ID INT, RANK INT, QVALUE REAL);
           INSERT INTO SCORE_MS2 VALUES (1000, 1, 0.001), (1001, 2, 0.5), (1100, 1, 0.2),
               (1200, 1, 0.0);"""
    )
    conn.commit()
    conn.close()
    assert list(confident_anchors(osw, groups)) == [True, False, False, False]


def test_batch_rejection_isolates_rejected_rows(tmp_path: Path) -> None:
    """One unknown modification fails pdeep's whole batch: the others still get features."""

    class PickyPDeep(FakePDeep):
        def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
            if frame["peptide"].str.contains("Oxidation").any():
                raise ValueError("Oxidation@M not in the vocabulary")
            return super().predict(frame)

    groups = pd.DataFrame(
        {
            "feature_id": ["1000", "1100"],
            "precursor_id": ["10", "11"],
            "run": ["1", "1"],
            "rt": [600.0, 300.0],
            "decoy": [False, False],
        }
    )
    out = prediction_features(
        groups, _osw(tmp_path / "t.osw"), PickyPDeep(), FakeRT(), anchors=np.zeros(2, bool)
    )
    assert np.isfinite(out.loc[0, "var_deepms_library_sa"])
    assert np.isnan(out.loc[1, "var_deepms_library_sa"])
