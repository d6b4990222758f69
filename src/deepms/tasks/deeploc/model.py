"""DeepLoc (Almagro Armenteros et al. 2017, Bioinformatics 33:3387): CNN + BiLSTM + attention.

As in the paper: parallel convolutions of widths 1, 3, 5, 9, 15, 21 (20 filters each) over the
encoded protein, a second convolution (width 3), a bidirectional LSTM, attention over its states,
a dense layer and two heads -- 10-class localisation (softmax) and membrane-bound vs soluble
(sigmoid; proteins with unknown membrane state are masked out of that loss). Two departures, both
configurable: one attention step instead of the paper's 10-step attention decoder, and optional
max-pooling between the convolutions and the LSTM (``pool``) to make CPU training affordable.
``class_balance`` weights the localisation loss by inverse training-class frequency (off by
default: DeepLoc trained unweighted, and it trades accuracy for the rare classes).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepms.metrics import binary_metrics, flatten_metrics, multiclass_metrics
from deepms.sequences.layers import (
    AdditiveAttention,
    MaskedBiLSTM,
    MultiWidthConv,
    SequenceInput,
    pool_mask,
)
from deepms.training.module import TaskModule


class DeepLocModel(TaskModule):
    """Localisation (10 classes) and membrane (binary) from one protein sequence."""

    def __init__(
        self,
        encoder: dict[str, Any],
        classes: list[str],
        test_names: list[str] | None = None,
        embedding_dim: int = 32,
        conv_widths: tuple[int, ...] = (1, 3, 5, 9, 15, 21),
        conv_filters: int = 20,
        conv2_filters: int = 128,
        pool: int = 1,
        lstm_hidden: int = 256,
        attention_hidden: int = 128,
        dense: int = 256,
        dropout: float = 0.25,
        membrane_weight: float = 1.0,
        class_balance: bool = False,
        class_counts: list[int] | None = None,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        self.save_hyperparameters()
        self.classes = list(classes)
        self.test_names = list(test_names or ["test"])
        self.input = SequenceInput(encoder, embedding_dim)
        self.conv1 = MultiWidthConv(self.input.out_channels, conv_widths, conv_filters)
        self.conv2 = nn.Conv1d(self.conv1.out_channels, conv2_filters, 3, padding=1)
        self.pool = int(pool)
        self.dropout = nn.Dropout(dropout)
        self.lstm = MaskedBiLSTM(conv2_filters, lstm_hidden)
        self.attention = AdditiveAttention(2 * lstm_hidden, attention_hidden)
        self.dense = nn.Sequential(
            nn.Linear(2 * lstm_hidden, dense), nn.ReLU(), nn.Dropout(dropout)
        )
        self.location_head = nn.Linear(dense, len(self.classes))
        self.membrane_head = nn.Linear(dense, 1)
        self.location_metrics = nn.ModuleDict(
            {s: multiclass_metrics(len(self.classes)) for s in ["val", *self.test_names]}
        )
        self.membrane_metrics = nn.ModuleDict(
            {s: binary_metrics(ignore_index=-1) for s in ["val", *self.test_names]}
        )
        self._membrane_seen: set[str] = set()
        counts = torch.tensor(class_counts or [1] * len(self.classes), dtype=torch.float)
        weights = counts.sum() / (len(counts) * counts.clamp(min=1)) if class_balance else None
        self.register_buffer("class_weights", weights if weights is not None else torch.ones(0))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoded [B, L(, C)] + mask [B, L] -> location logits, membrane logit, attention."""
        keep = mask[:, None, :].float()  # zero padding after each layer: no leak into the edges
        h = torch.relu(self.conv1(self.input(x))) * keep
        h = torch.relu(self.conv2(self.dropout(h))) * keep
        if self.pool > 1:
            h = nn.functional.max_pool1d(h, self.pool, self.pool, ceil_mode=True)
            mask = pool_mask(mask, self.pool)
        states = self.lstm(self.dropout(h.transpose(1, 2)), mask)
        context, weights = self.attention(states, mask)
        features = self.dense(context)
        return {
            "location": self.location_head(features),
            "membrane": self.membrane_head(features).squeeze(-1),
            "attention": weights,
        }

    def _loss(self, out: dict[str, torch.Tensor], batch: dict[str, Any]) -> torch.Tensor:
        weight = self.class_weights if self.class_weights.numel() else None
        loss = nn.functional.cross_entropy(out["location"], batch["location"], weight=weight)
        known = batch["membrane"] >= 0
        if known.any():
            membrane = nn.functional.binary_cross_entropy_with_logits(
                out["membrane"][known], batch["membrane"][known].float()
            )
            loss = loss + self.hparams.membrane_weight * membrane
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self(batch["x"], batch["mask"]), batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    @staticmethod
    def _prefix(stage: str) -> str:
        """``val``, ``test`` (official test set), ``test_<name>`` for further test sets."""
        return stage if stage in ("val", "test") else f"test_{stage}"

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        out = self(batch["x"], batch["mask"])
        size = len(batch["ids"])
        loss = self._loss(out, batch)
        self.log(f"{self._prefix(stage)}_loss", loss, batch_size=size, add_dataloader_idx=False)
        self.location_metrics[stage].update(out["location"].softmax(-1), batch["location"])
        known = batch["membrane"] >= 0
        if known.any():
            self._membrane_seen.add(stage)
            self.membrane_metrics[stage].update(torch.sigmoid(out["membrane"]), batch["membrane"])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, self.test_names[dataloader_idx])

    def _log_stage(self, stage: str) -> dict[str, torch.Tensor]:
        """Log ``<prefix>_acc``, ``_mcc``, ``_mcc_<class>``, ``_membrane_*``; returns raw values."""
        prefix = self._prefix(stage)
        location = self.location_metrics[stage].compute()
        metrics = flatten_metrics(location, prefix, self.classes)
        if stage in self._membrane_seen:  # setHARD has no membrane labels
            membrane = self.membrane_metrics[stage].compute()
            metrics.update(flatten_metrics(membrane, f"{prefix}_membrane"))
        self.location_metrics[stage].reset()
        self.membrane_metrics[stage].reset()
        self._membrane_seen.discard(stage)
        self.log_dict(metrics, add_dataloader_idx=False)
        return location

    def on_validation_epoch_end(self) -> None:
        self._log_stage("val")

    def on_test_epoch_end(self) -> None:
        for stage in self.test_names:
            location = self._log_stage(stage)
            if self.trainer.is_global_zero and not self.trainer.sanity_checking:
                self._plot_confusion(location["confusion"], stage)

    def _plot_confusion(self, confusion: torch.Tensor, stage: str) -> None:
        from deepms.plots import confusion_matrix_plot
        from deepms.tracking import log_figure

        title = {"test": "DeepLoc official test set", "hard": "setHARD"}.get(stage, stage)
        fig = confusion_matrix_plot(confusion.cpu().numpy(), self.classes, title)
        log_figure(self.loggers, fig, f"plots/confusion_{stage}.png")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        out = self(batch["x"], batch["mask"])
        return {
            "ids": batch["ids"],
            "location": out["location"].softmax(-1),
            "membrane": torch.sigmoid(out["membrane"]),
        }
