"""Cross-fitting: network k never learns from fold k, and fold k is scored by network k alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from deepms.tasks.dia.data import crossfit_folds, standardise
from deepms.tasks.dia.model import DiaModel, group_labels, oof_scores
from tests.tasks.dia.synthetic import SCORES, peak_groups

K = 3


def attached(seed: int = 0, members: int = 1) -> tuple[DiaModel, pd.DataFrame]:
    frame = peak_groups(90, seed=seed)
    frame["fold"] = crossfit_folds(frame["pair_id"], K, seed=seed)
    frame["entrapment"] = False
    mean = frame[list(SCORES)].mean().tolist()
    std = frame[list(SCORES)].std(ddof=0).tolist()
    torch.manual_seed(seed)
    model = DiaModel(
        list(SCORES), mean, std, n_folds=K, hidden_sizes=[8], dropout=0.0, members=members
    )
    model.attach(frame, torch.from_numpy(standardise(frame, SCORES, mean, std)))
    return model, frame


@pytest.mark.parametrize("iteration", [0, 1])
def test_network_k_has_no_label_on_fold_k(iteration: int) -> None:
    model, frame = attached()
    model.relabel(iteration)
    labels = model._labels.numpy()
    for k in range(K):
        in_fold = frame["fold"].to_numpy() == k
        assert (labels[in_fold, k] == -1).all()
        assert (labels[~in_fold, k] == 1).sum() > 0 and (labels[~in_fold, k] == 0).sum() > 0
        positives = frame[(labels[:, k] == 1)]
        assert not positives["decoy"].any()
        assert positives["group_id"].is_unique  # one (the best) peak group per group


def test_relabel_uses_only_the_networks_own_scores() -> None:
    model, _ = attached()
    model.relabel(1)
    before = model._labels.clone()
    with torch.no_grad():  # scramble networks 1 and 2: network 0's labels must not move
        for net in model.nets[1:]:
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 5)
    model.relabel(1)
    assert torch.equal(model._labels[:, 0], before[:, 0])
    assert not torch.equal(model._labels[:, 1:], before[:, 1:])


@pytest.mark.parametrize("members", [1, 2])
def test_masked_loss_gives_network_k_no_gradient_from_fold_k(members: int) -> None:
    model, frame = attached(members=members)
    model.relabel(0)
    rows = np.flatnonzero(frame["fold"].to_numpy() == 0)
    batch = {"x": model._meta["x"][rows], "index": torch.as_tensor(rows)}
    model.zero_grad()
    model.training_step(batch, 0).backward()
    for i, net in enumerate(model.nets):
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        norm = sum(float(g.abs().sum()) for g in grads)
        assert (norm == 0) == (model.fold_of_net(i) == 0), f"network {i}: gradient {norm}"


@pytest.mark.parametrize("members", [1, 2])
def test_each_row_is_scored_by_its_folds_network(members: int) -> None:
    model, frame = attached(members=members)
    with torch.no_grad():  # the networks of fold k output the constant k
        for i, net in enumerate(model.nets):
            for p in net.parameters():
                p.zero_()
            net.linear.bias.fill_(float(model.fold_of_net(i)))
    logits = model.all_logits(model._meta["x"])
    assert np.array_equal(oof_scores(logits, frame["fold"].to_numpy()), frame["fold"].to_numpy())


def test_group_labels_by_hand() -> None:
    # groups a (target: rows 0, 1), b (target: 2), c (decoy: 3, 4); scores high to low 0 > 2 > 3
    groups = np.array([0, 0, 1, 2, 2])
    decoy = np.array([False, False, False, True, True])
    scores = np.array([5.0, 1.0, 4.0, 3.0, 0.0])
    labels = group_labels(scores, decoy, groups, np.arange(5), fdr=0.0, negatives="best")
    # best per group: 0 (a), 2 (b), 3 (c); TDC q of a, b = 0: only 2 targets, so the 5-best
    # fallback keeps both; the decoy's best is the negative, the rest ignored
    assert labels.tolist() == [1, -1, 1, 0, -1]
    labels = group_labels(scores, decoy, groups, np.arange(5), fdr=0.0, negatives="all")
    assert labels.tolist() == [1, -1, 1, 0, 0]
