"""DeepRT-style retention-time models: an end-to-end CNN + BiLSTM regressor, and DeepRT's pipeline.

:class:`RTModel`: residue embedding (+ a zero-initialised projection of the modification features,
so an unseen modification changes nothing until trained), convolutions for local motifs, a BiLSTM
for order, masked mean/max pooling of both (the "CNN and RNN features"), a dense head on the
standardised RT. Output is in the set's unit (``rt_unit``: min or irt); a calibrated model
(``finetune.mode=calibrate``) maps the raw output through a piecewise-linear fit instead.
Trained on several LC systems (``systems``), the network has one output head per system, each on
its system's standardised RT; a batch's ``system`` column picks each row's head, and input without
one goes to :attr:`RTModel.head` (the first system unless a predictor chooses another). All heads
together are what a new system is calibrated from (:mod:`.calibration`).
:class:`RTEnsembleModel` (Ma et al. 2018): the same network, then at the end of fit scaling + PCA
+ SVR / random forest / gradient boosting on its best weights' features, pickled into the best
checkpoint so that test and prediction use the stack.
"""

from __future__ import annotations

import inspect
import logging
import pickle
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deepms.chem.encoding import PeptideEncoder
from deepms.metrics import regression_metrics
from deepms.registry.reference import load_checkpoint
from deepms.tasks.deeprt.stacking import MEMBERS, FeatureStack, load_stack
from deepms.tasks.deeprt.transfer import (
    collect_outputs,
    fit_piecewise_linear,
    piecewise_linear,
    remap_columns,
)
from deepms.training.finetune import transfer_weights
from deepms.training.module import TaskModule

log = logging.getLogger(__name__)
LOSSES = {"l1": "l1_loss", "mse": "mse_loss", "huber": "huber_loss"}  # torch.nn.functional


def _masked_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, L, C] -> [B, 2C]: mean and max over real (unpadded) positions."""
    m = mask.unsqueeze(-1)
    mean = (x * m).sum(1) / m.sum(1).clamp(min=1)
    top = x.masked_fill(~m, float("-inf")).amax(1)
    return torch.cat([mean, top], dim=-1)


class RTNet(nn.Module):
    """Embedding (+ modification projection) -> conv blocks -> BiLSTM -> pooled features -> RT."""

    def __init__(
        self,
        n_tokens: int,
        n_mod_features: int,
        embed_dim: int = 32,
        conv_channels: int = 64,
        kernel_size: int = 3,
        n_conv: int = 2,
        lstm_hidden: int = 64,
        lstm_layers: int = 1,
        dropout: float = 0.1,
        n_heads: int = 1,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_tokens, embed_dim, padding_idx=0)
        self.mod_proj = nn.Linear(n_mod_features, embed_dim, bias=False)
        nn.init.zeros_(self.mod_proj.weight)
        sizes = [embed_dim] + [conv_channels] * n_conv
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, kernel_size, padding=kernel_size // 2) for a, b in pairwise(sizes)
        )
        self.lstm = nn.LSTM(
            sizes[-1],
            lstm_hidden,
            lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.n_features = 2 * sizes[-1] + 4 * lstm_hidden
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(self.n_features, lstm_hidden),
            nn.GELU(),
            nn.Linear(lstm_hidden, n_heads),
        )

    def features(self, residues: torch.Tensor, mods: torch.Tensor, lengths: torch.Tensor):
        """[B, L] residues, [B, L, M] modification features -> [B, n_features]."""
        mask = residues > 0
        x = self.embed(residues) + self.mod_proj(mods)
        h = x.transpose(1, 2)
        for conv in self.convs:
            h = nn.functional.gelu(conv(h)) * mask.unsqueeze(1)
        conv_out = h.transpose(1, 2)
        packed = pack_padded_sequence(
            conv_out, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=residues.shape[1])
        return torch.cat([_masked_pool(conv_out, mask), _masked_pool(out, mask)], dim=-1)

    def forward(self, residues: torch.Tensor, mods: torch.Tensor, lengths: torch.Tensor):
        """[B, n_heads]: every head's standardised RT."""
        return self.head(self.features(residues, mods, lengths))


ARCHITECTURE = tuple(inspect.signature(RTNet).parameters)[2:-1]  # embed_dim ... dropout


class RTModel(TaskModule):
    """CNN + BiLSTM RT regressor; hyperparameters carry the vocabulary, unit and RT scaling."""

    def __init__(
        self,
        n_residue_tokens: int,
        encoder: dict[str, Any],
        rt_unit: str,
        rt_mean: float,
        rt_std: float,
        data_name: str | None = None,
        embed_dim: int = 32,
        conv_channels: int = 64,
        kernel_size: int = 3,
        n_conv: int = 2,
        lstm_hidden: int = 64,
        lstm_layers: int = 1,
        dropout: float = 0.1,
        loss: str = "l1",
        n_knots: int = 8,
        systems: list[dict[str, Any]] | None = None,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: use one of {sorted(LOSSES)}")
        self.save_hyperparameters()
        self.encoder = PeptideEncoder.from_dict(encoder)
        arch = {k: self.hparams[k] for k in ARCHITECTURE}
        own = {"name": data_name or "default", "rt_unit": rt_unit}
        self.systems = list(systems or [{**own, "rt_mean": rt_mean, "rt_std": rt_std}])
        self.net = RTNet(
            n_residue_tokens, self.encoder.n_mod_features, **arch, n_heads=len(self.systems)
        )
        scale = [(float(s["rt_mean"]), float(s["rt_std"])) for s in self.systems]
        self.register_buffer("head_mean", torch.tensor([m for m, _ in scale]), persistent=False)
        self.register_buffer("head_std", torch.tensor([d for _, d in scale]), persistent=False)
        self.head = 0  # the head for input without a system column
        self._pretrained_head: tuple[torch.Tensor, torch.Tensor] | None = None
        self.loss_fn = getattr(nn.functional, LOSSES[loss])
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))
        self.register_buffer("knots", torch.zeros(n_knots))
        self.register_buffer("knot_values", torch.zeros(n_knots))
        self.calibrate_only = False
        reference = "range" if rt_unit == "irt" else "max"  # iRT starts below zero
        self.metrics = nn.ModuleDict(
            {stage: nn.ModuleDict(regression_metrics(reference)) for stage in ("val", "test")}
        )
        self._test_points: list[np.ndarray] = []

    @property
    def system_names(self) -> list[str]:
        return [str(s["name"]) for s in self.systems]

    def _system(self, batch: dict[str, Any], n: int) -> torch.Tensor:
        """[B] each row's head: the batch's ``system`` column, else :attr:`head`."""
        system = batch.get("system")
        if system is None:
            return torch.full((n,), self.head, dtype=torch.int64, device=self.head_mean.device)
        return system

    def head_outputs(self, batch: dict[str, Any]) -> torch.Tensor:
        """[B, n_heads]: every head's standardised RT (what a new system is calibrated on)."""
        return self.net(batch["residues"], batch["mods"], batch["lengths"])

    def _raw(self, batch: dict[str, Any]) -> torch.Tensor:
        out = self.head_outputs(batch)
        return out.gather(1, self._system(batch, len(out)).unsqueeze(1)).squeeze(1)

    def to_rt(self, raw: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """Network output -> RT in its system's unit (through the calibration when there is one)."""
        if bool(self.calibrated):
            return piecewise_linear(raw, self.knots, self.knot_values)
        system = self._system(batch, len(raw))
        return raw * self.head_std[system] + self.head_mean[system]

    def predict_rt(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.to_rt(self._raw(batch), batch)

    def _target(self, batch: dict[str, Any]) -> torch.Tensor:
        system = self._system(batch, len(batch["rt"]))
        return (batch["rt"] - self.head_mean[system]) / self.head_std[system]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if self.calibrate_only:
            return None  # nothing to train: the calibration was fitted in on_fit_start
        loss = self.loss_fn(self._raw(batch), self._target(batch))
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["rt"]))
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        """Loss over every system (standardised); metrics on the first test part's rows of the
        first system only, in its unit (a mixed-unit MAE would mean nothing)."""
        raw = self._raw(batch)
        preds, size = self.to_rt(raw, batch), len(raw)
        if not self.calibrate_only:
            loss = self.loss_fn(raw, self._target(batch))
            self.log(f"{stage}_loss", loss, batch_size=size, sync_dist=True)
        rows = self._system(batch, size) == 0
        if "part" in batch:
            rows &= batch["part"] == 0
        if bool(rows.any()):
            for name, metric in self.metrics[stage].items():
                metric.update(preds[rows], batch["rt"][rows])
                self.log(f"{stage}_{name}", metric, batch_size=size, prog_bar=name == "mae")
        return preds

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Per-peptide columns (out-of-fold predictions under CV): peptide, rt, predicted_rt."""
        return {
            "peptide": list(batch["peptides"]),
            "rt": batch["rt"],
            "predicted_rt": self.predict_rt(batch).float(),
        }

    def on_test_epoch_start(self) -> None:
        self._test_points = []

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """The first test part feeds the test metrics; every row's (observed, predicted, system,
        part) is kept for the per-system and per-part reports at the end."""
        preds = self._evaluate(batch, "test")
        system = self._system(batch, len(preds)).to(preds)
        part = batch["part"].to(preds) if "part" in batch else torch.zeros_like(preds)
        points = torch.stack([batch["rt"], preds.float(), system, part], 1)
        self._test_points.append(points.cpu().numpy())

    def _report(self, obs: np.ndarray, pred: np.ndarray, prefix: str) -> None:
        from deepms.metrics.regression import regression_report

        report = regression_report(torch.as_tensor(pred), torch.as_tensor(obs))
        for name, value in report.items():
            self.log(f"{prefix}_{name}", float(value), rank_zero_only=True)

    def on_test_epoch_end(self) -> None:
        """Extra test parts (e.g. ``held_out_mods``) and each system of a multi-system model get
        their own metrics (``test_<part>_mae``, ``test_<system>_mae``, ...), in their own unit."""
        if not self._test_points:
            return
        obs, pred, system, part = np.concatenate(self._test_points).T
        datamodule = self.trainer.datamodule
        parts = getattr(datamodule, "test_parts", ("test",))
        names = [p for p in parts if p in getattr(datamodule, "datasets", {"test": None})]
        for index, name in enumerate(names[1:], 1):
            for sys_index, sys_name in enumerate(self.system_names):
                rows = (part == index) & (system == sys_index)
                if rows.sum() > 1:
                    suffix = f"_{sys_name}" if len(self.systems) > 1 else ""
                    self._report(obs[rows], pred[rows], f"test_{name}{suffix}")
        first = part == 0
        if len(self.systems) > 1:
            for index, name in enumerate(self.system_names):
                rows = first & (system == index)
                if rows.sum() > 1:
                    self._report(obs[rows], pred[rows], f"test_{name}")
            first &= system == 0
        obs, pred = obs[first], pred[first]
        if not len(obs) or not self.trainer.is_global_zero or not self.loggers:
            return
        from deepms.plots import predicted_vs_observed
        from deepms.tracking import log_figure

        title = f"{self.hparams.data_name}: {len(obs)} test peptides"
        fig = predicted_vs_observed(obs, pred, f"RT ({self.hparams.rt_unit})", title)
        log_figure(self.loggers, fig, "plots/test_predicted_vs_observed.png")

    def configure_optimizers(self) -> Any:
        if not any(p.requires_grad for p in self.parameters()):
            return None  # calibration only, or everything frozen
        return super().configure_optimizers()

    def load_pretrained(self, checkpoint: dict[str, Any], mode: str = "finetune"):
        """Copy a pretrained RT model's weights; modification columns are matched by name."""
        state = dict(checkpoint["state_dict"])
        old_vocab = checkpoint["hyper_parameters"]["encoder"].get("modifications", [])
        key, vocabulary = "net.mod_proj.weight", self.encoder.modifications
        if key in state:  # vocabulary columns by name; the mass-shift channel as it is
            state[key] = remap_columns(state[key], self.net.mod_proj.weight, old_vocab, vocabulary)
        for name in ("calibrated", "knots", "knot_values"):
            state.pop(name, None)
        head = f"net.head.{len(self.net.head) - 1}"
        old_heads = state.get(f"{head}.weight")
        if old_heads is not None and old_heads.shape[0] != len(self.systems):
            # another set of LC systems: the pretrained heads are folded into this model's at
            # fit start (ridge over them on the training rows), not dropped
            self._pretrained_head = (state.pop(f"{head}.weight"), state.pop(f"{head}.bias"))
        loaded, skipped = transfer_weights(self, state)
        if mode == "calibrate":
            self.calibrate_only = True
            self.requires_grad_(False)
        return loaded, skipped

    def fold_pretrained_heads(self, loader: Any) -> None:
        """Start each head as the ridge mix of the pretrained model's heads that best fits its
        system's training rows (heads are linear in the last hidden layer, so the mix is one
        head): fine-tuning from a multi-system model starts from its calibration."""
        from deepms.tasks.deeprt.calibration import ridge_fit

        weight, bias = (t.double().cpu().numpy() for t in self._pretrained_head)
        hidden, target, system = collect_outputs(
            self,
            loader,
            lambda batch: self.net.head[:-1](self.head_input(batch)),
            self._target,
            lambda batch: self._system(batch, len(batch["rt"])),
        )
        old = hidden.astype(np.float64) @ weight.T + bias
        last = self.net.head[-1]
        with torch.no_grad():
            for index in range(len(self.systems)):
                rows = system == index
                mix, intercept = ridge_fit(old[rows], target[rows].astype(np.float64))
                last.weight[index] = torch.as_tensor(mix @ weight)
                last.bias[index] = float(mix @ bias + intercept)
        log.info("folded %d pretrained heads into %d (ridge)", len(bias), len(self.systems))
        self._pretrained_head = None

    def head_input(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.net.features(batch["residues"], batch["mods"], batch["lengths"])

    def on_fit_start(self) -> None:
        if self._pretrained_head is not None:
            self.fold_pretrained_heads(self.trainer.datamodule.train_dataloader())
        if not self.calibrate_only:
            return
        loader = self.trainer.datamodule.train_dataloader()
        raw, rt = collect_outputs(self, loader, self._raw, lambda batch: batch["rt"])
        knots, values = fit_piecewise_linear(raw, rt, len(self.knots))
        self.knots.copy_(torch.as_tensor(knots))
        self.knot_values.copy_(torch.as_tensor(values))
        self.calibrated.fill_(True)
        log.info("calibrated the pretrained output on %d peptides (%d knots)", len(rt), len(knots))

    def on_train_epoch_end(self) -> None:
        if self.calibrate_only:
            self.trainer.should_stop = True  # one pass is all a calibration needs


class RTEnsembleModel(RTModel):
    """DeepRT's pipeline: the CNN + BiLSTM features -> scaling + PCA -> SVR, RF, GB -> mean."""

    def __init__(
        self,
        *args: Any,
        pca_components: int = 32,
        max_fit_samples: int = 20000,
        svr: dict[str, Any] | None = None,
        random_forest: dict[str, Any] | None = None,
        gradient_boosting: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if len(self.systems) > 1:
            raise ValueError(
                f"model=deeprt_ensemble fits one stack to one LC system, got {len(self.systems)} "
                "systems: pick one set (data=deeprt_<set>)"
            )
        self.save_hyperparameters()
        self.stack: FeatureStack | None = None

    def fit_stack(self, loader: Any) -> None:
        """Fit the stack on the standardised RT of ``loader``'s peptides."""
        hp = self.hparams
        features, rt = collect_outputs(self, loader, self.head_input, lambda batch: batch["rt"])
        members = {name: hp[name] for name in MEMBERS}
        stack = FeatureStack(hp.pca_components, hp.max_fit_samples, **members)
        self.stack = stack.fit(features, (rt - hp.rt_mean) / hp.rt_std)

    def member_rts(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """Each regressor's RT for a batch, in ``rt_unit``."""
        features = self.head_input(batch).detach().float().cpu().numpy()
        members = self.stack.predict_members(features)
        return {k: v * self.hparams.rt_std + self.hparams.rt_mean for k, v in members.items()}

    def to_rt(self, raw: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        if self.stack is None or self.training:
            return super().to_rt(raw, batch)  # during training: the network's own head
        mean = np.mean(list(self.member_rts(batch).values()), axis=0)
        return torch.as_tensor(mean, dtype=torch.float32, device=self.device)

    def on_fit_end(self) -> None:
        """Fit the stack on the best weights' features and write it into the best checkpoint."""
        callback = self.trainer.checkpoint_callback
        best = getattr(callback, "best_model_path", "") if callback else ""
        if best:
            checkpoint = load_checkpoint(best, trusted=True)  # this run's own file
            self.load_state_dict(checkpoint["state_dict"])
        self.fit_stack(self.trainer.datamodule.train_dataloader())
        if best:
            self.on_save_checkpoint(checkpoint)
            torch.save(checkpoint, best)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # model class, predictor, description
        if self.stack is not None:
            checkpoint["sklearn_stack"] = pickle.dumps(self.stack)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "sklearn_stack" in checkpoint:  # our own checkpoint: see .stacking
            self.stack = load_stack(checkpoint["sklearn_stack"])
