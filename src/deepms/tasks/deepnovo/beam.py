"""Beam search constrained by the precursor mass: every peptide it returns fits the precursor.

One ``step`` call per position covers all live beams of all spectra, so a batch costs at most
``max_length + 1`` model calls. Pruning, applied to every candidate residue:

* mass remaining: the prefix mass + H2O must stay below precursor + tolerance;
* knapsack: the remaining mass must be fillable, within tolerance, by at most the residues still
  allowed by ``max_length``. A table of the fewest residues reaching each mass (0.001 Da bins
  for the last 1000 Da, 0.01 Da above; built once per residue-mass set and cached) answers this.
  Each residue's rounding error is added to the query window, so the table may keep a hopeless
  prefix but never prunes one that can finish (tested against brute force).

EOS is allowed only when |prefix mass + H2O - (precursor - k * 1.00335)| is within tolerance for
some k in ``isotope_errors`` (ppm relative to that isotope-corrected mass). Every mass-valid EOS
among the live beams finishes a hypothesis, whatever its rank; the best finished one by mean
residue probability (ties: total log-probability, EOS included) is returned, or ``None`` when none
finished (the spectrum is unsequenced). Hypotheses that reach ``max_length`` residues without a
valid EOS die.

I/L: the vocabulary maps I to L, so one token stands for both; nothing here depends on it.
Tokens of mass 0 (padding, other specials) and ``forbidden_ids`` are never emitted; a residue
token of negative mass is refused (the mass-remaining rule needs masses that only add up).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from pyteomics import mass as _mass

from deepms.chem.peptide import H2O
from deepms.tasks.deepnovo.knapsack import UNREACHABLE, completion_table

ISOTOPE_SPACING: float = _mass.nist_mass["C"][13][0] - _mass.nist_mass["C"][12][0]

StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class DecodedPeptide:
    """One decoded peptide; ``score`` is the mean of ``residue_scores``."""

    tokens: list[int]  # residue token ids, N- to C-terminus, no special tokens
    residue_scores: list[float]  # probability of each chosen residue
    score: float  # peptide score: mean of residue_scores
    mass: float  # neutral monoisotopic mass (residues + H2O)
    mass_error_ppm: float  # vs the precursor neutral mass (after isotope correction)


def _tolerance_da(targets: torch.Tensor, tolerance: float, unit: str) -> torch.Tensor:
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance}")
    if unit.lower() == "ppm":
        return targets.abs() * tolerance * 1e-6
    if unit.lower() == "da":
        return torch.full_like(targets, tolerance)
    raise ValueError(f"tolerance_unit must be 'ppm' or 'Da', got {unit!r}")


def _check_ids(ids: Sequence[int], n_vocab: int) -> list[int]:
    out = [int(i) for i in ids]
    for i in out:
        if not 0 <= i < n_vocab:
            raise ValueError(f"token id {i} outside the vocabulary of {n_vocab} tokens")
    return out


def _residue_mask(masses: torch.Tensor, eos_id: int, forbidden_ids: Sequence[int]) -> torch.Tensor:
    """Tokens a beam may emit: positive mass, not EOS, not forbidden."""
    special = torch.zeros_like(masses, dtype=torch.bool)
    special[_check_ids([eos_id, *forbidden_ids], masses.numel())] = True
    allowed = (masses > 0) & ~special
    negative = ((masses < 0) & ~special).nonzero().flatten().tolist()
    if negative:
        raise ValueError(f"tokens {negative} have negative mass; forbid them or fold them in")
    if not bool(allowed.any()):
        raise ValueError("no token of positive mass is allowed: nothing can be decoded")
    return allowed


class _Finished:
    """Best finished hypothesis per spectrum, kept as tensors so each step updates in bulk."""

    def __init__(self, n_batch: int, max_length: int) -> None:
        self.score = torch.full((n_batch,), -math.inf, dtype=torch.float64)
        self.total = torch.full((n_batch,), -math.inf, dtype=torch.float64)
        self.tokens = torch.zeros(n_batch, max_length, dtype=torch.long)
        self.lp = torch.zeros(n_batch, max_length, dtype=torch.float64)
        self.length = torch.zeros(n_batch, dtype=torch.long)
        self.mass = torch.zeros(n_batch, dtype=torch.float64)
        self.ppm = torch.zeros(n_batch, dtype=torch.float64)

    def update(
        self,
        tokens: torch.Tensor,
        res_lp: torch.Tensor,
        cum: torch.Tensor,
        mass: torch.Tensor,
        eos_lp: torch.Tensor,
        target: torch.Tensor,
        tol: torch.Tensor,
    ) -> None:
        """Finish every live beam whose mass + H2O fits an isotope target; keep the best."""
        err = mass[..., None] + H2O - target[:, None, :]  # (B, K, I)
        fits = err.abs() <= tol[:, None, :]
        done = fits.any(-1) & torch.isfinite(cum) & torch.isfinite(eos_lp)
        if not bool(done.any()):
            return
        score = torch.where(done, res_lp.exp().mean(-1), -math.inf)
        top = score.max(-1).values
        total = torch.where(done & (score == top[:, None]), cum + eos_lp, -math.inf)
        top_total, j = total.max(-1)
        better = done.any(-1) & (
            (top > self.score) | ((top == self.score) & (top_total > self.total))
        )
        b = better.nonzero().flatten()
        if b.numel() == 0:
            return
        jb, t = j[b], tokens.shape[-1]
        self.score[b], self.total[b] = top[b], top_total[b]
        self.tokens[b, :t], self.lp[b, :t] = tokens[b, jb], res_lp[b, jb]
        self.length[b] = t
        self.mass[b] = mass[b, jb] + H2O
        ppm = (err[b, jb] / target[b] * 1e6).masked_fill(~fits[b, jb], math.inf)
        self.ppm[b] = ppm.gather(1, ppm.abs().argmin(1, keepdim=True)).squeeze(1)

    def results(self) -> list[DecodedPeptide | None]:
        out: list[DecodedPeptide | None] = []
        for b, n in enumerate(self.length.tolist()):
            if n == 0:
                out.append(None)
                continue
            out.append(
                DecodedPeptide(
                    tokens=self.tokens[b, :n].tolist(),
                    residue_scores=self.lp[b, :n].exp().tolist(),
                    score=float(self.score[b]),
                    mass=float(self.mass[b]),
                    mass_error_ppm=float(self.ppm[b]),
                )
            )
        return out


def beam_search(
    step: StepFn,
    precursor_mass: torch.Tensor,
    residue_masses: torch.Tensor,
    *,
    eos_id: int,
    forbidden_ids: Sequence[int] = (),
    beam_size: int = 5,
    max_length: int = 30,
    tolerance: float = 20.0,
    tolerance_unit: str = "ppm",
    isotope_errors: Sequence[int] = (0,),
    first_only_ids: Sequence[int] = (),
) -> list[DecodedPeptide | None]:
    """Decode one peptide per spectrum, or ``None`` where none fits the precursor mass.

    ``step(prefix, rows)`` gets the (N, t) residue tokens of every live beam and the (N,) batch
    index each belongs to (both on ``precursor_mass.device``) and returns (N, V) next-token
    log-probabilities. ``first_only_ids`` (N-terminal modifications) may only start a peptide.
    Pass masses as float64: float32 rounds a 2 kDa precursor by up to 0.03 ppm.
    """
    if beam_size < 1 or not 1 <= max_length < UNREACHABLE:
        raise ValueError(
            f"beam_size must be >= 1 and max_length in 1..{UNREACHABLE - 1}, "
            f"got {beam_size}, {max_length}"
        )
    if not isotope_errors:
        raise ValueError("isotope_errors must name at least one isotope (0 = monoisotopic)")
    device = precursor_mass.device
    prec = precursor_mass.detach().to("cpu", torch.float64).reshape(-1)
    if not bool(torch.isfinite(prec).all()) or bool((prec <= 0).any()):
        raise ValueError("precursor masses must be finite and > 0 (neutral peptide mass, Da)")
    masses = residue_masses.detach().to("cpu", torch.float64).reshape(-1)
    n_batch, n_vocab, k = prec.numel(), masses.numel(), beam_size
    allowed = _residue_mask(masses, eos_id, forbidden_ids)
    later = allowed.clone()
    later[_check_ids(first_only_ids, n_vocab)] = False
    iso = torch.tensor([float(i) for i in isotope_errors], dtype=torch.float64)
    target = prec[:, None] - iso[None, :] * ISOTOPE_SPACING  # (B, I)
    tol = _tolerance_da(target, tolerance, tolerance_unit)
    if n_batch == 0:
        return []
    knapsack = completion_table(masses[later].tolist(), float((target + tol).max()))

    tokens = torch.zeros(n_batch, k, 0, dtype=torch.long)
    res_lp = torch.zeros(n_batch, k, 0, dtype=torch.float64)
    cum = torch.full((n_batch, k), -math.inf, dtype=torch.float64)
    cum[:, 0] = 0.0
    mass = torch.zeros(n_batch, k, dtype=torch.float64)
    finished = _Finished(n_batch, max_length)
    arange_b = torch.arange(n_batch)[:, None]

    for t in range(max_length + 1):
        alive = torch.isfinite(cum)
        if not bool(alive.any()):
            break
        bi, ki = alive.nonzero(as_tuple=True)
        out = step(tokens[bi, ki].to(device), bi.to(device))
        if tuple(out.shape) != (bi.numel(), n_vocab):
            want = (bi.numel(), n_vocab)
            raise ValueError(f"step returned shape {tuple(out.shape)}, expected {want}")
        lp = out.detach().to("cpu", torch.float64)
        if bool(torch.isnan(lp).any()):
            raise ValueError("step returned NaN log-probabilities")
        full = torch.full((n_batch, k, n_vocab), -math.inf, dtype=torch.float64)
        full[bi, ki] = lp

        if t > 0:  # finish every beam whose mass fits the precursor
            finished.update(tokens, res_lp, cum, mass, full[..., eos_id], target, tol)
        if t == max_length:
            break

        new_mass = mass[..., None] + masses  # (B, K, V)
        cand = cum[..., None] + full
        ok = (allowed if t == 0 else later).expand_as(cand) & torch.isfinite(cand)
        remaining = target[:, None, None, :] - H2O - new_mass[..., None]  # (B, K, V, I)
        idx = ok.nonzero(as_tuple=True)
        ok[idx] = knapsack.feasible(remaining[idx], tol[idx[0]], max_length - t - 1).any(-1)
        cand = cand.masked_fill(~ok, -math.inf)
        top, flat = cand.reshape(n_batch, k * n_vocab).topk(k, dim=1)
        parent, token = flat // n_vocab, flat % n_vocab
        tokens = torch.cat([tokens[arange_b, parent], token[..., None]], dim=-1)
        res_lp = torch.cat([res_lp[arange_b, parent], full[arange_b, parent, token][..., None]], -1)
        mass = new_mass[arange_b, parent, token]
        cum = top
    return finished.results()
