"""deepiso's network (IsoDetecting, CPU-sized) and the TaskModule that trains and evaluates it.

IsoDetectNet looks at one trace-centred window (scans x 0.01 Th bins, see
:mod:`deepms.tasks.deepiso.detect`) and answers three questions about its centre trace: is it an
isotope trace (vs noise), which charge (0 = noise, 1..5) and which isotope index (0..5). The
charge needs the spacing of the neighbours (1/z Th), so the m/z axis keeps its resolution through
the network while the RT axis is averaged out after the convolutions (elution shape is shared by
all isotopes and carries little charge information). Paper sizes (DeepIso's IsoDetecting: larger
windows and deeper stacks) are an option through ``channels`` and ``hidden``.

With ``grouper=learned`` (the default config) the module also holds IsoGroupNet
(:mod:`deepms.tasks.deepiso.grouping`) and trains both in one fit: each step takes a window batch
(detector loss) and a batch of candidate sets (grouper loss, the detector's answers as inputs);
``val_loss`` is the sum of both validation losses.
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
from deepms.tasks.deepiso.grouping import N_CNN, N_FEATURES, N_RESIDUAL_START, IsoGroupNet
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
        grouper: str = "rules",
        grouping: dict[str, Any] | None = None,
        group_width: int = 64,
        group_layers: int = 2,
        group_heads: int = 4,
        group_jitter_ppm: float = 0.0,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        if grouper not in ("rules", "learned"):
            raise ValueError(f"model.grouper: 'rules' or 'learned', not {grouper!r}")
        self.save_hyperparameters()
        self.net = IsoDetectNet(window_scans, window_bins, tuple(channels), hidden, dropout)
        self.grouper = (
            IsoGroupNet(N_FEATURES, group_width, group_heads, group_layers, dropout)
            if grouper == "learned"
            else None
        )
        self._val_sums: dict[str, list[float]] = {}

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.net(windows)

    def _loss(self, batch: Sequence[torch.Tensor], stage: str) -> torch.Tensor:
        """IsoDetecting's loss on a window batch (logged as ``val_detect_loss`` in validation)."""
        windows, is_iso, charge, index = batch
        logit, charge_logits, index_logits = self(windows)
        loss = F.binary_cross_entropy_with_logits(logit, is_iso.float())
        loss = loss + F.cross_entropy(charge_logits, charge)
        positive = index >= 0
        if positive.any():
            loss = loss + F.cross_entropy(index_logits[positive], index[positive])
        n = len(windows)
        key = "val_detect_loss" if stage == "val" else f"{stage}_loss"
        log = {"batch_size": n, "add_dataloader_idx": False}
        self.log(key, loss, prog_bar=stage == "train", **log)
        if stage != "train":
            accuracy = ((logit > 0).long() == is_iso).float().mean()
            charge_ok = (charge_logits.argmax(-1) == charge)[positive].float()
            self.log(f"{stage}_iso_accuracy", accuracy, **log)
            if positive.any():
                self.log(
                    f"{stage}_charge_accuracy",
                    charge_ok.mean(),
                    batch_size=int(positive.sum()),
                    add_dataloader_idx=False,
                )
        return loss

    def probabilities(
        self, windows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(p_isotope (n,), p_charge (n, 6), p_index (n, 6)) of windows."""
        logit, charge, index = self(windows)
        return torch.sigmoid(logit), torch.softmax(charge, -1), torch.softmax(index, -1)

    def cnn_answers(self, windows: torch.Tensor) -> torch.Tensor:
        """(n, N_CNN): p_isotope, p_charge, p_index of windows, as the grouper reads them."""
        p_iso, p_charge, p_index = self.probabilities(windows)
        return torch.cat([p_iso[:, None], p_charge, p_index], -1)

    def _group_loss(self, batch: Sequence[torch.Tensor], stage: str) -> torch.Tensor:
        """IsoGrouping's loss on a batch of candidate sets (membership BCE + seed charge CE).

        The CNN's answers are inputs here, computed without gradient and in eval mode: the
        grouper learns to read the detector, it does not train it."""
        windows, geometry, mask, member, charge = batch
        was_training = self.net.training
        self.net.eval()
        with torch.no_grad():
            cnn = geometry.new_zeros((*mask.shape, N_CNN))
            cnn[mask] = self.cnn_answers(windows[mask])
        self.net.train(was_training)
        if stage == "train" and self.hparams.get("group_jitter_ppm", 0.0) > 0:
            geometry = self._jitter_ladder(geometry)
        member_logit, charge_logit = self.grouper(torch.cat([geometry, cnn], -1), mask)
        loss = F.binary_cross_entropy_with_logits(member_logit[mask], member[mask])
        loss = loss + F.cross_entropy(charge_logit, charge)
        n = len(mask)
        log = {"batch_size": n, "add_dataloader_idx": False}
        self.log(f"{stage}_group_loss", loss, **log)
        if stage != "train":
            right = ((member_logit[mask] > 0).float() == member[mask]).float().mean()
            self.log(f"{stage}_member_accuracy", right, **log)
            real = charge > 0
            if real.any():
                charge_ok = (charge_logit.argmax(-1) == charge)[real].float().mean()
                self.log(f"{stage}_set_charge_accuracy", charge_ok, **log)
        return loss

    def _jitter_ladder(self, geometry: torch.Tensor) -> torch.Tensor:
        """Shift each candidate's m/z by Gaussian ppm noise (sd drawn per set up to
        ``group_jitter_ppm``) in its ladder residuals: real centroids scatter more than the
        simulator's ppm error, and a grouper that only saw tight ladders rejects real members."""
        ppm = float((self.hparams.get("grouping") or {}).get("ppm", 15.0))
        n, k = geometry.shape[:2]
        sd = torch.rand(n, 1, 1) * float(self.hparams.group_jitter_ppm)
        shift = torch.randn(n, k, 1) * sd / ppm / 4  # residual columns: ppm / ppm_unit / 4
        shift[:, 0] = 0.0  # the seed is the reference
        cols = slice(N_RESIDUAL_START, N_RESIDUAL_START + MAX_CHARGE)
        geometry = geometry.clone()
        geometry[..., cols] = (geometry[..., cols] + shift.to(geometry)).clamp(-1.0, 1.0)
        return geometry

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """A window batch, or (learned grouper) ``{"windows": ..., "sets": ...}``."""
        if not isinstance(batch, dict):
            return self._loss(batch, "train")
        loss = self._loss(batch["windows"], "train")
        if self.grouper is not None and batch.get("sets") is not None:
            loss = loss + self._group_loss(batch["sets"], "train")
        return loss

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.grouper is not None and not getattr(datamodule, "set_datasets", None):
            raise ValueError(
                "model.grouper=learned trains on candidate sets: set data.grouping "
                "(the deepiso data config's default) or use model.grouper=rules"
            )

    def on_validation_epoch_start(self) -> None:
        self._val_sums = {}

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Loader 0: windows (detector loss); loader 1, if any: candidate sets (grouper loss).
        ``val_loss`` (the monitor) is their sum, so the best checkpoint is best for both."""
        sets = dataloader_idx == 1
        if sets and self.grouper is None:
            return
        loss = self._group_loss(batch, "val") if sets else self._loss(batch, "val")
        total = self._val_sums.setdefault("group" if sets else "detect", [0.0, 0])
        n = len(batch[0])
        total[0] += float(loss) * n
        total[1] += n

    def on_validation_epoch_end(self) -> None:
        means = [s / n for s, n in self._val_sums.values() if n]
        if means:
            self.log("val_loss", float(sum(means)), prog_bar=True)

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self._loss(batch, "test")

    def predict_step(
        self, batch: Sequence[torch.Tensor], batch_idx: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(p_isotope, p_charge, p_index) of a labelled window batch (whole maps use ``detect``)."""
        return self.probabilities(batch[0])

    @torch.no_grad()
    def _in_batches(
        self, call: Any, arrays: Sequence[np.ndarray], batch_size: int
    ) -> list[tuple[np.ndarray, ...]]:
        """``call(*tensors)`` over batches of numpy ``arrays`` in eval mode (the mode is put
        back); per batch, its outputs as numpy."""
        was_training = self.training
        self.eval()
        out = []
        try:
            for start in range(0, len(arrays[0]), batch_size):
                tensors = [
                    torch.from_numpy(a[start : start + batch_size]).to(self.device) for a in arrays
                ]
                out.append(tuple(t.cpu().numpy() for t in call(*tensors)))
        finally:
            self.train(was_training)
        return out

    def score_windows(
        self, windows: np.ndarray, batch_size: int = 1024
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_isotope, p_charge (n, 6), p_index (n, 6)) for windows (numpy in, numpy out)."""
        out = self._in_batches(self.probabilities, [windows], batch_size)
        if not out:
            return np.empty(0), np.empty((0, MAX_CHARGE + 1)), np.empty((0, MAX_INDEX + 1))
        return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))  # type: ignore[return-value]

    def score_sets(
        self, features: np.ndarray, mask: np.ndarray, batch_size: int = 2048
    ) -> tuple[np.ndarray, np.ndarray]:
        """(p_member (n, K), p_charge (n, 6)) of candidate sets: ``features`` (n, K, N_FEATURES)
        are geometry then CNN answers, ``mask`` (n, K) marks present candidates."""
        if self.grouper is None:
            raise ValueError("this deepiso model has no learned grouper (model.grouper=rules)")

        def call(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            member, charge = self.grouper(x, m)
            return torch.sigmoid(member), torch.softmax(charge, -1)

        out = self._in_batches(call, [features, mask], batch_size)
        if not out:
            return np.empty((0, mask.shape[1])), np.empty((0, MAX_CHARGE + 1))
        members, charges = zip(*out, strict=True)
        return np.concatenate(members), np.concatenate(charges)

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
