"""A cross-fitted ensemble of small MLPs that scores DIA peak groups, semi-supervised.

Why this shape (DIA-NN's neural scoring, PyProphet's and mokapot's semi-supervised loop):

* **K networks, one per cross-fitting fold**, trained in one Lightning fit through a masked
  loss: network k's labels are -1 (ignored) on every row of fold k, so it never learns from fold
  k; and fold k's rows are scored by network k alone (:func:`oof_scores`). A row's score thus
  never comes from a network that saw it, which is what keeps the decoys an honest null.
* **Iterations as epochs.** Every ``epochs_per_iteration`` epochs, at epoch start, each network
  is relabelled from its *own* scores of its *own* training rows (so no fold-k information reaches
  network k through another network): the best peak group of each ``group_id`` among targets with
  target-decoy q <= ``iteration_fdr`` is positive, decoys are negative (the best peak group of
  each decoy group, as PyProphet's top decoy peaks; ``negatives: all`` for every decoy peak group
  as mokapot), everything else is ignored. Iteration 0 ranks by one sub-score instead:
  ``initial_score: auto`` takes, per network, the sub-score and sign that give most targets at
  ``initial_fdr`` on its training rows (PyProphet's ``ss_main_score auto``; ``initial_fdr`` 0.15
  and ``iteration_fdr`` 0.05 are PyProphet's ``ss_initial_fdr``/``ss_iteration_fdr`` defaults).
  Networks keep their weights between iterations (warm start; PyProphet refits from scratch) --
  cheaper, and the labels still move.
* Pooling the folds: every network is trained with the same class-balanced BCE, so by default
  (``calibration: none``) the out-of-fold logits are pooled as they are. ``rows`` aligns each
  fold's median and IQR (label-free); ``decoys`` is mokapot's calibration on the fold's own decoys
  (:func:`~deepms.tasks.dia.scoring.calibrate_by_fold`) -- with 10 folds of ~40 decoy groups it
  read those decoys so closely that the entrapment FDP at 1 % rose to 2.5-3.6x the estimate.

Validation logs ``val_precursors_at_1pct`` on the out-of-fold scores (the checkpoint pick). Test
scores every row, then :func:`~deepms.tasks.dia.scoring.assess` gives q-values (TDC and pi0), PEP
and counts at three levels, the entrapment FDP when the datamodule planted entrapments, the same
for each peer in ``peers`` (``deepms.tasks.dia.peers.run_peer`` on the same table), figures, and
the scored table (every target, decoy and entrapment row) as ``dia/scored_peak_groups.tsv``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepms.metrics.fdr import best_per_group, tdc_qvalues
from deepms.tasks.dia.scoring import (
    THRESHOLDS,
    assess,
    calibrate_by_fold,
    figures,
    pct,
    standardise_by_fold,
)
from deepms.training.module import TaskModule

log = logging.getLogger(__name__)
NEGATIVES = ("best", "all")
CALIBRATIONS = ("none", "rows", "decoys")


class Scorer(nn.Module):
    """Sub-scores -> one logit: a linear term (PyProphet's LDA is linear, so the network starts
    from what a linear scorer can do) plus a small ReLU MLP for what it cannot."""

    def __init__(self, n_in: int, hidden: Sequence[int], dropout: float, linear: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for size in hidden:
            layers += [nn.Linear(width, int(size)), nn.ReLU(), nn.Dropout(dropout)]
            width = int(size)
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))
        self.linear = nn.Linear(n_in, 1) if linear else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(x)
        return out + self.linear(x) if self.linear is not None else out


def oof_scores(logits: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each row's logit from its own fold's network: ``logits[i, fold[i]]``."""
    return logits[np.arange(len(fold)), fold]


def group_labels(
    scores: np.ndarray,
    decoy: np.ndarray,
    groups: np.ndarray,
    rows: np.ndarray,
    fdr: float,
    negatives: str = "best",
) -> np.ndarray:
    """Labels of ``rows`` (1 positive, 0 negative, -1 ignored) from ``scores`` of those rows."""
    sub = pd.DataFrame({"g": groups[rows], "score": scores, "decoy": decoy[rows]})
    best = best_per_group(sub, "g")
    q = tdc_qvalues(best["score"], best["decoy"])
    labels = np.full(len(rows), -1.0, dtype=np.float32)
    target_best = best.index[(q <= fdr) & ~best["decoy"].to_numpy()]
    if len(target_best) < 5:  # too strict a start: the 5 best targets, to have positives at all
        target_best = best[~best["decoy"]].nlargest(5, "score").index
    decoy_rows = best if negatives == "best" else sub
    decoys = decoy_rows.index[decoy_rows["decoy"].to_numpy()]
    labels[np.asarray(decoys)] = 0.0
    labels[np.asarray(target_best)] = 1.0
    return labels


class DiaModel(TaskModule):
    """K MLPs over standardised sub-scores; the score of a peak group is its fold network's."""

    def __init__(
        self,
        score_columns: Sequence[str],
        scaler_mean: Sequence[float],
        scaler_std: Sequence[float],
        n_folds: int = 3,
        hidden_sizes: Sequence[int] = (32, 16),
        dropout: float = 0.1,
        members: int = 1,
        linear_term: bool = True,
        epochs_per_iteration: int = 3,
        initial_score: str = "auto",
        initial_fdr: float = 0.15,
        iteration_fdr: float = 0.05,
        negatives: str = "best",
        calibration: str = "none",
        calibration_fdr: float = 0.01,
        plus_one: bool = False,
        pi0_method: str = "bootstrap",
        peers: Sequence[str] = (),
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        if calibration not in CALIBRATIONS:
            raise ValueError(f"calibration={calibration!r}: use one of {CALIBRATIONS}")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives={negatives!r}: use one of {NEGATIVES}")
        if not len(score_columns) == len(scaler_mean) == len(scaler_std):
            raise ValueError("score_columns, scaler_mean and scaler_std differ in length")
        self.save_hyperparameters()
        self.n_folds, self.members = int(n_folds), max(int(members), 1)
        # network i belongs to fold i // members: ``members`` differently initialised networks
        # per fold, trained on the same rows and averaged (less variance at the top of the list)
        self.nets = nn.ModuleList(
            Scorer(len(score_columns), hidden_sizes, dropout, bool(linear_term))
            for _ in range(self.n_folds * self.members)
        )
        self._meta: dict[str, Any] | None = None
        self._labels = torch.zeros(0, self.n_folds)
        self._pos_weight = torch.ones(self.n_folds)
        self._outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.test_tables: dict[str, pd.DataFrame] = {}

    def fold_of_net(self, index: int) -> int:
        """The fold whose rows network ``index`` never learns from (and alone scores)."""
        return index // self.members

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """[B, F] -> [B, K, M]: every network's logit, grouped by fold."""
        logits = torch.cat([net(x) for net in self.nets], dim=-1)
        return logits.view(len(x), self.n_folds, self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, F] standardised sub-scores -> [B, K] logits, one per fold (mean of its members)."""
        return self.member_logits(x).mean(-1)

    # --- the table the networks score (from the datamodule) ------------------------------------

    def attach(self, frame: pd.DataFrame, x: torch.Tensor) -> None:
        """The table to learn from and score (``fold``, ``decoy``, ``group_id`` columns) and its
        standardised sub-scores; done from the trainer's datamodule unless called first."""
        self._meta = {
            "frame": frame,
            "x": x,
            "fold": frame["fold"].to_numpy(np.int64),
            "decoy": frame["decoy"].to_numpy(bool),
            "groups": pd.factorize(frame["group_id"].astype(str))[0],
        }
        self._labels = torch.full((len(frame), self.n_folds), -1.0)

    def _ensure_meta(self) -> dict[str, Any]:
        if self._meta is None:
            datamodule = self.trainer.datamodule
            self.attach(datamodule.frame, datamodule.datasets["train"].x)
        return self._meta

    @torch.no_grad()
    def all_logits(self, x: torch.Tensor, batch: int = 8192) -> np.ndarray:
        """[N, K] logits of every row by every network (eval mode, restored after)."""
        was_training = self.training
        self.eval()
        parts = [self(x[i : i + batch].to(self.device)).cpu() for i in range(0, len(x), batch)]
        self.train(was_training)
        return torch.cat(parts).double().numpy()

    # --- semi-supervised relabelling ------------------------------------------------------------

    def _initial_scores(self, rows: np.ndarray) -> np.ndarray:
        """Iteration 0: one sub-score (and sign) for the given training rows."""
        meta, hp = self._ensure_meta(), self.hparams
        x = meta["x"].numpy()
        columns = list(hp.score_columns)
        if hp.initial_score != "auto":
            if hp.initial_score not in columns:
                raise ValueError(f"initial_score {hp.initial_score!r} is not a score column")
            return x[rows, columns.index(hp.initial_score)].astype(np.float64)
        best_count, best_scores = -1, x[rows, 0]
        for j in range(len(columns)):
            for sign in (1.0, -1.0):
                s = sign * x[rows, j].astype(np.float64)
                labels = group_labels(s, meta["decoy"], meta["groups"], rows, hp.initial_fdr)
                count = int((labels == 1).sum())
                if count > best_count:
                    best_count, best_scores = count, s
        return best_scores

    def relabel(self, iteration: int) -> None:
        """New labels for every network from its own scores of its own training rows."""
        meta, hp = self._ensure_meta(), self.hparams
        logits = self.all_logits(meta["x"]) if iteration > 0 else None
        fdr = float(hp.initial_fdr if iteration == 0 else hp.iteration_fdr)
        labels = torch.full_like(self._labels, -1.0)
        for k in range(self.n_folds):
            rows = np.flatnonzero(meta["fold"] != k)  # never fold k
            scores = self._initial_scores(rows) if logits is None else logits[rows, k]
            own = group_labels(scores, meta["decoy"], meta["groups"], rows, fdr, hp.negatives)
            labels[torch.as_tensor(rows), k] = torch.as_tensor(own)
            n_pos, n_neg = float((own == 1).sum()), float((own == 0).sum())
            self._pos_weight[k] = n_neg / max(n_pos, 1.0)
            self.log(f"train_positives_net{k}", n_pos, on_epoch=True, on_step=False)
        self._labels = labels
        log.info(
            "dia iteration %d: positives per network %s",
            iteration,
            [(labels[:, k] == 1).sum().item() for k in range(self.n_folds)],
        )

    def on_train_epoch_start(self) -> None:
        every = max(int(self.hparams.epochs_per_iteration), 1)
        if (
            self.current_epoch % every == 0
            or self._labels.numel() == 0
            or not (self._labels >= 0).any()
        ):
            self.relabel(self.current_epoch // every)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self.member_logits(batch["x"])  # each member learns on its own
        labels = self._labels[batch["index"].cpu()].to(logits.device)
        mask = (labels >= 0).float()
        weight = torch.where(labels > 0, self._pos_weight.to(logits.device), 1.0) * mask
        labels, weight = labels[..., None].expand_as(logits), weight[..., None].expand_as(logits)
        bce = nn.functional.binary_cross_entropy_with_logits(
            logits, labels.clamp(min=0), reduction="none"
        )
        loss = (bce * weight).sum() / weight.sum().clamp(min=1.0)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(labels))
        return loss

    # --- scoring the table --------------------------------------------------------------------

    def _collect(self, batch: dict[str, torch.Tensor]) -> None:
        self._outputs.append((batch["index"].cpu(), self(batch["x"]).detach().cpu()))

    def _scores(self) -> np.ndarray:
        """Calibrated out-of-fold scores of every row collected in this epoch."""
        meta = self._ensure_meta()
        index = torch.cat([o[0] for o in self._outputs]).numpy()
        logits = np.zeros((len(meta["fold"]), self.n_folds))
        logits[index] = torch.cat([o[1] for o in self._outputs]).double().numpy()
        self._outputs = []
        raw = oof_scores(logits, meta["fold"])
        how = str(self.hparams.calibration)
        if how == "decoys":
            fdr = float(self.hparams.calibration_fdr)
            return calibrate_by_fold(raw, meta["decoy"], meta["fold"], meta["groups"], fdr)
        if how == "rows":
            return standardise_by_fold(raw, meta["fold"])
        return raw

    def on_validation_epoch_start(self) -> None:
        self._outputs = []

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect(batch)

    def on_validation_epoch_end(self) -> None:
        if not self._outputs:
            return
        meta = self._ensure_meta()
        frame = meta["frame"]
        sub = pd.DataFrame({"g": meta["groups"], "score": self._scores(), "decoy": meta["decoy"]})
        best = best_per_group(sub, "g")
        q = tdc_qvalues(best["score"], best["decoy"])
        real = (~frame["decoy"] & ~frame["entrapment"]).to_numpy()[best.index]
        for t in THRESHOLDS[:2]:
            self.log(f"val_precursors_at_{pct(t)}", float((real & (q <= t)).sum()))

    def on_test_epoch_start(self) -> None:
        self._outputs = []

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect(batch)

    def on_test_epoch_end(self) -> None:
        if not self._outputs:
            return
        meta, hp = self._ensure_meta(), self.hparams
        frame = meta["frame"]
        options = {"plus_one": bool(hp.plus_one), "pi0_method": str(hp.pi0_method)}
        table, metrics = assess(frame, self._scores(), **options)
        self.test_tables = {"deepms": table}
        all_metrics = {"deepms": metrics}
        for name, scores in self._peer_scores(frame).items():
            self.test_tables[name], all_metrics[name] = assess(frame, scores, **options)
        logged = {f"test_{k}": v for k, v in metrics.items()}
        for name, values in list(all_metrics.items())[1:]:
            logged |= {f"test_{name}_{k}": v for k, v in values.items()}
        self.log_dict(logged)
        if self.trainer.is_global_zero and self.loggers:
            from deepms.tracking import log_figure
            from deepms.tracking.mlflow_setup import log_text

            log_text(
                self.loggers, table.to_csv(sep="\t", index=False), "dia/scored_peak_groups.tsv"
            )
            for name, fig in figures(self.test_tables, all_metrics).items():
                log_figure(self.loggers, fig, f"plots/{name}.png")

    def _peer_scores(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each peer's scores of the same table (same entrapment labels); a failing peer is
        skipped with a warning so the run still reports deepms."""
        peers = list(self.hparams.peers or ())
        if not peers:
            return {}
        try:
            from deepms.tasks.dia.peers import run_peer
        except ImportError as exc:
            log.warning("dia peers %s skipped: %s", peers, exc)
            return {}
        out = {}
        seed = int(torch.initial_seed() % 2**31)
        for name in peers:
            try:
                with tempfile.TemporaryDirectory(prefix=f"dia-{name}-") as workdir:
                    scores = run_peer(name, frame, list(self.hparams.score_columns), seed, workdir)
                out[name] = np.asarray(scores, dtype=np.float64)
            except Exception as exc:  # a peer's own failure must not sink the run
                log.warning("dia peer %s failed: %s", name, exc)
        return out

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, Any]:
        """Mean logit of the K networks (a row none of them trained on: e.g. a new file)."""
        return {"index": batch["index"], "score": self(batch["x"]).mean(-1)}
