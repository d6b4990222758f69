"""DeepNovo (Tran et al. 2017, PNAS 114:8247): spectrum-CNN + ion-CNN + LSTM decoder.

- **Spectrum CNN**: the spectrum binned at ``bin_size`` Da up to ``max_mz`` (max intensity per bin),
  max-pooled, two convolutions, a dense layer with the precursor mass and charge: the LSTM's
  initial state (DeepNovo's "spectrum-CNN initialises the LSTM").
- **LSTM** over the residues decoded so far (a learned start vector first).
- **Ion CNN**: for every candidate next residue, the theoretical m/z of the ions the prefix plus
  that residue would make -- b, y (the complement from the precursor mass), b2+, y2+, b-H2O,
  y-H2O, b-NH3, y-NH3, DeepNovo's 8 ion types -- and a window of ``window`` Da around each in the
  binned spectrum; a small CNN over (ion type x window) gives each candidate a feature vector,
  combined with the LSTM state into that candidate's score, added to the LSTM's own logits.

Sizes default small enough for CPU training in minutes (DeepNovo used 512 LSTM units and 0.1 Da
bins up to 3000 m/z).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from deepms.chem import NEUTRAL_LOSSES, PROTON
from deepms.chem.peptide import H2O
from deepms.tasks.deepnovo.model import DeNovoModule, Memory

MAX_CHARGE = 8


def bin_spectrum(
    mz: torch.Tensor, intensity: torch.Tensor, mask: torch.Tensor, bin_size: float, n_bins: int
) -> torch.Tensor:
    """``(B, n_bins)`` max intensity per ``bin_size`` Da bin; peaks beyond the last bin dropped."""
    index = torch.floor(mz / bin_size).long()
    valid = mask & (index >= 0) & (index < n_bins)
    index = torch.where(valid, index, torch.zeros_like(index))
    values = torch.where(valid, intensity, torch.zeros_like(intensity))
    out = torch.zeros(mz.shape[0], n_bins, dtype=intensity.dtype, device=mz.device)
    return out.scatter_reduce(1, index, values, reduce="amax", include_self=True)


class DeepNovoModel(DeNovoModule):
    """DeepNovo's architecture behind the shared de novo training and decoding."""

    token_rows = ("embed.weight", "lstm_out.weight", "lstm_out.bias", "candidate_embed.weight")

    def __init__(
        self,
        vocabulary: dict[str, Any],
        bin_size: float = 0.1,
        max_mz: float = 2500.0,
        window: float = 0.5,
        pool: int = 10,
        embed_dim: int = 64,
        hidden_size: int = 256,
        conv_channels: int = 32,
        ion_channels: int = 32,
        dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary, **kwargs)
        self.save_hyperparameters()
        self.n_bins = math.ceil(max_mz / bin_size)
        self.half_window = max(1, round(window / bin_size))
        offsets = torch.arange(-self.half_window, self.half_window + 1)
        self.register_buffer("offsets", offsets, persistent=False)
        v, h = self.n_tokens, hidden_size
        self.spectrum_cnn = nn.Sequential(
            nn.MaxPool1d(pool),
            nn.Conv1d(1, conv_channels, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(4),
            nn.Conv1d(conv_channels, conv_channels, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(4),
            nn.Flatten(),
        )
        flat = conv_channels * (self.n_bins // pool // 4 // 4)
        self.spectrum_dense = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(flat + 1 + MAX_CHARGE, 2 * h), nn.Tanh()
        )
        self.embed = nn.Embedding(v, embed_dim, padding_idx=0)
        self.start = nn.Parameter(torch.zeros(embed_dim))
        self.lstm = nn.LSTM(embed_dim, h, batch_first=True)
        self.lstm_out = nn.Linear(h, v)
        n_ions = 8
        self.ion_cnn = nn.Sequential(
            nn.Conv1d(n_ions, ion_channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(ion_channels, ion_channels, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(ion_channels * offsets.numel(), ion_channels),
            nn.ReLU(),
        )
        self.candidate_embed = nn.Embedding(v, ion_channels)
        self.state_proj = nn.Linear(h, ion_channels)
        self.candidate_out = nn.Sequential(
            nn.ReLU(), nn.Dropout(dropout), nn.Linear(ion_channels, 1)
        )

    def encode(self, batch: dict[str, Any]) -> Memory:
        binned = bin_spectrum(
            batch["mz"], batch["intensity"], batch["peak_mask"], self.hparams.bin_size, self.n_bins
        )
        features = self.spectrum_cnn(binned[:, None])
        mass = batch["precursor_mass"].float()[:, None] / 1000.0
        charge = nn.functional.one_hot(batch["charge"].clamp(1, MAX_CHARGE) - 1, MAX_CHARGE)
        state = self.spectrum_dense(torch.cat([features, mass, charge.float()], dim=1))
        h0, c0 = state.chunk(2, dim=1)
        return {
            "binned": binned,
            "h0": h0.contiguous(),
            "c0": c0.contiguous(),
            "precursor_mass": batch["precursor_mass"].double(),
        }

    def _ion_features(self, memory: Memory, rows: torch.Tensor, prefix: torch.Tensor, last: bool):
        """``(N, t+1 or 1, V, 8, window)`` binned intensities around each candidate's ions."""
        masses = self.prefix_masses(prefix)
        masses = masses[:, -1:] if last else masses
        b = masses[..., None] + self.token_masses  # (N, positions, V) b-ion residue masses
        y = memory["precursor_mass"][rows][:, None, None] - b  # y neutral (includes H2O)
        nh3 = NEUTRAL_LOSSES["NH3"]
        ions = torch.stack(
            [
                b + PROTON,
                y + PROTON,
                (b + 2 * PROTON) / 2,
                (y + 2 * PROTON) / 2,
                b + PROTON - H2O,
                y + PROTON - H2O,
                b + PROTON - nh3,
                y + PROTON - nh3,
            ],
            dim=-1,
        )
        index = torch.floor(ions / self.hparams.bin_size).long()[..., None] + self.offsets
        valid = (index >= 0) & (index < self.n_bins)
        flat = rows[:, None, None, None, None] * self.n_bins + index.clamp(0, self.n_bins - 1)
        values = memory["binned"].reshape(-1)[flat]
        return torch.where(valid, values, torch.zeros_like(values))

    def _last_hidden(
        self, memory: Memory, rows: torch.Tensor, prefix: torch.Tensor
    ) -> torch.Tensor | None:
        """One LSTM step per decoding step: the state of each prefix's parent (the same spectrum's
        prefix one token shorter, cached from the previous call) advanced by its last token.
        Re-running the LSTM over whole prefixes made decoding quadratic in peptide length.
        Returns None (full recompute) when a parent is not in the cache."""
        t = prefix.shape[1]
        cache = memory.get("lstm_cache")
        if t == 0:
            inputs, state = (
                self.start.expand(len(rows), 1, -1),
                (
                    memory["h0"][rows][None],
                    memory["c0"][rows][None],
                ),
            )
        else:
            if cache is None or cache["prefix"].shape[1] != t - 1:
                return None
            keys_old = torch.cat([cache["rows"][:, None], cache["prefix"]], dim=1)
            keys_new = torch.cat([rows[:, None], prefix[:, :-1]], dim=1)
            unique, inverse = torch.unique(
                torch.cat([keys_old, keys_new]), dim=0, return_inverse=True
            )
            slot = torch.full((len(unique),), -1, dtype=torch.long, device=prefix.device)
            slot[inverse[: len(keys_old)]] = torch.arange(len(keys_old), device=prefix.device)
            parent = slot[inverse[len(keys_old) :]]
            if bool((parent < 0).any()):
                return None
            inputs = self.embed(prefix[:, -1:])
            state = (cache["h"][:, parent], cache["c"][:, parent])
        hidden, (h, c) = self.lstm(inputs, state)
        memory["lstm_cache"] = {"prefix": prefix, "rows": rows, "h": h, "c": c}
        return hidden

    def decode_logits(
        self, memory: Memory, rows: torch.Tensor, prefix: torch.Tensor, last_only: bool = False
    ) -> torch.Tensor:
        rows = rows.to(self.device)
        n = prefix.shape[0]
        hidden = self._last_hidden(memory, rows, prefix) if last_only else None
        if hidden is None:
            inputs = torch.cat([self.start.expand(n, 1, -1), self.embed(prefix)], dim=1)
            state = (memory["h0"][rows][None], memory["c0"][rows][None])
            hidden, _ = self.lstm(inputs, state)  # (N, t+1, H)
            hidden = hidden[:, -1:] if last_only else hidden
        ions = self._ion_features(memory, rows, prefix, last_only)  # (N, positions, V, 8, W)
        v, positions = self.n_tokens, hidden.shape[1]
        features = self.ion_cnn(ions.reshape(-1, *ions.shape[-2:]))
        per_candidate = features.reshape(n, positions, v, -1)
        combined = (
            per_candidate
            + self.candidate_embed.weight[None, None]
            + self.state_proj(hidden)[:, :, None, :]
        )
        return self.lstm_out(hidden) + self.candidate_out(combined).squeeze(-1)
