"""The dinucleotide shuffle keeps every dinucleotide count exactly (DeepBind's backgrounds)."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.sequences import dinucleotide_counts, dinucleotide_shuffle


def test_counts_of_a_hand_made_sequence() -> None:
    assert dinucleotide_counts("AACGA") == {"AA": 1, "AC": 1, "CG": 1, "GA": 1}


@pytest.mark.parametrize("alphabet", ["ACGT", "ACGTN", "ACGU"])
def test_shuffle_preserves_dinucleotide_counts_and_ends(alphabet: str) -> None:
    rng = np.random.default_rng(7)
    changed = 0
    for _ in range(300):
        length = int(rng.integers(3, 120))
        sequence = "".join(rng.choice(list(alphabet), size=length))
        shuffled = dinucleotide_shuffle(sequence, rng)
        assert len(shuffled) == len(sequence)
        assert dinucleotide_counts(shuffled) == dinucleotide_counts(sequence)
        assert shuffled[0] == sequence[0] and shuffled[-1] == sequence[-1]
        changed += shuffled != sequence
    assert changed > 250  # a shuffle, not a copy


def test_shuffle_of_a_real_peak_is_reproducible_with_a_seed() -> None:
    peak = "TGCCCTCTTTTTCTTATCACCACGTGTGCCAGCTGTCATGGCAGCCTCCAGATGACACCACGTGTACAGGCATCATGGCG"
    first = dinucleotide_shuffle(peak, np.random.default_rng(1))
    assert first == dinucleotide_shuffle(peak, np.random.default_rng(1))
    assert dinucleotide_counts(first) == dinucleotide_counts(peak) and first != peak


def test_degenerate_sequences() -> None:
    assert dinucleotide_shuffle("A") == "A" and dinucleotide_shuffle("AC") == "AC"
    assert dinucleotide_shuffle("AAAAAA") == "AAAAAA"
    assert dinucleotide_shuffle("ACACACA") == "ACACACA"  # the only walk with these counts
