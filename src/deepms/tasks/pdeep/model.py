"""pDeep's model: a BiLSTM over the peptide's residues with a dense output per bond.

Each residue position gets its one-hot residue, modification features and the spectrum's
acquisition features (charge, NCE, fragmentation, analyser), as pDeep feeds them to every step.
The output for the bond between residues k and k+1 reads both positions' hidden states.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deepms.chem.encoding import PeptideEncoder
from deepms.metrics import (
    MedianPearson,
    MedianSpectralAngle,
    PCCAbove,
    masked_pearson,
    spectral_angle,
)
from deepms.training.module import TaskModule

LOSSES = ("masked_mse", "spectral_angle")


def masked_mse(preds: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over possible ions only."""
    diff = torch.where(mask, preds - target, torch.zeros_like(preds))
    return (diff**2).sum() / mask.sum().clamp(min=1)


def spectral_angle_loss(
    preds: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-7
) -> torch.Tensor:
    """Prosit's training loss: mean of 2*arccos(cos)/pi over spectra (0 = identical)."""
    p = torch.where(mask, preds, torch.zeros_like(preds)).flatten(1)
    t = torch.where(mask, target, torch.zeros_like(target)).flatten(1)
    p = p / p.norm(dim=1, keepdim=True).clamp(min=eps)
    t = t / t.norm(dim=1, keepdim=True).clamp(min=eps)
    cos = (p * t).sum(1).clamp(-1 + eps, 1 - eps)
    return (2 * torch.arccos(cos) / np.pi).mean()


class PDeepModel(TaskModule):
    """BiLSTM fragment-intensity predictor; hyperparameters include the encoder vocabulary."""

    def __init__(
        self,
        n_residue_tokens: int,
        n_meta: int,
        fragment_charges: list[int],
        encoder: dict[str, Any],
        source_names: list[str] | None = None,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.2,
        loss: str = "spectral_angle",
        optimizer: dict[str, Any] | None = None,
        n_plot_spectra: int = 4,
    ) -> None:
        super().__init__(optimizer)
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: use one of {LOSSES}")
        self.save_hyperparameters()
        self.encoder = PeptideEncoder.from_dict(encoder)
        self.n_channels = 2 * len(fragment_charges)
        n_inputs = n_residue_tokens + self.encoder.n_mod_features + n_meta
        self.lstm = nn.LSTM(
            n_inputs,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Sequential(
            nn.Linear(4 * hidden_size, hidden_size),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, self.n_channels),
        )
        self.loss_fn = masked_mse if loss == "masked_mse" else spectral_angle_loss
        self.metrics = nn.ModuleDict(
            {
                stage: nn.ModuleDict(
                    {
                        "median_pcc": MedianPearson(),
                        "median_sa": MedianSpectralAngle(),
                        "pcc90": PCCAbove(0.9),
                    }
                )
                for stage in ("val", "test")
            }
        )
        self._test_examples: list[dict[str, Any]] = []

    def forward(
        self,
        residues: torch.Tensor,
        mods: torch.Tensor,
        meta: torch.Tensor,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """[B, L] residues, [B, L, M] mods, [B, F] meta -> [B, L-1, channels] intensities."""
        onehot = nn.functional.one_hot(residues, self.hparams.n_residue_tokens).float()
        steps = residues.shape[1]
        x = torch.cat([onehot, mods, meta.unsqueeze(1).expand(-1, steps, -1)], dim=-1)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hidden, _ = self.lstm(packed)
        hidden, _ = pad_packed_sequence(hidden, batch_first=True, total_length=steps)
        bonds = torch.cat([hidden[:, :-1], hidden[:, 1:]], dim=-1)
        return self.head(bonds)

    def _predict_batch(self, batch: dict[str, Any]) -> torch.Tensor:
        return self(batch["residues"], batch["mods"], batch["meta"], batch["lengths"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        preds = self._predict_batch(batch)
        loss = self.loss_fn(preds, batch["target"], batch["mask"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["lengths"]))
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        preds = self._predict_batch(batch)
        target, mask = batch["target"], batch["mask"]
        size = len(batch["lengths"])
        self.log(
            f"{stage}_loss", self.loss_fn(preds, target, mask), batch_size=size, sync_dist=True
        )
        flat = (preds.clamp(min=0).flatten(1), target.flatten(1), mask.flatten(1))
        for name, metric in self.metrics[stage].items():
            metric.update(*flat)
            self.log(f"{stage}_{name}", metric, batch_size=size, prog_bar=name == "median_pcc")
        return preds

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_test_epoch_start(self) -> None:
        self._test_examples: list[dict[str, Any]] = []

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        preds = self._evaluate(batch, "test").clamp(min=0)
        flat = (preds.flatten(1), batch["target"].flatten(1), batch["mask"].flatten(1))
        pcc, sa = masked_pearson(*flat), spectral_angle(*flat)
        for i in range(len(batch["lengths"])):
            n = int(batch["lengths"][i]) - 1
            self._test_examples.append(
                {
                    "peptide": batch["peptides"][i],
                    "charge": batch["charges"][i],
                    "source": int(batch["source"][i]),
                    "pcc": float(pcc[i]),
                    "sa": float(sa[i]),
                    "pred": preds[i, :n].detach().cpu().numpy(),
                    "target": batch["target"][i, :n].cpu().numpy(),
                }
            )

    def on_test_epoch_end(self) -> None:
        """Per-source medians (the pooled median hides a weak source) and plots for MLflow."""
        from deepms.training.distributed import gather_lists

        examples = self._test_examples
        scores = gather_lists([(e["source"], e["pcc"]) for e in examples])  # all ranks' spectra
        names = self.hparams.source_names or []
        for index, name in enumerate(names):
            pcc = [value for source, value in scores if source == index]
            if pcc:
                self.log(f"test_median_pcc_{name}", float(np.median(pcc)), rank_zero_only=True)
                self.log(f"test_n_spectra_{name}", float(len(pcc)), rank_zero_only=True)
        if self.trainer.is_global_zero and examples:
            self._log_plots(examples)

    def _log_plots(self, examples: list[dict[str, Any]]) -> None:
        from deepms.chem import fragment_mz, parse_proforma
        from deepms.plots import histogram, mirror_plot
        from deepms.tracking import log_figure

        pcc = np.array([e["pcc"] for e in examples])
        log_figure(
            self.loggers, histogram(pcc, "Pearson r per test spectrum"), "plots/test_pcc.png"
        )
        order = np.argsort(pcc)[::-1]
        count = min(self.hparams.n_plot_spectra, len(order))
        picks = order[np.linspace(0, len(order) - 1, count).round().astype(int)] if count else []
        charges = tuple(self.hparams.fragment_charges)
        for rank, index in enumerate(picks):
            e = examples[index]
            peptide = parse_proforma(e["peptide"])
            mz = fragment_mz(peptide, charges=charges)[..., 0]  # [bonds, 2, charges]
            n_bonds = len(peptide.sequence) - 1
            labels = [
                f"{ion}{k + 1 if ion == 'b' else n_bonds - k}{'+' * z}"
                for k in range(n_bonds)
                for ion in ("b", "y")
                for z in charges
            ]
            fig = mirror_plot(
                mz.reshape(-1),
                e["target"].reshape(-1),
                e["pred"].reshape(-1),
                labels,
                title=f"{e['peptide']} {e['charge']}+  PCC {e['pcc']:.3f}  SA {e['sa']:.3f}",
            )
            log_figure(self.loggers, fig, f"plots/mirror_{rank}_pcc{e['pcc']:.2f}.png")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._predict_batch(batch).clamp(min=0)
