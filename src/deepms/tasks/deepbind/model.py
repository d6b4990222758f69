"""DeepBind (Alipanahi et al. 2015, Nat Biotechnol 33:831): motif scanning for binding sites.

As in the paper: the one-hot sequence is padded with ``motif_length - 1`` uniform (0.25) positions
on each side, scanned by ``motifs`` convolutional motif detectors, rectified against a learned
threshold (the bias), pooled over the whole sequence -- ``max``, or ``max`` and ``avg`` side by
side (DeepBind's "max+avg") -- and fed to a dense layer (``hidden`` ReLU units with dropout, or
none) giving one binding score. For DNA both strands are scanned and the higher score kept
(DeepBind does so for ChIP-seq). Learned motifs are logged as sequence logos after testing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from deepms.metrics import binary_metrics, flatten_metrics
from deepms.sequences.encoding import SequenceEncoder
from deepms.sequences.layers import masked_max, masked_mean, reverse_padded
from deepms.training.module import TaskModule

POOLINGS = ("max", "maxavg")


class DeepBindModel(TaskModule):
    """Binding score (logit) of one DNA/RNA sequence for one experiment."""

    def __init__(
        self,
        encoder: dict[str, Any],
        experiment: str = "",
        motifs: int = 16,
        motif_length: int = 24,
        pooling: str = "maxavg",
        hidden: int = 32,
        dropout: float = 0.5,
        both_strands: bool | None = None,
        n_logos: int = 8,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; use one of {POOLINGS}")
        self.save_hyperparameters()
        self.encoder = SequenceEncoder.from_dict(encoder)
        if self.encoder.encoding != "onehot":
            raise ValueError("DeepBind scans one-hot sequences (data encoding must be onehot)")
        self.letters = self.encoder.alphabet.letters
        self.both_strands = (
            self.encoder.alphabet.name == "dna" if both_strands is None else both_strands
        )
        self.conv = nn.Conv1d(len(self.letters), motifs, motif_length)
        pooled = motifs * (2 if pooling == "maxavg" else 1)
        if hidden:
            self.head = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(pooled, hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(hidden, 1),
            )  # fmt: skip
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(pooled, 1))
        self.metrics = nn.ModuleDict({s: binary_metrics() for s in ("val", "test")})
        self._test_x: list[torch.Tensor] = []
        self._test_y: list[torch.Tensor] = []

    def padded(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, L, A] one-hot -> [B, A, L + 2(m-1)] with uniform letters outside the sequence."""
        uniform = 1.0 / len(self.letters)
        x = torch.where(mask[..., None], x.float(), torch.full_like(x.float(), uniform))
        pad = self.hparams.motif_length - 1
        return nn.functional.pad(x.transpose(1, 2), (pad, pad), value=uniform)

    def activations(self, padded: torch.Tensor) -> torch.Tensor:
        """Rectified motif-detector responses [B, motifs, windows]."""
        return torch.relu(self.conv(padded))

    def _score(self, padded: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """Pool each detector over the sequence's own windows (``windows`` [B, W] mask)."""
        act = self.activations(padded)
        pooled = masked_max(act, windows)
        if self.hparams.pooling == "maxavg":
            pooled = torch.cat([pooled, masked_mean(act, windows)], dim=1)
        return self.head(pooled).squeeze(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Binding logit per sequence (max over both strands for DNA).

        A sequence of length L has L + m - 1 windows; windows reaching into batch padding are
        left out, so a sequence scores the same alone as next to a longer one.
        """
        lengths = mask.sum(1)
        extra = self.hparams.motif_length - 1
        steps = torch.arange(mask.shape[1] + extra, device=mask.device)
        windows = steps[None] < (lengths + extra)[:, None]
        score = self._score(self.padded(x, mask), windows)
        if self.both_strands:  # reverse within each length; complement = reversed ACGT channels
            reverse = reverse_padded(x.float(), lengths).flip(-1)
            score = torch.maximum(score, self._score(self.padded(reverse, mask), windows))
        return score

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch["x"], batch["mask"])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        logits = self(batch["x"], batch["mask"])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, batch["label"])
        self.log(f"{stage}_loss", loss, batch_size=len(batch["ids"]))
        self.metrics[stage].update(torch.sigmoid(logits), batch["label"].long())

    def _log_metrics(self, stage: str) -> None:
        values = self.metrics[stage].compute()
        self.metrics[stage].reset()
        self.log_dict(flatten_metrics(values, stage))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._test_x, self._test_y = [], []

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")
        self._test_x.append(self.padded(batch["x"], batch["mask"]).cpu())
        self._test_y.append(batch["label"].cpu())

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")
        if self.trainer.is_global_zero and self._test_x and self.hparams.n_logos:
            self._log_logos()

    @torch.no_grad()
    def _log_logos(self) -> None:
        """Logos of the filters that best separate bound from unbound test sequences."""
        from deepms.plots import motif_logos
        from deepms.sequences.motifs import filter_motifs
        from deepms.tracking import log_figure

        lengths = {x.shape[-1] for x in self._test_x}
        if len(lengths) != 1:  # variable-length test sets: logos need one window grid
            return
        padded = torch.cat(self._test_x).to(self.device)
        labels = torch.cat(self._test_y).bool().numpy()
        act = self.activations(padded).cpu().numpy()
        peak = act.max(-1)
        separation = peak[labels].mean(0) - peak[~labels].mean(0)
        order = np.argsort(separation)[::-1][: self.hparams.n_logos]
        onehot = padded.transpose(1, 2).cpu().numpy()[labels]
        ppms, used = filter_motifs(act[labels][:, order], onehot, self.hparams.motif_length)
        titles = [
            f"filter {f}: bound-unbound peak {separation[f]:+.2f}, {n} sites"
            for f, n in zip(order, used, strict=True)
        ]
        fig = motif_logos(list(ppms), self.letters, titles)
        log_figure(self.loggers, fig, f"plots/motifs_{self.hparams.experiment or 'model'}.png")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Per-sequence columns (out-of-fold predictions under CV): id, label if known, p_bound."""
        out: dict[str, Any] = {"id": list(batch["ids"])}
        if "label" in batch:
            out["label"] = batch["label"]
        out["p_bound"] = torch.sigmoid(self(batch["x"], batch["mask"]))
        return out
