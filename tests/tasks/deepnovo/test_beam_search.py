"""Precursor-mass-constrained beam search: toy vocabularies, hand-written step functions, fuzz."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import numpy as np
import pytest
import torch

from deepms.chem import H2O, RESIDUE_MASSES, get_modification_table
from deepms.tasks.deepnovo.beam import ISOTOPE_SPACING, beam_search
from deepms.tasks.deepnovo.knapsack import MassKnapsack, completion_table

PAD, EOS, G, A, S, W = range(6)
TOY = torch.tensor(
    [0.0, 0.0, *(RESIDUE_MASSES[aa] for aa in "GASW")], dtype=torch.float64
)  # 57.02146, 71.03711, 87.03203, 186.07931


def mass_of(tokens: list[int], masses: torch.Tensor = TOY) -> float:
    return math.fsum(float(masses[t]) for t in tokens) + H2O


def prefer(logits: list[float]):
    """A step function that always gives the same next-token distribution."""
    lp = torch.log_softmax(torch.tensor(logits, dtype=torch.float64), -1)

    def step(prefix: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        assert prefix.dtype == torch.long and rows.dtype == torch.long
        assert prefix.shape[0] == rows.shape[0]
        return lp.expand(prefix.shape[0], -1)

    return step


def fits(mass: float, precursor: float, tol: float, unit: str, isotopes=(0,)) -> bool:
    for k in isotopes:
        target = precursor - k * ISOTOPE_SPACING
        limit = tol * 1e-6 * target if unit == "ppm" else tol
        if abs(mass - target) <= limit + 1e-9:
            return True
    return False


def brute_force_any(precursor: float, tol: float, unit: str, max_len: int = 6, isotopes=(0,)):
    residues = [float(m) for m in TOY[2:]]
    return any(
        fits(math.fsum(combo) + H2O, precursor, tol, unit, isotopes)
        for n in range(1, max_len + 1)
        for combo in itertools.combinations_with_replacement(residues, n)
    )


GAS = mass_of([G, A, S])  # 233.10 Da; no other composition of G/A/S/W within 60 ppm
ONE_GAS = torch.tensor([GAS], dtype=torch.float64)


def test_favourite_residue_that_would_overshoot_is_pruned() -> None:
    step = prefer([0, 0, 0, 0, 0, 10.0])  # W is 99.97 % likely, but GAS leaves no room for it
    (out,) = beam_search(step, ONE_GAS, TOY, eos_id=EOS, forbidden_ids=[PAD])
    assert out is not None
    assert sorted(out.tokens) == [G, A, S]
    p = 1 / (5 + math.exp(10))  # each chosen residue's probability under the softmax
    assert out.residue_scores == pytest.approx([p, p, p])
    assert out.score == pytest.approx(p)
    assert out.mass == pytest.approx(GAS, abs=1e-9)
    assert abs(out.mass_error_ppm) < 1e-6


def test_impossible_precursor_is_unsequenced() -> None:
    step = prefer([0.0] * 6)
    precursors = torch.tensor([100.0 + H2O, 50.0 + H2O, GAS + 0.05], dtype=torch.float64)
    assert not any(brute_force_any(float(p), 20, "ppm") for p in precursors)
    out = beam_search(step, precursors, TOY, eos_id=EOS, forbidden_ids=[PAD])
    assert out == [None, None, None]


def test_ppm_and_da_tolerances() -> None:
    step = prefer([0.0] * 6)
    shifted = torch.tensor([GAS + 0.05], dtype=torch.float64)  # 214 ppm heavy
    assert beam_search(step, shifted, TOY, eos_id=EOS, forbidden_ids=[PAD]) == [None]
    (out,) = beam_search(
        step, shifted, TOY, eos_id=EOS, forbidden_ids=[PAD], tolerance=0.1, tolerance_unit="Da"
    )
    assert sorted(out.tokens) == [G, A, S]
    assert out.mass_error_ppm == pytest.approx(-0.05 / (GAS + 0.05) * 1e6)
    with pytest.raises(ValueError, match="tolerance_unit"):
        beam_search(step, shifted, TOY, eos_id=EOS, tolerance_unit="mDa")


def test_isotope_error_is_allowed_only_when_asked() -> None:
    step = prefer([0.0] * 6)
    heavy = torch.tensor([GAS + ISOTOPE_SPACING], dtype=torch.float64)  # 13C peak picked
    assert not brute_force_any(float(heavy[0]), 20, "ppm")
    assert beam_search(step, heavy, TOY, eos_id=EOS, forbidden_ids=[PAD]) == [None]
    (out,) = beam_search(step, heavy, TOY, eos_id=EOS, forbidden_ids=[PAD], isotope_errors=(0, 1))
    assert sorted(out.tokens) == [G, A, S]
    assert out.mass == pytest.approx(GAS, abs=1e-9)
    assert abs(out.mass_error_ppm) < 1e-6  # against the isotope-corrected mass


def test_batch_of_spectra_with_different_precursors() -> None:
    favourite = {0: S, 1: W, 2: A, 3: G}
    calls = []

    def step(prefix: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        calls.append((prefix.shape[1], Counter(rows.tolist())))
        logits = torch.zeros(rows.shape[0], 6, dtype=torch.float64)
        logits[torch.arange(rows.shape[0]), [favourite[int(r)] for r in rows]] = 3.0
        return logits.log_softmax(-1)

    precursors = torch.tensor(
        [GAS, mass_of([G, G, W]), mass_of([A] * 4), 100.0 + H2O], dtype=torch.float64
    )
    out = beam_search(step, precursors, TOY, eos_id=EOS, forbidden_ids=[PAD], beam_size=3)
    assert Counter(out[0].tokens) == Counter([G, A, S])
    assert Counter(out[1].tokens) == Counter([G, G, W])
    assert out[2].tokens == [A, A, A, A]  # the favourite at every step
    assert out[3] is None
    for result, precursor in zip(out[:3], precursors[:3], strict=True):
        assert fits(mass_of(result.tokens), float(precursor), 20, "ppm")
    assert [t for t, _ in calls] == list(range(len(calls)))  # one call per position
    assert len(calls) <= 31
    assert all(max(rows.values()) <= 3 for _, rows in calls)  # never more than beam_size


def real_vocabulary() -> tuple[torch.Tensor, int]:
    """pad, eos, 18 residues (L for I/L), C+CAM, M, M+Ox, and N-terminal acetyl (first only)."""
    table = get_modification_table()
    residues = [RESIDUE_MASSES[aa] for aa in "ADEFGHKLMNPQRSTVWY"]
    residues += [RESIDUE_MASSES["C"] + table.get("Carbamidomethyl").monoisotopic_mass]
    residues += [RESIDUE_MASSES["M"] + table.get("Oxidation").monoisotopic_mass]
    acetyl = table.get("Acetyl").monoisotopic_mass
    masses = torch.tensor([0.0, 0.0, *residues, acetyl], dtype=torch.float64)
    return masses, masses.numel() - 1


@pytest.mark.parametrize(
    ("tolerance", "unit", "isotopes"),
    [(20.0, "ppm", (0,)), (10.0, "ppm", (0, 1)), (0.02, "Da", (0, 1, 2))],
)
def test_random_logits_every_peptide_fits_its_precursor(tolerance, unit, isotopes) -> None:
    masses, acetyl = real_vocabulary()
    rng = random.Random(7)
    gen = torch.Generator().manual_seed(7)
    residue_ids = list(range(2, acetyl))
    precursors = []
    for _ in range(48):
        peptide = [rng.choice(residue_ids) for _ in range(rng.randint(6, 20))]
        precursors.append(mass_of(peptide, masses) + rng.choice(isotopes) * ISOTOPE_SPACING)

    def step(prefix: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.randn(rows.shape[0], masses.numel(), generator=gen).log_softmax(-1)

    out = beam_search(
        step,
        torch.tensor(precursors, dtype=torch.float64),
        masses,
        eos_id=EOS,
        forbidden_ids=[PAD],
        first_only_ids=[acetyl],
        tolerance=tolerance,
        tolerance_unit=unit,
        isotope_errors=isotopes,
    )
    decoded = [(r, p) for r, p in zip(out, precursors, strict=True) if r is not None]
    assert len(decoded) >= 0.9 * len(precursors)  # the knapsack keeps beams completable
    for result, precursor in decoded:
        assert 1 <= len(result.tokens) <= 30
        assert PAD not in result.tokens and EOS not in result.tokens
        assert acetyl not in result.tokens[1:]
        assert result.mass == pytest.approx(mass_of(result.tokens, masses), abs=1e-9)
        assert fits(result.mass, precursor, tolerance, unit, isotopes)
        assert len(result.residue_scores) == len(result.tokens)
        assert result.score == pytest.approx(np.mean(result.residue_scores))


@pytest.mark.parametrize("resolution", [0.001, 0.01])
def test_knapsack_never_prunes_a_completable_mass(resolution: float) -> None:
    residues = [RESIDUE_MASSES[aa] for aa in "GASPV"]
    table = MassKnapsack(residues, 600.0, resolution)
    sums = {0: np.zeros(1)}
    for n in range(1, 5):
        combos = itertools.combinations_with_replacement(residues, n)
        sums[n] = np.concatenate([sums[n - 1], [math.fsum(c) for c in combos]])
    rng = np.random.default_rng(3)
    exact = rng.choice(sums[4], 300) + rng.uniform(-0.02, 0.02, 300)
    remaining = torch.tensor(np.r_[exact, rng.uniform(-1, 450, 300)])
    tol = 0.004
    for n in range(5):
        got = table.feasible(remaining, torch.full_like(remaining, tol), n).numpy()
        gap = np.abs(remaining.numpy()[:, None] - sums[n][None, :]).min(axis=1)
        assert np.all(got[gap <= tol])  # never prunes what can be completed
        assert np.all(gap[got] <= tol + 2 * n * table.error + 1e-6)  # keeps only near-misses
        assert (~got).sum() > 100  # and does prune


def test_completion_table_is_cached_and_grows() -> None:
    residues = [RESIDUE_MASSES[aa] for aa in "GASPVT"]
    small = completion_table(residues, 800.0)
    assert completion_table(list(reversed(residues)), 700.0) is small
    big = completion_table(residues, 2500.0)
    assert big.max_mass >= 2500.0 and big.coarse is not None
    remaining = torch.tensor([1800.0, 57.02146 + 71.03711])
    assert big.feasible(remaining, torch.full((2,), 0.01), 40).tolist() == [True, True]
    assert big.feasible(torch.tensor([30.0]), torch.full((1,), 0.01), 40).tolist() == [False]


def test_bad_arguments_give_clear_errors() -> None:
    step = prefer([0.0] * 6)
    with pytest.raises(ValueError, match="negative mass"):
        beam_search(
            step,
            ONE_GAS,
            torch.tensor([0.0, 0.0, -17.0, 57.0]),
            eos_id=1,
        )
    with pytest.raises(ValueError, match="outside the vocabulary"):
        beam_search(step, ONE_GAS, TOY, eos_id=9)
    with pytest.raises(ValueError, match="precursor masses"):
        beam_search(step, torch.tensor([-1.0], dtype=torch.float64), TOY, eos_id=EOS)
    with pytest.raises(ValueError, match="expected"):
        beam_search(prefer([0.0] * 5), ONE_GAS, TOY, eos_id=EOS)
    assert beam_search(step, torch.zeros(0), TOY, eos_id=EOS) == []
