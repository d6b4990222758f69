"""A transformer encoder-decoder in the style of Casanovo (Yilmaz et al. 2022, ICML).

Peaks are encoded as a sinusoidal encoding of m/z (wavelengths from ``min_wavelength`` to
``max_wavelength`` Da, as depthcharge) plus a linear projection of the intensity, then a
transformer encoder. The decoder reads the residue tokens decoded so far; its first position
encodes the precursor (sinusoidal neutral mass + a learned charge embedding), as Casanovo's.
Unlike Casanovo (which decodes C- to N-terminal), decoding here runs N- to C-terminal, the
order of the shared beam search. Defaults are CPU-sized (Casanovo: 9 layers, 512 wide).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from deepms.tasks.deepnovo.model import DeNovoModule, Memory

MAX_CHARGE = 8


class SinusoidalEncoding(nn.Module):
    """Sine/cosine features of a real value over geometrically spaced wavelengths."""

    def __init__(self, dim: int, min_wavelength: float, max_wavelength: float) -> None:
        super().__init__()
        half = dim // 2
        base = min_wavelength / (2 * math.pi)
        scale = max_wavelength / min_wavelength
        exponent = torch.arange(half, dtype=torch.float64) / max(1, half - 1)
        self.register_buffer("wavelengths", base * scale**exponent, persistent=False)
        self.dim = dim

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        angles = values.double()[..., None] / self.wavelengths
        out = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).float()
        return nn.functional.pad(out, (0, self.dim - out.shape[-1]))


class CasanovoModel(DeNovoModule):
    """Transformer encoder over peaks, autoregressive transformer decoder over residues."""

    token_rows = ("embed.weight", "out.weight", "out.bias")

    def __init__(
        self,
        vocabulary: dict[str, Any],
        dim: int = 128,
        heads: int = 4,
        feedforward: int = 512,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        dropout: float = 0.1,
        min_wavelength: float = 0.001,
        max_wavelength: float = 10000.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary, **kwargs)
        self.save_hyperparameters()
        self.mz_encoding = SinusoidalEncoding(dim, min_wavelength, max_wavelength)
        self.intensity = nn.Linear(1, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, feedforward, dropout, batch_first=True, norm_first=False
        )
        self.encoder = nn.TransformerEncoder(layer, encoder_layers, enable_nested_tensor=False)
        self.mass_encoding = SinusoidalEncoding(dim, min_wavelength, max_wavelength)
        self.charge = nn.Embedding(MAX_CHARGE, dim)
        self.embed = nn.Embedding(self.n_tokens, dim, padding_idx=0)
        self.position = SinusoidalEncoding(dim, 1.0, 10000.0)
        dec = nn.TransformerDecoderLayer(dim, heads, feedforward, dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(dec, decoder_layers)
        self.out = nn.Linear(dim, self.n_tokens)

    def encode(self, batch: dict[str, Any]) -> Memory:
        x = self.mz_encoding(batch["mz"]) + self.intensity(batch["intensity"][..., None])
        padding = ~batch["peak_mask"]
        memory = self.encoder(x, src_key_padding_mask=padding)
        charge = batch["charge"].clamp(1, MAX_CHARGE) - 1
        precursor = self.mass_encoding(batch["precursor_mass"]) + self.charge(charge)
        return {"memory": memory, "padding": padding, "precursor": precursor}

    def decode_logits(
        self, memory: Memory, rows: torch.Tensor, prefix: torch.Tensor, last_only: bool = False
    ) -> torch.Tensor:
        rows = rows.to(self.device)
        n, t = prefix.shape
        x = torch.cat([memory["precursor"][rows][:, None], self.embed(prefix)], dim=1)
        x = x + self.position(torch.arange(t + 1, device=self.device, dtype=torch.float32))
        causal = torch.ones(t + 1, t + 1, dtype=torch.bool, device=self.device).triu(1)
        pad = torch.cat(
            [torch.zeros(n, 1, dtype=torch.bool, device=self.device), prefix == 0], dim=1
        )
        hidden = self.decoder(
            x,
            memory["memory"][rows],
            tgt_mask=causal,
            tgt_is_causal=True,
            tgt_key_padding_mask=pad,
            memory_key_padding_mask=memory["padding"][rows],
        )
        return self.out(hidden[:, -1:] if last_only else hidden)
