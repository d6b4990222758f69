"""``deepms predict`` with a dia ensemble: ``.osw`` output is PyProphet's SCORE_MS2 in a copy of the
input (read, score, write back, reread), ``.tsv`` output as before, and the refusals.

The model is a :class:`~deepms.tasks.dia.model.DiaModel` built directly (seeded, untrained): what is
checked is the plumbing -- same feature ids, same scores, the source never touched -- not the
quality of the scores, which the run tests judge.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deepms.io.openswath import PeakGroupError, read_osw_scores, read_peak_groups
from deepms.tasks.dia.model import DiaModel
from deepms.tasks.dia.predict import DiaPredictor, MissingScoreError, score_ms2_table
from tests.io.test_openswath import _osw

PREDICTOR = "deepms.tasks.dia.predict.DiaPredictor"
TINY_COLUMNS = ("var_bseries_score", "var_library_corr")
#: the sub-scores PyProphet's test table and the 3-run S. pyogenes OSW share (a model trained on
#: the TSV's 17 cannot score the OSW: it lacks main_var_xx_swath_prelim_score and
#: var_elution_model_fit_score)
SHARED_COLUMNS = (
    "var_bseries_score",
    "var_intensity_score",
    "var_isotope_correlation_score",
    "var_isotope_overlap_score",
    "var_library_corr",
    "var_library_rmsd",
    "var_log_sn_score",
    "var_massdev_score",
    "var_massdev_score_weighted",
    "var_norm_rt_score",
    "var_xcorr_coelution",
    "var_xcorr_coelution_weighted",
    "var_xcorr_shape",
    "var_xcorr_shape_weighted",
    "var_yseries_score",
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_model(columns=TINY_COLUMNS, seed: int = 0) -> DiaModel:
    torch.manual_seed(seed)
    n = len(columns)
    return DiaModel(list(columns), [0.5] * n, [1.0] * n, n_folds=2, hidden_sizes=(4,))


def save_checkpoint(model: DiaModel, path: Path) -> Path:
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def _check_round_trip(predictor: DiaPredictor, source: Path, out: Path) -> pd.DataFrame:
    """Score ``source`` into ``out``; reread; the same rows and scores as ``predict``. Returns the
    predicted table."""
    before = _sha(source)
    counts = predictor.predict_file(source, out, progress=False)
    assert _sha(source) == before  # the user's file is never modified
    expected = predictor.predict(read_peak_groups(source))
    back = read_osw_scores(out)
    assert counts["rows"] == counts["inputs"] == len(expected) == len(back)
    assert back["feature_id"].tolist() == expected["feature_id"].astype(str).tolist()
    np.testing.assert_allclose(back["score"], expected["score"], rtol=1e-12)
    assert back["rank"].tolist() == expected["rank"].tolist()
    np.testing.assert_allclose(back["qvalue"], expected["q_peak_group"], rtol=1e-12)
    np.testing.assert_allclose(back["pep"], expected["pep_peak_group"], rtol=1e-12)
    assert back["pvalue"].between(0, 1, inclusive="right").all()
    assert back["qvalue"].between(0, 1).all()
    # the copy is still a whole OpenSWATH file: the same peak groups read back
    pd.testing.assert_frame_equal(read_peak_groups(out), read_peak_groups(source))
    return expected


def test_osw_output_is_score_ms2_in_a_copy(tmp_path: Path) -> None:
    source = _osw(tmp_path)
    expected = _check_round_trip(DiaPredictor(tiny_model()), source, tmp_path / "scored.osw")
    back = read_osw_scores(tmp_path / "scored.osw")
    assert sorted(back["feature_id"]) == ["1001", "1002", "1003", "1004"]
    assert read_osw_scores(source)["score"].tolist() == [9.0]  # its own old table, untouched
    # pvalue: the share of the best decoy peak groups scoring at least as high, floored at
    # 1 / #decoys: with this file's single decoy group every p-value is 1
    assert back["pvalue"].tolist() == [1.0] * 4 and expected["decoy"].sum() == 1
    assert (tmp_path / "scored.osw").stat().st_size > 0 and not list(tmp_path.glob("*.part*"))


def test_score_ms2_table_values_by_hand() -> None:
    table = pd.DataFrame(
        {
            "feature_id": ["1", "2", "3", "4"],
            "group_id": ["a", "a", "DECOY_a", "DECOY_b"],
            "decoy": [False, False, True, True],
            "score": [3.0, 0.5, 1.0, 2.0],
            "rank": [1, 2, 1, 1],
            "q_peak_group": [0.0, 1.0, 1.0, 1.0],
            "q_pi0_peak_group": [0.0, 0.5, 0.5, 0.5],
            "pep_peak_group": [0.1, 0.9, 1.0, 1.0],
        }
    )
    rows = score_ms2_table(table)
    # best decoy peak groups score 1 and 2: P(decoy >= s)
    assert rows["pvalue"].tolist() == [0.5, 1.0, 1.0, 0.5]
    assert rows["qvalue"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert score_ms2_table(table, "pi0")["qvalue"].tolist() == [0.0, 0.5, 0.5, 0.5]
    assert rows["rank"].tolist() == [1, 2, 1, 1] and rows["pep"].tolist()[0] == 0.1
    with pytest.raises(ValueError, match="qvalue='storey'"):
        score_ms2_table(table, "storey")


def test_tsv_output_unchanged_and_osw_refusals(tmp_path: Path) -> None:
    source = _osw(tmp_path)
    predictor = DiaPredictor(tiny_model())
    counts = predictor.predict_file(source, tmp_path / "scored.tsv", progress=False)
    scored = pd.read_csv(tmp_path / "scored.tsv", sep="\t", dtype={"feature_id": str})
    assert counts["rows"] == len(scored) == 4
    assert {"score", "rank", "q_precursor", "q_pi0_precursor", "pep_precursor"} <= set(scored)
    before = _sha(source)
    with pytest.raises(PeakGroupError, match="must differ from the input"):
        predictor.predict_file(source, source, progress=False)
    with pytest.raises(PeakGroupError, match="must differ from the input"):
        predictor.predict_file(source, tmp_path / "." / "tiny.osw", progress=False)
    assert _sha(source) == before
    with pytest.raises(PeakGroupError, match=r"not an \.osw; write a \.tsv"):
        predictor.predict_file(tmp_path / "scored.tsv", tmp_path / "x.osw", progress=False)
    assert not (tmp_path / "x.osw").exists()
    with pytest.raises(MissingScoreError, match="main_var_xx_swath_prelim_score"):
        DiaPredictor(tiny_model(("main_var_xx_swath_prelim_score", *TINY_COLUMNS))).predict_file(
            source, tmp_path / "y.osw", progress=False
        )
    assert not (tmp_path / "y.osw").exists()


def test_cli_osw_output_and_same_path_refused(tmp_path: Path, capsys) -> None:
    from deepms.cli import main

    source = _osw(tmp_path)
    ckpt = save_checkpoint(tiny_model(), tmp_path / "m.ckpt")
    args = ["predict", str(ckpt), "--predictor", PREDICTOR, "--input", str(source)]
    out = tmp_path / "scored.osw"
    assert main([*args, "--output", str(out), "--no-progress", "--osw-qvalue", "pi0"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert len(read_osw_scores(out)) == 4
    assert main([*args, "--output", str(source), "--no-progress"]) == 2
    assert "must differ from the input" in capsys.readouterr().err


def test_real_three_run_osw_scored_end_to_end(tmp_path: Path, mirror: Path) -> None:
    """The acceptance's 3-run S. pyogenes set: read, score, write back, reread."""
    source = mirror / "dia" / "dialignr_spyogenes_merged.osw"
    frame = read_peak_groups(source)
    columns = list(SHARED_COLUMNS)
    model = DiaModel(
        columns,
        frame[columns].mean().tolist(),
        frame[columns].std().clip(lower=1e-6).tolist(),
        n_folds=2,
        hidden_sizes=(4,),
    )
    expected = _check_round_trip(DiaPredictor(model), source, tmp_path / "merged_scored.osw")
    assert len(expected) == 2759 and expected["run"].nunique() == 3
    assert expected["decoy"].sum() == 62
    # one rank-1 row per peak group (precursor x run)
    back = read_osw_scores(tmp_path / "merged_scored.osw")
    assert (back["rank"] == 1).sum() == frame["group_id"].nunique()
