"""DIA peers (PyProphet 3 LDA / XGBoost, mokapot 0.10) run in their own virtual environments.

The end-to-end tests build the peer environments when they are missing (``envs/setup.sh`` is
idempotent: a built environment is left alone) and fail -- never skip -- when that fails.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.peer_envs import MARKER
from deepms.tasks.dia import peers
from deepms.tasks.dia.peers import (
    PEERS,
    PeerError,
    PeerUnavailableError,
    mokapot_input,
    peer_python,
    pyprophet_input,
    run_peer,
    run_peer_detailed,
)

REPO = Path(__file__).resolve().parents[3]
SCORES = ["main_var_a", "var_b", "var_c", "var_d", "var_e"]


def synthetic(n_precursors: int = 350, per_group: int = 2, seed: int = 0) -> pd.DataFrame:
    """``n_precursors`` target and as many decoy precursors, ``per_group`` peak groups each, one
    run: a target's first peak group is a true peak (5 sub-scores ~ N(2.5, 1)), every other peak
    group a false one (~ N(0, 1)). 1,400 rows with the defaults: mokapot's defaults need it (each
    of its 3 cross-validation folds must hold >= 100 targets above every decoy, since its q-value
    is (decoys + 1) / targets at eval_fdr 1 %; with 100 target precursors it aborts with "No PSMs
    found below the 'eval_fdr'")."""
    rng = np.random.default_rng(seed)
    rows = []
    for decoy in (False, True):
        for p in range(n_precursors):
            for k in range(per_group):
                true_peak = not decoy and k == 0
                rows.append(
                    {
                        "group_id": f"{'DECOY_' if decoy else ''}{p}_run0",
                        "precursor_id": f"{'DECOY_' if decoy else ''}{p}",
                        "pair_id": str(p),
                        "run": "run0",
                        "decoy": decoy,
                        "true_peak": true_peak,
                        **dict(
                            zip(SCORES, rng.normal(2.5 if true_peak else 0.0, 1.0, 5), strict=True)
                        ),
                    }
                )
    frame = pd.DataFrame(rows)
    frame.insert(0, "feature_id", [f"f{i:05d}" for i in range(len(frame))])
    return frame


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half."""
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def best_per_group(frame: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    table = frame[["group_id", "decoy"]].assign(score=scores)
    return table.sort_values("score", ascending=False).drop_duplicates("group_id")


@pytest.fixture(scope="session")
def peer_envs() -> None:
    """Build the peer environments that are missing (``make peers``' script; idempotent)."""
    missing = []
    for env in sorted(set(peers.PEER_ENVS.values())):
        try:
            peer_python(env)
        except PeerUnavailableError:
            missing.append(env)
    if missing:
        proc = subprocess.run(
            ["bash", str(REPO / "envs" / "setup.sh"), *missing],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert proc.returncode == 0, (
            f"envs/setup.sh {missing} failed:\n{proc.stdout}\n{proc.stderr}"
        )
    for env in set(peers.PEER_ENVS.values()):
        assert peer_python(env).exists()


# --- input layouts (no peer environment needed) -------------------------------------------------


def test_pyprophet_input_layout():
    frame = synthetic(3, 2).sample(frac=1, random_state=1)  # rows out of group order
    table = pyprophet_input(frame, SCORES)
    assert list(table.columns) == ["row_id", "group_id", "run_id", "decoy", *SCORES]
    # each group's rows contiguous (PyProphet refuses the file otherwise), feature_id order inside
    blocks = table["group_id"].ne(table["group_id"].shift()).cumsum()
    assert table.groupby("group_id")[blocks.name].nunique().eq(1).all()
    assert table["decoy"].isin([0, 1]).all() and table["decoy"].dtype.kind == "i"
    assert (table["run_id"] == 0).all()
    # row_id is the frame's row position and carries its values
    pos = table["row_id"].to_numpy()
    np.testing.assert_array_equal(table["var_c"].to_numpy(), frame["var_c"].to_numpy()[pos])
    np.testing.assert_array_equal(table["decoy"].to_numpy(), frame["decoy"].to_numpy()[pos])
    assert table["group_id"].tolist() == frame["group_id"].to_numpy()[pos].tolist()
    assert sorted(pos.tolist()) == list(range(len(frame)))


def test_pyprophet_input_names_and_runs():
    frame = synthetic(2, 2).rename(columns={"main_var_a": "a", "var_b": "b"})
    frame.loc[frame.index[::2], "run"] = "run1"  # same group_id in two runs
    table = pyprophet_input(frame, ["a", "b", "var_c"])
    assert list(table.columns) == [
        "row_id",
        "group_id",
        "run_id",
        "decoy",
        "main_var_a",
        "var_b",
        "var_c",
    ]
    assert set(table["run_id"]) == {0, 1}
    assert table["group_id"].str.startswith(("run0::", "run1::")).all()
    with pytest.raises(ValueError, match="exactly one main_var_"):
        peers.pyprophet_score_names(["main_var_x", "main_var_y"])


def test_mokapot_input_layout():
    frame = synthetic(3, 2).sample(frac=1, random_state=2)
    table = mokapot_input(frame, SCORES)
    assert list(table.columns) == ["row_id", "run", "group_id", "peptide", "target", *SCORES]
    pos = table["row_id"].to_numpy()
    np.testing.assert_array_equal(table["target"].to_numpy(), (~frame["decoy"]).to_numpy()[pos])
    assert table["peptide"].tolist() == frame["pair_id"].to_numpy()[pos].tolist()
    assert table["group_id"].tolist() == frame["group_id"].to_numpy()[pos].tolist()
    np.testing.assert_array_equal(table["var_e"].to_numpy(), frame["var_e"].to_numpy()[pos])


def test_inputs_reject_bad_frames():
    frame = synthetic(2, 2)
    with pytest.raises(ValueError, match="lacks columns"):
        pyprophet_input(frame, ["var_zz"])
    with pytest.raises(ValueError, match="both targets and decoys"):
        mokapot_input(frame[~frame["decoy"]], SCORES)
    bad = frame.copy()
    bad.loc[0, "var_b"] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        pyprophet_input(bad, SCORES)
    with pytest.raises(ValueError, match="unknown peer"):
        run_peer("percolator", frame, SCORES, 0, "unused")


# --- missing or failing peer environments -------------------------------------------------------


def test_missing_env_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPMS_PEERS_DIR", str(tmp_path / "nowhere"))
    for name in PEERS:
        with pytest.raises(PeerUnavailableError, match="make peers") as err:
            peer_python(name)
        assert "envs/setup.sh" in str(err.value) and name in str(err.value)
    with pytest.raises(PeerUnavailableError, match="mokapot"):
        run_peer("mokapot", synthetic(2, 2), SCORES, 0, tmp_path / "work")
    versions = peers.peer_versions()
    assert versions == {"pyprophet": "not built", "mokapot": "not built"}


def test_half_built_env_is_unavailable(monkeypatch, tmp_path):
    python = tmp_path / "pyprophet" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    monkeypatch.setenv("DEEPMS_PEERS_DIR", str(tmp_path))
    with pytest.raises(PeerUnavailableError, match="not fully built"):
        peer_python("pyprophet_lda")


def test_failing_peer_names_command_and_output(monkeypatch, tmp_path):
    venv = tmp_path / "pyprophet"
    python = venv / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho 'Traceback: something broke in the peer' >&2\nexit 3\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    (venv / MARKER).write_text("x\n")
    monkeypatch.setenv("DEEPMS_PEERS_DIR", str(tmp_path))
    with pytest.raises(PeerError) as err:
        run_peer("pyprophet_xgboost", synthetic(2, 2), SCORES, 0, tmp_path / "work")
    text = str(err.value)
    assert "'pyprophet_xgboost' failed (exit 3)" in text
    assert "--classifier XGBoost" in text and "score --in" in text
    assert "something broke in the peer" in text


def test_timeout_is_reported(monkeypatch, tmp_path):
    venv = tmp_path / "mokapot"
    python = venv / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho starting\nexec sleep 30\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    (venv / MARKER).write_text("x\n")
    monkeypatch.setenv("DEEPMS_PEERS_DIR", str(tmp_path))
    with pytest.raises(PeerError, match=r"'mokapot' timed out after 1 s(.|\n)*starting"):
        run_peer("mokapot", synthetic(2, 2), SCORES, 0, tmp_path / "work", timeout=1)


# --- the real peers -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", PEERS)
def test_peer_separates_and_follows_rows(name, peer_envs, tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPMS_PEERS_DIR", raising=False)
    frame = synthetic()
    assert len(frame) == 1400
    result = run_peer_detailed(name, frame, SCORES, 7, tmp_path / "a")
    scores = result.scores
    assert scores.shape == (len(frame),) and np.isfinite(scores).all()
    # true peaks against decoy peak groups, and the best peak group of target vs decoy precursors
    assert auc(scores[frame["true_peak"]], scores[frame["decoy"]]) > 0.9
    best = best_per_group(frame, scores)
    assert auc(best.loc[~best["decoy"], "score"], best.loc[best["decoy"], "score"]) > 0.9
    # the peer's own q-values: one per precursor (on its best peak group); most targets pass 5 %
    q = result.q_values
    has_q = ~np.isnan(q)
    assert has_q.sum() == frame["group_id"].nunique()
    assert ((q[has_q] >= 0) & (q[has_q] <= 1)).all()
    assert ((q[has_q] <= 0.05) & ~frame["decoy"].to_numpy()[has_q]).sum() > 250
    # shuffled rows: the scores follow them (same seed, same peer input after its sorting)
    perm = np.random.default_rng(3).permutation(len(frame))
    shuffled = frame.iloc[perm].reset_index(drop=True)
    again = run_peer(name, shuffled, SCORES, 7, tmp_path / "b")
    np.testing.assert_allclose(again, scores[perm], rtol=1e-6, atol=1e-9)


def test_peer_versions(peer_envs, monkeypatch):
    monkeypatch.delenv("DEEPMS_PEERS_DIR", raising=False)
    versions = peers.peer_versions()
    assert versions["pyprophet"].startswith("3.")
    assert versions["mokapot"] == "0.10.0"
    assert versions["mokapot/numpy"].startswith("1.")
    assert os.path.basename(str(peer_python("mokapot"))) == "python"
