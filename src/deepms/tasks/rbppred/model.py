"""Deep-RBPPred (Zheng et al. 2018, Sci Rep 8:15264): is this protein RNA-binding?

Following the paper's outline: per-residue physicochemical property channels, convolution and
max-pooling blocks, a dense layer with dropout and one output (sigmoid, cutoff 0.5). Layer sizes
are ours (the paper's code is not public). Deep-RBPPred's "balance" model trained on balanced
classes; ``balance: true`` does the same by weighting the positives' loss by negatives/positives.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepms.metrics import binary_metrics, flatten_metrics
from deepms.sequences.layers import SequenceInput, masked_max, pool_mask
from deepms.training.module import TaskModule


class RBPPredModel(TaskModule):
    """RNA-binding probability of a protein from its property-encoded sequence."""

    def __init__(
        self,
        encoder: dict[str, Any],
        positive_fraction: float = 0.5,
        embedding_dim: int = 32,
        channels: tuple[int, ...] = (64, 64),
        kernel_size: int = 7,
        pool: int = 3,
        dense: int = 64,
        dropout: float = 0.5,
        balance: bool = True,
        threshold: float = 0.5,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        self.save_hyperparameters()
        self.input = SequenceInput(encoder, embedding_dim)
        blocks: list[nn.Module] = []
        width = self.input.out_channels
        for out in channels:
            blocks.append(nn.Conv1d(width, out, kernel_size, padding=kernel_size // 2))
            width = out
        self.convs = nn.ModuleList(blocks)
        self.pool = int(pool)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(width, dense), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(dense, 1),
        )  # fmt: skip
        fraction = min(max(float(positive_fraction), 1e-3), 1 - 1e-3)
        weight = (1 - fraction) / fraction if balance else 1.0
        self.register_buffer("pos_weight", torch.tensor(weight))
        self.metrics = nn.ModuleDict(
            {s: binary_metrics(threshold=threshold) for s in ("val", "test")}
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoded [B, L(, C)] + mask [B, L] -> logit [B]."""
        h = self.input(x)
        for index, conv in enumerate(self.convs):
            h = torch.relu(conv(h)) * mask[:, None, :].float()  # padding stays zero: no edge leak
            if index < len(self.convs) - 1 and self.pool > 1:
                h = nn.functional.max_pool1d(h, self.pool, self.pool, ceil_mode=True)
                mask = pool_mask(mask, self.pool)
        return self.head(masked_max(h, mask)).squeeze(-1)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(
            logits, labels, pos_weight=self.pos_weight
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self(batch["x"], batch["mask"]), batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        logits = self(batch["x"], batch["mask"])
        loss = self._loss(logits, batch["label"])
        self.log(f"{stage}_loss", loss, batch_size=len(batch["ids"]))
        self.metrics[stage].update(torch.sigmoid(logits), batch["label"].long())
        return logits

    def _log_metrics(self, stage: str) -> dict[str, torch.Tensor]:
        values = self.metrics[stage].compute()
        self.metrics[stage].reset()
        self.log_dict(flatten_metrics(values, stage))
        return values

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._confusion = torch.zeros(2, 2)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        predicted = (torch.sigmoid(self._evaluate(batch, "test")) >= self.hparams.threshold).long()
        truth = batch["label"].long()
        self._confusion += torch.bincount(truth * 2 + predicted, minlength=4).reshape(2, 2).cpu()

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")
        if self.trainer.is_global_zero:
            from deepms.plots import confusion_matrix_plot
            from deepms.tracking import log_figure

            fig = confusion_matrix_plot(self._confusion.numpy(), ["non-RBP", "RBP"], "test")
            log_figure(self.loggers, fig, "plots/confusion_test.png")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Per-sequence columns (out-of-fold predictions under CV): id, label if known, p_rbp."""
        out: dict[str, Any] = {"id": list(batch["ids"])}
        if "label" in batch:
            out["label"] = batch["label"]
        out["p_rbp"] = torch.sigmoid(self(batch["x"], batch["mask"]))
        return out
