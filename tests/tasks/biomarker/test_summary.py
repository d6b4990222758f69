"""The biomarker cv summary on hand-made out-of-fold tables with known answers: the rank AUROC,
the bootstrap interval and paired test, the per-site table, the panel's selection and the plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from deepms.tasks.biomarker.oof import batch_columns, fold_columns
from deepms.tasks.biomarker.summary import (
    auroc_rows,
    bootstrap_auroc,
    panel_selection,
    site_table,
    summarize_folds,
)


def oof_table(n: int = 80, repeats: int = 1, seed: int = 0) -> pd.DataFrame:
    """Half positive; p_AD ranks perfectly, p_logreg_l2 is noise, p_omiclearn copies p_AD."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 2
    rows = []
    for repeat in range(repeats):
        fold = rng.permutation(np.arange(n) % 2) + 2 * repeat
        perfect = 0.5 * label + 0.4 * rng.random(n)
        rows.append(
            pd.DataFrame(
                {
                    "fold": fold,
                    "id": [f"s{i}" for i in range(n)],
                    "label": label.astype(float),
                    "p_AD": perfect,
                    "p_omiclearn": perfect,
                    "p_logreg_l2": rng.random(n),
                    "repeat": repeat,
                    "panel": [json.dumps(["A", "B"] if f % 2 else ["B", "C"]) for f in fold],
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_auroc_rows_is_sklearns_auroc_with_ties_and_nan_for_one_class() -> None:
    labels = np.array([0, 1, 1, 0, 1, 0])
    scores = np.array([[0.1, 0.5, 0.5, 0.5, 0.9, 0.2], [0.9, 0.1, 0.2, 0.8, 0.3, 0.7]])
    expected = [roc_auc_score(labels, s) for s in scores]
    assert auroc_rows(np.tile(labels, (2, 1)), scores) == pytest.approx(expected)
    assert expected[1] == 0.0 and expected[0] == pytest.approx(8 / 9)  # ties count 1/2
    assert np.isnan(auroc_rows(np.zeros(4), np.arange(4.0))[0])


def test_identical_predictions_differ_by_zero_with_p_one() -> None:
    metrics, _ = summarize_folds(oof_table().drop(columns="p_logreg_l2"), pd.DataFrame(), 500)
    assert metrics["oof_auroc"] == 1.0 == metrics["oof_auroc_omiclearn"]
    assert metrics["oof_auroc_ci95_low"] == metrics["oof_auroc_ci95_high"] == 1.0
    assert metrics["oof_auroc_diff_omiclearn"] == 0.0
    assert metrics["oof_auroc_diff_omiclearn_ci95_low"] == 0.0
    assert metrics["oof_auroc_diff_omiclearn_ci95_high"] == 0.0
    assert metrics["oof_auroc_diff_p"] == 1.0


def test_a_perfect_model_beats_a_random_one_by_about_a_half() -> None:
    oof = oof_table().drop(columns="p_omiclearn")
    metrics, _ = summarize_folds(oof, pd.DataFrame(), 1000)
    random = roc_auc_score(oof["label"], oof["p_logreg_l2"])
    assert metrics["oof_auroc_logreg_l2"] == pytest.approx(random)
    assert metrics["oof_auroc_diff_logreg_l2"] == pytest.approx(1 - random)
    assert 0.35 < metrics["oof_auroc_diff_logreg_l2"] < 0.65
    low, high = (
        metrics["oof_auroc_diff_logreg_l2_ci95_low"],
        metrics["oof_auroc_diff_logreg_l2_ci95_high"],
    )
    assert 0.2 < low < 1 - random < high < 0.8
    assert metrics["oof_auroc_diff_p"] < 0.05 and metrics["oof_auroc_diff_p"] == pytest.approx(
        2 / 1001
    )  # no replicate at or below 0: the smallest p 1000 replicates can give


def test_repeats_are_averaged_and_resampled_together() -> None:
    oof = oof_table(n=40, repeats=2, seed=3)
    per_repeat = [roc_auc_score(r["label"], r["p_logreg_l2"]) for _, r in oof.groupby("repeat")]
    ((point, replicates),) = bootstrap_auroc(oof, ["p_logreg_l2"], n_boot=400).values()
    assert point == pytest.approx(np.mean(per_repeat))
    assert replicates.shape == (400,) and np.percentile(replicates, 2.5) < point
    assert point < np.percentile(replicates, 97.5)
    one = bootstrap_auroc(oof[oof["repeat"] == 0], ["p_logreg_l2"], n_boot=400)
    assert one["p_logreg_l2"][0] == pytest.approx(per_repeat[0])


def test_site_table_counts_and_scores_each_site_and_names_a_one_class_site() -> None:
    oof = pd.DataFrame(
        {
            "fold": [0, 0, 0, 0, 1, 1, 1],
            "id": list("abcdefg"),
            "label": [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            "p_AD": [0.9, 0.2, 0.3, 0.4, 0.1, 0.6, 0.2],
            "p_svm": [0.1, 0.2, 0.9, 0.4, 0.1, 0.6, 0.2],
            "site": ["Berlin"] * 4 + ["Kiel"] * 3,
        }
    )
    table = site_table(oof, ["p_AD", "p_svm"]).set_index("site")
    assert table.loc["Berlin", ["n", "n_positive"]].tolist() == [4, 2]
    assert table.loc["Berlin", "auroc"] == 0.75  # 0.9 > both negatives (0.2, 0.4), 0.3 > one
    assert table.loc["Berlin", "auroc_svm"] == 0.5  # 0.9 > both, 0.1 > neither
    assert table.loc["Kiel", ["n", "n_positive"]].tolist() == [3, 0]
    assert table.loc["Kiel", "auroc"] == "one class only" == table.loc["Kiel", "auroc_svm"]


def test_panel_selection_counts_folds_and_mean_rank() -> None:
    table = panel_selection(oof_table(n=8, repeats=2))  # folds 0, 2: [B, C]; 1, 3: [A, B]
    assert table["feature"].tolist() == ["B", "A", "C"]
    assert table["n_folds"].tolist() == [4, 2, 2] and table["fraction"].tolist() == [1, 0.5, 0.5]
    assert table["mean_rank"].tolist() == [1.5, 1.0, 2.0]


def test_summary_plots_are_figures_and_tables_are_frames() -> None:
    oof = oof_table(n=40, repeats=2).assign(site=lambda f: np.where(f.index % 3, "X", "Y"))
    metrics, artifacts = summarize_folds(oof, pd.DataFrame({"fold": range(4)}), 200)
    assert set(artifacts) == {
        "roc",
        "calibration",
        "panel_selection",
        "site_performance",
        "panel_frequency",
    }
    for name in ("roc", "calibration", "panel_selection"):
        assert isinstance(artifacts[name], Figure)
    roc = artifacts["roc"].axes[0]
    assert [t.get_text().split(":")[0] for t in roc.get_legend().get_texts()] == [
        "DBN",
        "omiclearn",
    ]
    assert len(roc.collections) == 2  # one +-1 sd band per model
    assert isinstance(artifacts["site_performance"], pd.DataFrame)
    assert list(artifacts["site_performance"]["site"]) == ["X", "Y"]
    assert all(np.isfinite(list(metrics.values())))


def test_fold_columns_carry_baselines_site_repeat_and_panel() -> None:
    from types import SimpleNamespace

    cv = SimpleNamespace(scheme="repeated_stratified_kfold", fold=7, n_splits=5)
    datamodule = SimpleNamespace(group_values={"site": {"a": "Berlin", "b": "Kiel"}}, cv=cv)
    extras = fold_columns(["a", "b"], {"svm": np.array([0.25, 0.75])}, ["P1;P2", "Q"], datamodule)
    assert batch_columns(extras, ["b", "a"]) == {
        "p_svm": [0.75, 0.25],
        "site": ["Kiel", "Berlin"],
        "repeat": [1, 1],
        "panel": ['["P1;P2", "Q"]'] * 2,
    }
    unknown = batch_columns(extras, ["z"])  # a sample this fold did not test: empty cells
    assert unknown == {"p_svm": [None], "site": [None], "repeat": [None], "panel": [None]}
    assert batch_columns({}, ["a"]) == {}
