"""The DBN (RBM algebra, CD pretraining), the BiomarkerModel on a generated cohort, the baselines
and the protein ranking, each against values worked out by hand or planted in the data."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch

from deepms.tasks.biomarker.baselines import (
    BASELINES,
    binary_scores,
    evaluate_baselines,
    fit_predict,
)
from deepms.tasks.biomarker.dbn import RBM, DeepBeliefNetwork, weight_ranking
from deepms.tasks.biomarker.model import (
    BiomarkerModel,
    layer_sizes,
    permutation_importance,
    rank_auroc,
)
from deepms.training.datamodule import TaskDataModule


def _rbm(gaussian: bool) -> RBM:
    rbm = RBM(2, 1, gaussian_visible=gaussian)
    with torch.no_grad():
        rbm.weight.copy_(torch.tensor([[1.0], [-2.0]]))
        rbm.visible_bias.copy_(torch.tensor([0.5, 0.0]))
        rbm.hidden_bias.copy_(torch.tensor([1.0]))
    return rbm


def test_bernoulli_rbm_free_energy_and_reconstruction_by_hand() -> None:
    rbm, v = _rbm(gaussian=False), torch.tensor([[1.0, 1.0]])
    # F = -v.b - softplus(c + vW) = -0.5 - log(1 + e^(1 + 1 - 2)) = -0.5 - log 2
    assert rbm.free_energy(v).item() == pytest.approx(-0.5 - math.log(2), abs=1e-6)
    p_h = rbm.hidden_probability(v)
    assert p_h.item() == pytest.approx(0.5)
    # E[v | h = 0.5] = sigmoid(b + 0.5 W^T) = sigmoid([1.0, -1.0])
    expected = torch.sigmoid(torch.tensor([[1.0, -1.0]]))
    assert torch.allclose(rbm.visible_mean(p_h), expected)
    error = ((v - expected) ** 2).mean().item()
    assert rbm.reconstruction_error(v).item() == pytest.approx(error, abs=1e-6)


def test_gaussian_rbm_free_energy_has_the_quadratic_visible_term() -> None:
    rbm, v = _rbm(gaussian=True), torch.tensor([[2.0, 0.0]])
    # 0.5 ||v - b||^2 - softplus(1 + 2) = 0.5 * 2.25 - log(1 + e^3)
    assert rbm.free_energy(v).item() == pytest.approx(1.125 - math.log1p(math.e**3), abs=1e-5)
    assert torch.allclose(rbm.visible_mean(torch.tensor([[1.0]])), torch.tensor([[1.5, -2.0]]))


def _toy_inputs(n: int = 200, seed: int = 0) -> torch.Tensor:
    """Standardised inputs on two latent factors (so a hidden layer can explain them)."""
    g = torch.Generator().manual_seed(seed)
    factors = torch.randn(n, 2, generator=g)
    x = factors @ torch.randn(2, 12, generator=g) + 0.1 * torch.randn(n, 12, generator=g)
    return (x - x.mean(0)) / x.std(0)


def test_cd_pretraining_lowers_every_layers_reconstruction_error() -> None:
    torch.manual_seed(0)
    x = _toy_inputs()
    dbn = DeepBeliefNetwork(12, [8, 4])
    before = dbn.rbms[0].reconstruction_error(x).item()
    history = dbn.pretrain(lambda: x.split(20), epochs=30, cd_steps=1, lr=0.01, seed=0)
    assert len(history) == 2 and all(len(h) == 30 for h in history)
    assert dbn.rbms[0].reconstruction_error(x).item() < 0.6 * before
    assert history[0][-1] < 0.6 * history[0][0] and history[1][-1] < history[1][0]
    assert dbn(x).shape == (200, 4) and dbn.out_features == 4


def test_weight_ranking_sums_absolute_weight_products_over_paths() -> None:
    dbn = DeepBeliefNetwork(2, [2])
    with torch.no_grad():
        dbn.rbms[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 3.0]]))
    # |W1| |w| with w = (-1, 0.5): input 0: 1*1 + 2*0.5 = 2; input 1: 0*1 + 3*0.5 = 1.5
    scores = weight_ranking(dbn, torch.tensor([[-1.0, 0.5]]))
    assert torch.allclose(scores, torch.tensor([2.0, 1.5]))


def test_binary_scores_and_rank_auroc_on_hand_made_predictions() -> None:
    p, y = np.array([0.9, 0.8, 0.3, 0.6, 0.1]), np.array([1, 1, 0, 0, 0])
    scores = binary_scores(p, y)
    assert scores["auroc"] == pytest.approx(1.0) and scores["auprc"] == pytest.approx(1.0)
    # at 0.5: TP 2, FP 1 (0.6), TN 2: sensitivity 1, specificity 2/3
    assert scores["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["mcc"] == pytest.approx(
        4 / math.sqrt(3 * 2 * 3 * 2), abs=1e-6
    )  # (TP TN - FP FN) / ...
    brier = np.mean((p - y) ** 2)
    assert scores["brier"] == pytest.approx(brier, abs=1e-6)
    one_class = binary_scores(np.array([0.2, 0.6]), np.array([0, 0]))
    assert math.isnan(one_class["auroc"]) and math.isnan(one_class["balanced_accuracy"])
    assert one_class["brier"] == pytest.approx((0.04 + 0.36) / 2)
    # scores [0.2, 0.9, 0.4] against labels [0, 1, 1]: 2 of 2 pairs ordered -> 1; reversed -> 0
    s = torch.tensor([[0.2, 0.9, 0.4], [0.9, 0.1, 0.2]])
    assert rank_auroc(s, torch.tensor([0, 1, 1])).tolist() == pytest.approx([1.0, 0.0])


# --- the model on a generated cohort ----------------------------------------------------------


def cohort(n: int = 120, n_features: int = 10, seed: int = 0):
    """Standardised features; the label is feature 0's sign (plus a little of feature 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    return x, y, [f"S{i:03d}" for i in range(n)]


class CohortDataset(torch.utils.data.Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray, ids: list[str]) -> None:
        self.x, self.y, self.ids = x, y, ids
        self.lengths = [1] * len(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": torch.from_numpy(self.x[i]), "label": float(self.y[i]), "id": self.ids[i]}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "x": torch.stack([i["x"] for i in items]),
        "label": torch.tensor([i["label"] for i in items], dtype=torch.float32),
        "ids": [i["id"] for i in items],
    }


class CohortDataModule(TaskDataModule):
    """B1's contract (datasets, ``matrix``, ``model_kwargs``) over a generated cohort."""

    split_kind = "sample_stratified"
    collate_fn = staticmethod(collate)

    def __init__(self, n: int = 120, **common: Any) -> None:
        super().__init__(batch_size=16, **common)
        self.n = n

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        lineage = self.start_lineage("cohort")
        x, y, ids = cohort(self.n)
        parts = self.assign_parts(ids, strata=y)
        self.parts = {}
        for part in ("train", "val", "test"):
            rows = np.flatnonzero(parts == part)
            self.parts[part] = (x[rows], y[rows], [ids[r] for r in rows])
            self.datasets[part] = CohortDataset(*self.parts[part])
            lineage.n_samples[part] = len(rows)

    def matrix(self, part: str):
        return self.parts[part]

    def model_kwargs(self) -> dict[str, Any]:
        return {
            "n_features": 10,
            "feature_names": [f"P{j}" for j in range(10)],
            "preprocessing": {},
            "classes": ["control", "AD"],
            "label": "AD",
        }


def _fit(**model: Any) -> tuple[BiomarkerModel, pl.Trainer, CohortDataModule]:
    pl.seed_everything(0)
    datamodule = CohortDataModule(split={"fractions": [0.6, 0.2, 0.2], "seed": 0})
    datamodule.setup()
    settings = {"hidden_sizes": [16, 8], "pretrain_epochs": 5, "dropout": 0.0, "panel_size": 3}
    net = BiomarkerModel(**datamodule.model_kwargs(), **{**settings, **model},
                         optimizer={"lr": 0.01})  # fmt: skip
    trainer = pl.Trainer(max_epochs=30, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(net, datamodule=datamodule)
    return net, trainer, datamodule


def test_model_pretrains_once_learns_the_planted_label_and_logs_dbn_and_baselines() -> None:
    net, trainer, datamodule = _fit(baselines=["logreg_l2", "knn"])
    assert bool(net.pretrained)
    trainer.test(net, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert metrics["test_auroc"] > 0.9 and metrics["test_logreg_l2_auroc"] > 0.9
    for name in ("", "logreg_l2_", "knn_", "panel_"):
        for metric in ("auroc", "auprc", "balanced_accuracy", "mcc", "brier"):
            assert math.isfinite(metrics[f"test_{name}{metric}"]), name + metric
    assert "test_svm_auroc" not in metrics
    x, y, _ = datamodule.matrix("test")
    ranking = net.ranking(torch.from_numpy(x), torch.from_numpy(y))
    assert ranking["feature"].iloc[0] == "P0" and ranking["rank"].tolist() == list(range(1, 11))
    top_permutation = ranking.sort_values("permutation_importance")["feature"].iloc[-1]
    assert top_permutation == "P0"
    out = net.predict_step(collate([datamodule.datasets["test"][i] for i in range(3)]), 0)
    assert out["id"] == list(datamodule.parts["test"][2][:3])
    # the fold's baselines and panel ride along for cv's out-of-fold table (no site, no cv here)
    assert set(out) == {"id", "label", "p_AD", "p_logreg_l2", "p_knn", "panel"}
    (x_train, y_train, _), x_test = datamodule.matrix("train"), datamodule.matrix("test")[0]
    logreg = fit_predict("logreg_l2", x_train, y_train, x_test[:3])
    assert out["p_logreg_l2"] == pytest.approx(logreg.tolist(), abs=1e-6)
    assert set(np.round(np.array(out["p_knn"]) * 5, 6)) <= {0, 1, 2, 3, 4, 5}  # 5 neighbours
    assert out["panel"] == [json.dumps(ranking["feature"].head(3).tolist())] * 3


def test_permutation_importance_matches_shuffling_one_column_by_hand() -> None:
    net, _, datamodule = _fit(pretrain_epochs=0, baselines=[])
    x, y, _ = datamodule.matrix("test")
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    fast = permutation_importance(net, x, y, 1, torch.Generator().manual_seed(3))
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    net.eval()
    with torch.no_grad():
        base = rank_auroc(net(x)[None], y)[0]
        for j in (0, 4):
            shuffled = x.clone()
            shuffled[:, j] = x[perm, j]
            by_hand = base - rank_auroc(net(shuffled)[None], y)[0]
            assert fast[j] == pytest.approx(float(by_hand), abs=1e-5)


def test_every_baseline_fits_fast_and_separates_a_planted_label() -> None:
    x, y, _ = cohort(160)
    scores = evaluate_baselines((x[:120], y[:120]), (x[120:], y[120:]), list(BASELINES))
    for name in BASELINES:
        assert scores[f"{name}_auroc"] > 0.8, name
    with pytest.raises(ValueError, match="unknown baseline 'lightgbm'"):
        evaluate_baselines((x, y), (x, y), ["lightgbm"])


def test_model_refuses_unknown_baselines_and_mismatched_names() -> None:
    kwargs = CohortDataModule().model_kwargs()
    sizes = [r.hidden_bias.numel() for r in BiomarkerModel(**kwargs, hidden_sizes="32-8").dbn.rbms]
    assert sizes == [32, 8] and layer_sizes("[64, 16]") == [64, 16] == layer_sizes([64, 16])
    with pytest.raises(ValueError, match=r"unknown baselines \['xgb'\]"):
        BiomarkerModel(**kwargs, baselines=["xgb"])
    with pytest.raises(ValueError, match="9 feature names for 10 features"):
        BiomarkerModel(**{**kwargs, "feature_names": kwargs["feature_names"][:9]})


def test_panel_csv_is_logged_with_the_top_ranked_features(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    net, _, datamodule = _fit(baselines=[])
    logger = MLFlowLogger(experiment_name="biomarker", tracking_uri=uri)
    tester = pl.Trainer(logger=logger, enable_progress_bar=False, enable_model_summary=False)
    tester.test(net, datamodule=datamodule, verbose=False)
    path = MlflowClient(uri).download_artifacts(logger.run_id, "panel.csv", str(tmp_path))
    panel = pd.read_csv(path)
    assert list(panel.columns) == [
        "rank", "feature", "weight_score", "permutation_importance", "index"
    ]  # fmt: skip
    assert len(panel) == 3 and panel["feature"].iloc[0] == "P0"
    assert panel["weight_score"].is_monotonic_decreasing
