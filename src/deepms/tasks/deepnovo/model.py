"""The de novo sequencing LightningModule shared by both architectures (DeepNovo, Casanovo-style).

A subclass encodes spectra (:meth:`encode`) and scores the next residue after any prefix
(:meth:`decode_logits`); this base class turns that into teacher-forced cross-entropy training,
greedy decoding on validation (fast: ``val_aa_*`` and ``val_peptide_recall`` each epoch) and
beam search constrained by the precursor mass on test (:mod:`.beam`, beam ``beam_size``), with
Casanovo's metrics (:mod:`deepms.metrics.denovo`) pooled and per source, decoding throughput
(``test_spectra_per_s``) and a precision-coverage plot. A beam-search result is either within
``precursor_tolerance`` of the precursor mass or None: the spectrum is reported unsequenced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from deepms.tasks.deepnovo.vocab import EOS_ID, PAD_ID, Vocabulary
from deepms.training.module import TaskModule

Memory = dict[str, torch.Tensor]


class DeNovoModule(TaskModule):
    """Training, decoding and metrics; subclasses provide the network."""

    #: parameters whose first dimension indexes tokens (re-mapped by token on fine-tuning)
    token_rows: tuple[str, ...] = ()

    def __init__(
        self,
        vocabulary: dict[str, Any],
        preprocessing: dict[str, Any] | None = None,
        source_names: list[str] | None = None,
        max_length: int = 30,
        beam_size: int = 5,
        precursor_tolerance: float = 20.0,
        tolerance_unit: str = "ppm",
        isotope_errors: tuple[int, ...] = (0,),
        label_smoothing: float = 0.0,
        optimizer: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer)
        self.vocab = Vocabulary.from_dict(vocabulary)
        masses = torch.tensor(self.vocab.masses, dtype=torch.float64)
        self.register_buffer("token_masses", masses, persistent=False)
        self.n_tokens = len(self.vocab)
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=PAD_ID, label_smoothing=label_smoothing)
        self.decoded: list[dict[str, Any]] = []  # last evaluation's predictions (tests, plots)

    # -- the network (subclasses) ------------------------------------------------------------
    def encode(self, batch: dict[str, Any]) -> Memory:
        """Per-spectrum tensors (first dimension = spectrum) the decoder reads."""
        raise NotImplementedError

    def decode_logits(
        self, memory: Memory, rows: torch.Tensor, prefix: torch.Tensor, last_only: bool = False
    ) -> torch.Tensor:
        """Logits ``(N, t+1, V)`` of the token after each prefix ``prefix[:, :j]``, j = 0..t,
        for spectra ``rows`` of ``memory``; only j = t (``(N, 1, V)``) with ``last_only``."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Teacher-forced logits ``(B, L+1, V)`` for ``batch["tokens"]`` (which end in EOS)."""
        memory = self.encode(batch)
        rows = torch.arange(len(batch["charge"]), device=self.device)
        return self.decode_logits(memory, rows, batch["tokens"][:, :-1])

    def prefix_masses(self, prefix: torch.Tensor) -> torch.Tensor:
        """``(N, t+1)`` residue mass of ``prefix[:, :j]`` for j = 0..t (float64)."""
        masses = self.token_masses[prefix]
        zero = torch.zeros(prefix.shape[0], 1, dtype=masses.dtype, device=masses.device)
        return torch.cat([zero, masses.cumsum(1)], dim=1)

    def step_fn(self, memory: Memory) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``step(prefix, rows) -> (N, V)`` log-probabilities of the next token, for decoding.

        EOS is not allowed first and N-terminal modification tokens only first.
        """
        n_terminal = self.vocab.n_terminal_ids

        def step(prefix: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            prefix = prefix.to(self.device)
            logits = self.decode_logits(memory, rows, prefix, last_only=True)[:, -1].float()
            logits[:, PAD_ID] = -torch.inf
            if prefix.shape[1] == 0:
                logits[:, EOS_ID] = -torch.inf
            elif n_terminal:
                logits[:, n_terminal] = -torch.inf
            return torch.log_softmax(logits, dim=-1)

        return step

    # -- decoding ----------------------------------------------------------------------------
    @torch.no_grad()
    def greedy(self, batch: dict[str, Any]) -> list[tuple[list[str], list[float], float]]:
        """Greedy decoding without the mass constraint (validation): tokens, scores, mean score."""
        memory = self.encode(batch)
        n = len(batch["charge"])
        rows = torch.arange(n, device=self.device)
        step = self.step_fn(memory)
        prefix = torch.zeros(n, 0, dtype=torch.long, device=self.device)
        scores = torch.zeros(n, 0, device=self.device)
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        for _ in range(self.hparams.max_length + 1):
            logp = step(prefix, rows)
            best, token = logp.max(dim=-1)
            token = torch.where(done, torch.full_like(token, PAD_ID), token)
            prefix = torch.cat([prefix, token[:, None]], dim=1)
            scores = torch.cat([scores, best[:, None]], dim=1)
            done |= token == EOS_ID
            if bool(done.all()):
                break
        out = []
        for i in range(n):
            tokens = self.vocab.decode(prefix[i].tolist())
            residue_scores = scores[i, : len(tokens)].exp().tolist()
            out.append((tokens, residue_scores, float(np.mean(residue_scores)) if tokens else 0.0))
        return out

    @torch.no_grad()
    def beam(self, batch: dict[str, Any], beam_size: int | None = None) -> list[Any]:
        """Beam search constrained by the precursor mass (:func:`.beam.beam_search`)."""
        from deepms.tasks.deepnovo.beam import beam_search

        memory = self.encode(batch)
        return beam_search(
            self.step_fn(memory),
            batch["precursor_mass"].double().cpu(),
            self.token_masses.cpu(),
            eos_id=EOS_ID,
            forbidden_ids=(PAD_ID,),
            beam_size=int(beam_size or self.hparams.beam_size),
            max_length=int(self.hparams.max_length),
            tolerance=float(self.hparams.precursor_tolerance),
            tolerance_unit=str(self.hparams.tolerance_unit),
            isotope_errors=tuple(int(i) for i in self.hparams.isotope_errors),
            first_only_ids=tuple(self.vocab.n_terminal_ids),
        )

    def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> list[Any]:
        """``trainer.predict``: beam-search every spectrum of the batch (None = unsequenced)."""
        return self.beam(batch)

    # -- training and evaluation -------------------------------------------------------------
    def _loss(self, batch: dict[str, Any]) -> torch.Tensor:
        logits = self(batch)
        return self.loss_fn(logits.reshape(-1, self.n_tokens), batch["tokens"].reshape(-1))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["charge"]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self.decoded = []

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        size = len(batch["charge"])
        self.log("val_loss", self._loss(batch), batch_size=size, sync_dist=True, prog_bar=True)
        for i, (tokens, residue_scores, score) in enumerate(self.greedy(batch)):
            self.decoded.append(self._record(batch, i, tokens, residue_scores, score, None))

    def on_validation_epoch_end(self) -> None:
        from deepms.tasks.deepnovo.evaluation import log_metrics

        log_metrics(self, "val", keys=("aa_precision", "aa_recall", "peptide_recall", "pc_auc"))

    def on_test_epoch_start(self) -> None:
        self.decoded = []
        self._decode_seconds = 0.0

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        size = len(batch["charge"])
        self.log("test_loss", self._loss(batch), batch_size=size, sync_dist=True)
        start = time.perf_counter()
        results = self.beam(batch)
        self._decode_seconds += time.perf_counter() - start
        for i, result in enumerate(results):
            if result is None:
                self.decoded.append(self._record(batch, i, [], [], float("-inf"), None))
                continue
            tokens = self.vocab.decode(result.tokens)
            scores = [float(s) for s in result.residue_scores][: len(tokens)]
            record = self._record(batch, i, tokens, scores, float(result.score), result)
            self.decoded.append(record)

    def on_test_epoch_end(self) -> None:
        from deepms.tasks.deepnovo.evaluation import log_metrics, log_test_extras

        log_metrics(self, "test", per_source=True)
        log_test_extras(self, self._decode_seconds)

    def _record(
        self,
        batch: dict[str, Any],
        i: int,
        tokens: list[str],
        residue_scores: list[float],
        score: float,
        result: Any,
    ) -> dict[str, Any]:
        true = self.vocab.decode(batch["tokens"][i].tolist()) if "tokens" in batch else []
        return {
            "pred": tokens,
            "true": true,
            "score": score,
            "aa_scores": residue_scores,
            "source": int(batch["source"][i]),
            "precursor_mass": float(batch["precursor_mass"][i]),
            "charge": int(batch["charge"][i]),
            "mass": float(getattr(result, "mass", float("nan"))) if result is not None else None,
        }

    # -- fine-tuning ---------------------------------------------------------------------------
    def load_pretrained(self, checkpoint: dict[str, Any], mode: str = "finetune"):
        """Weights of a model trained on other data (e.g. synthetic spectra): every tensor by name;
        token-indexed rows (:attr:`token_rows`) by token, so vocabularies may differ."""
        from deepms.training.finetune import FinetuneError, transfer_weights

        if mode != "finetune":
            raise FinetuneError(f"{type(self).__name__}: mode={mode!r} is not supported")
        old_tokens = checkpoint["hyper_parameters"]["vocabulary"]["tokens"]
        state = dict(checkpoint["state_dict"])
        own = self.state_dict()
        if list(old_tokens) != self.vocab.tokens:
            index = {t: i for i, t in enumerate(old_tokens)}
            for name in self.token_rows:
                if name in state and name in own:
                    rows = own[name].detach().clone()
                    for j, token in enumerate(self.vocab.tokens):
                        if token in index:
                            rows[j] = state[name][index[token]]
                    state[name] = rows
        return transfer_weights(self, state)
