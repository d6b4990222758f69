"""deepiso's network (IsoDetecting, CPU-sized) and the TaskModule that trains and evaluates it.

IsoDetectNet looks at one trace-centred window (scans x 0.01 Th bins, see
:mod:`deepms.tasks.deepiso.detect`) and answers three questions about its centre trace: is it an
isotope trace (vs noise), which charge (0 = noise, 1..5) and which isotope index (0..5). The
charge needs the spacing of the neighbours (1/z Th), so the m/z axis keeps its resolution through
the network while the RT axis is averaged out after the convolutions (elution shape is shared by
all isotopes and carries little charge information). Paper sizes (DeepIso's IsoDetecting: larger
windows and deeper stacks) are an option through ``channels`` and ``hidden``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepms.tasks.deepiso.detect import MAX_CHARGE, MAX_INDEX
from deepms.training.module import TaskModule

log = logging.getLogger(__name__)


class IsoDetectNet(nn.Module):
    """Conv stack over (scans x m/z bins) -> is-isotope logit, charge logits, index logits."""

    def __init__(
        self,
        window_scans: int = 16,
        window_bins: int = 224,
        channels: Sequence[int] = (16, 32, 32),
        hidden: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous, bins = 1, window_bins
        for i, width in enumerate(channels):
            layers += [nn.Conv2d(previous, width, 3, padding=1), nn.ReLU()]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
                bins //= 2
            previous = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(previous * bins, hidden), nn.ReLU()
        )
        self.is_isotope = nn.Linear(hidden, 1)
        self.charge = nn.Linear(hidden, MAX_CHARGE + 1)
        self.index = nn.Linear(hidden, MAX_INDEX + 1)

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.features(windows.unsqueeze(1)).mean(dim=2)  # average the RT axis
        h = self.head(x)
        return self.is_isotope(h).squeeze(-1), self.charge(h), self.index(h)


class DeepisoModel(TaskModule):
    """Trains IsoDetectNet on labelled windows; tests the whole detector on maps (evaluate.py)."""

    def __init__(
        self,
        window_scans: int = 16,
        window_bins: int = 224,
        mz_step: float = 0.01,
        channels: Sequence[int] = (16, 32, 32),
        hidden: int = 64,
        dropout: float = 0.1,
        link_ppm: float = 30.0,
        max_gap: int = 1,
        min_scans: int = 3,
        min_p_iso: float = 0.5,
        group_ppm: float = 15.0,
        apex_scans: int = 3,
        min_isotopes: int = 2,
        merge_splits: bool = False,
        match_ppm: float = 10.0,
        peers: Sequence[str] = (),
        pictures: bool = True,
        ablation: bool = True,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        self.save_hyperparameters()
        self.net = IsoDetectNet(window_scans, window_bins, tuple(channels), hidden, dropout)

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.net(windows)

    def _loss(self, batch: Sequence[torch.Tensor], stage: str) -> torch.Tensor:
        windows, is_iso, charge, index = batch
        logit, charge_logits, index_logits = self(windows)
        loss = F.binary_cross_entropy_with_logits(logit, is_iso.float())
        loss = loss + F.cross_entropy(charge_logits, charge)
        positive = index >= 0
        if positive.any():
            loss = loss + F.cross_entropy(index_logits[positive], index[positive])
        n = len(windows)
        self.log(f"{stage}_loss", loss, batch_size=n, prog_bar=stage == "train")
        if stage != "train":
            accuracy = ((logit > 0).long() == is_iso).float().mean()
            charge_ok = (charge_logits.argmax(-1) == charge)[positive].float()
            self.log(f"{stage}_iso_accuracy", accuracy, batch_size=n)
            if positive.any():
                self.log(
                    f"{stage}_charge_accuracy", charge_ok.mean(), batch_size=int(positive.sum())
                )
        return loss

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._loss(batch, "train")

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self._loss(batch, "val")

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self._loss(batch, "test")

    @torch.no_grad()
    def score_windows(
        self, windows: np.ndarray, batch_size: int = 1024
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_isotope, p_charge (n, 6), p_index (n, 6)) for windows (numpy in, numpy out)."""
        was_training = self.training
        self.eval()
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        try:
            for start in range(0, len(windows), batch_size):
                x = torch.from_numpy(windows[start : start + batch_size]).to(self.device)
                logit, charge, index = self(x)
                out.append(
                    (
                        torch.sigmoid(logit).cpu().numpy(),
                        torch.softmax(charge, -1).cpu().numpy(),
                        torch.softmax(index, -1).cpu().numpy(),
                    )
                )
        finally:
            self.train(was_training)
        if not out:
            return np.empty(0), np.empty((0, MAX_CHARGE + 1)), np.empty((0, MAX_INDEX + 1))
        return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))  # type: ignore[return-value]

    def detect(self, ms1: Any, chunk: int = 4096) -> Any:
        """Features of a map (DataFrame in FEATURE_COLUMNS layout plus ``hulls``)."""
        from deepms.tasks.deepiso.predict import detect_features

        return detect_features(self, ms1, chunk)

    def on_test_epoch_end(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not getattr(datamodule, "test_maps", None):
            return
        from deepms.tasks.deepiso.evaluate import evaluate_all

        metrics = evaluate_all(self, datamodule, self.trainer.loggers)
        self.log_dict({f"test_{k}": float(v) for k, v in metrics.items()})
