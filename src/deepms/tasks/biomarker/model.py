"""A DBN classifier of a cohort's samples (An et al. 2017), its protein panel and its comparators.

At fit start the RBM stack is pretrained greedily with CD-k on the fold's training rows (no
labels), then the stack and a sigmoid head are fine-tuned end to end with binary cross-entropy.
At test time the model logs its metrics, ranks the proteins by An et al.'s weight products and by
permutation importance on the test fold (``panel.csv``: the top ``panel_size``), and fits the
baselines on the datamodule's preprocessed matrices of the same fold (``test_<baseline>_*``),
plus a logistic regression on the panel's proteins alone (``test_panel_*``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from deepms.metrics.classification import safe_name
from deepms.tasks.biomarker.baselines import (
    BASELINES,
    binary_scores,
    fit_baselines,
    panel_scores,
    score_baselines,
)
from deepms.tasks.biomarker.dbn import DeepBeliefNetwork, weight_ranking
from deepms.tasks.biomarker.oof import batch_columns, fold_columns
from deepms.tasks.biomarker.summary import summarize_folds
from deepms.training.module import TaskModule

log = logging.getLogger(__name__)


def layer_sizes(hidden_sizes: Sequence[int] | str) -> list[int]:
    """[64, 32], or "64-32" / "[64, 32]" (a sweep's categorical value arrives as a string)."""
    if isinstance(hidden_sizes, str):
        return [int(v) for v in re.split(r"[^0-9]+", hidden_sizes) if v]
    return [int(v) for v in hidden_sizes]


class BiomarkerModel(TaskModule):
    """Stacked RBMs + a sigmoid head: P(positive class) of a preprocessed sample."""

    def __init__(
        self,
        n_features: int,
        feature_names: Sequence[str],
        preprocessing: dict[str, Any],
        classes: Sequence[str],
        label: str,
        hidden_sizes: Sequence[int] | str = (128, 32),
        cd_steps: int = 1,
        pretrain_epochs: int = 20,
        pretrain_lr: float = 0.01,
        pretrain_weight_decay: float = 1e-4,
        dropout: float = 0.5,
        threshold: float = 0.5,
        panel_size: int = 20,
        permutation_repeats: int = 5,
        baselines: Sequence[str] | None = tuple(BASELINES),
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        if len(feature_names) != n_features:
            raise ValueError(f"{len(feature_names)} feature names for {n_features} features")
        if len(classes) != 2:
            raise ValueError(f"a binary label needs two classes, got {list(classes)}")
        unknown = sorted(set(baselines or ()) - set(BASELINES))
        if unknown:
            raise ValueError(f"unknown baselines {unknown}: use some of {sorted(BASELINES)}")
        self.save_hyperparameters()
        self.dbn = DeepBeliefNetwork(n_features, layer_sizes(hidden_sizes))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.dbn.out_features, 1)
        # set once the stack is pretrained: a resumed or reloaded model is not pretrained again
        self.register_buffer("pretrained", torch.zeros((), dtype=torch.bool))
        self.probability_column = f"p_{safe_name(str(classes[1]))}"
        self._outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._fold_columns: dict[str, dict[str, Any]] = {}  # sample id -> p_<baseline>, site, ...

    #: the cv parent's pooled figures (bootstrap, paired test, plots): see summary.py
    summarize_folds = staticmethod(summarize_folds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, F] preprocessed intensities -> [B] logits."""
        return self.head(self.dropout(self.dbn(x))).squeeze(-1)

    # --- pretraining ------------------------------------------------------------------------

    def on_fit_start(self) -> None:
        if bool(self.pretrained) or int(self.hparams.pretrain_epochs) <= 0:
            return
        loader = self.trainer.datamodule.train_dataloader()
        history = self.dbn.pretrain(
            lambda: (batch["x"].to(self.device) for batch in loader),
            epochs=int(self.hparams.pretrain_epochs),
            cd_steps=int(self.hparams.cd_steps),
            lr=float(self.hparams.pretrain_lr),
            weight_decay=float(self.hparams.pretrain_weight_decay),
            seed=int(torch.initial_seed() % 2**31),
        )
        self.pretrained.fill_(True)
        for layer, errors in enumerate(history):
            log.info("RBM %d reconstruction error %.4f -> %.4f", layer, errors[0], errors[-1])
            for logger in self.loggers:
                for epoch, error in enumerate(errors):
                    logger.log_metrics({f"pretrain_rbm{layer}_reconstruction": error}, epoch)

    # --- fine-tuning and evaluation -----------------------------------------------------------

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = nn.functional.binary_cross_entropy_with_logits(self(batch["x"]), batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["label"]))
        return loss

    def _collect(self, batch: dict[str, Any], stage: str) -> None:
        logits = self(batch["x"])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, batch["label"])
        self.log(f"{stage}_loss", loss, batch_size=len(batch["label"]))
        self._outputs.append((batch["x"].cpu(), batch["label"].cpu(), torch.sigmoid(logits).cpu()))

    def _stage_scores(self, stage: str) -> dict[str, float]:
        labels = torch.cat([o[1] for o in self._outputs])
        probabilities = torch.cat([o[2] for o in self._outputs])
        scores = binary_scores(probabilities, labels, float(self.hparams.threshold))
        self.log_dict({f"{stage}_{k}": v for k, v in scores.items()})
        return scores

    def on_validation_epoch_start(self) -> None:
        self._outputs = []

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self._outputs:
            self._stage_scores("val")
        self._outputs = []

    def on_test_epoch_start(self) -> None:
        self._outputs = []

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, "test")

    def on_test_epoch_end(self) -> None:
        if not self._outputs:
            return
        self._stage_scores("test")
        x = torch.cat([o[0] for o in self._outputs])
        y = torch.cat([o[1] for o in self._outputs])
        self._outputs = []
        ranking = self.ranking(x, y)
        if self.trainer.is_global_zero:
            from deepms.tracking.mlflow_setup import log_text

            panel = ranking.head(int(self.hparams.panel_size))
            log_text(self.loggers, panel.to_csv(index=False), "panel.csv")
        self.log_dict({f"test_{k}": v for k, v in self._comparators(ranking).items()})

    def _comparators(self, ranking: Any) -> dict[str, float]:
        """The baselines and the panel-only model on the datamodule's matrices of this fold."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "matrix"):
            return {}
        x_train, y_train, _ = datamodule.matrix("train")
        x_test, y_test, ids = datamodule.matrix("test")
        train, test = (np.asarray(x_train), np.asarray(y_train)), (x_test, np.asarray(y_test))
        seed = int(torch.initial_seed() % 2**31)
        probabilities = fit_baselines(train, x_test, list(self.hparams.baselines or ()), seed)
        panel = ranking.head(int(self.hparams.panel_size))
        self._fold_columns = fold_columns(ids, probabilities, panel["feature"].tolist(), datamodule)
        out = score_baselines(probabilities, test[1])
        return out | panel_scores(train, test, panel["index"].tolist())

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Per-sample columns (out-of-fold predictions under CV): id, label, p_<positive>, and
        after this fold's test each baseline's p_<baseline>, site, repeat and panel (oof.py)."""
        out: dict[str, Any] = {"id": list(batch["ids"])}
        if "label" in batch:
            out["label"] = batch["label"]
        out[self.probability_column] = torch.sigmoid(self(batch["x"]))
        return out | batch_columns(self._fold_columns, out["id"])

    # --- protein ranking ----------------------------------------------------------------------

    def ranking(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        """Every feature's weight score (An et al.) and permutation importance on (x, y), ranked
        by the weight score: columns rank, feature, weight_score, permutation_importance, index."""
        import pandas as pd

        weights = weight_ranking(self.dbn, self.head.weight).cpu().numpy()
        generator = torch.Generator().manual_seed(0)
        importance = permutation_importance(
            self, x.to(self.device), y, int(self.hparams.permutation_repeats), generator
        )
        frame = pd.DataFrame(
            {
                "feature": list(self.hparams.feature_names),
                "weight_score": weights,
                "permutation_importance": importance,
                "index": np.arange(len(weights)),
            }
        ).sort_values("weight_score", ascending=False, kind="stable")
        frame.insert(0, "rank", np.arange(1, len(frame) + 1))
        return frame.reset_index(drop=True)


def rank_auroc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AUROC of each row of ``scores`` [R, N] (Mann-Whitney U over ranks; ties ignored)."""
    labels = labels.bool().reshape(-1)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return torch.full(scores.shape[:1], float("nan"))
    ranks = scores.argsort(-1).argsort(-1).double() + 1
    u = ranks[:, labels].sum(-1) - n_pos * (n_pos + 1) / 2
    return (u / (n_pos * n_neg)).float()


@torch.no_grad()
def permutation_importance(
    model: BiomarkerModel,
    x: torch.Tensor,
    y: torch.Tensor,
    repeats: int = 5,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Mean drop of AUROC when one feature's column is shuffled, for every feature at once.

    Shuffling column j shifts the first layer's pre-activation by (x[perm, j] - x[:, j]) W1[j],
    so all F permuted copies cost one [F, N, H1] tensor instead of F forward passes.
    """
    was_training = model.training
    model.eval()
    first, rest = model.dbn.rbms[0], model.dbn.rbms[1:]
    base_pre = x @ first.weight + first.hidden_bias  # [N, H1]

    def logits_from(pre: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid(pre)
        for rbm in rest:
            h = rbm.hidden_probability(h)
        return model.head(h).squeeze(-1)

    base = rank_auroc(logits_from(base_pre)[None], y)[0]
    drops = torch.zeros(x.shape[1])
    for _ in range(max(int(repeats), 1)):
        perm = torch.randperm(len(x), generator=generator)
        delta = (x[perm] - x).T  # [F, N]
        for start in range(0, x.shape[1], 256):
            chunk = slice(start, start + 256)
            pre = base_pre[None] + delta[chunk, :, None] * first.weight[chunk, None, :]
            drops[chunk] += base - rank_auroc(logits_from(pre), y)
    model.train(was_training)
    return (drops / max(int(repeats), 1)).numpy()
