"""Alphabets, the non-standard letter rule, encodings and length handling on hand-made sequences."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.sequences import DNA, PROTEIN, RNA, SequenceEncoder, crop, pad_batch
from deepms.sequences.properties import SCALES, property_channels, property_matrix


def test_protein_one_hot_and_stated_rule_for_non_standard_letters() -> None:
    profile = PROTEIN.profile("ACUBZJX")
    assert profile.shape == (7, 20)
    assert profile[0, PROTEIN.letters.index("A")] == 1.0 and profile[0].sum() == 1.0
    assert profile[2].tolist() == profile[1].tolist()  # U (selenocysteine) reads as C
    b, z, j = profile[3], profile[4], profile[5]
    assert b[PROTEIN.letters.index("D")] == b[PROTEIN.letters.index("N")] == 0.5
    assert z[PROTEIN.letters.index("E")] == z[PROTEIN.letters.index("Q")] == 0.5
    assert j[PROTEIN.letters.index("I")] == j[PROTEIN.letters.index("L")] == 0.5
    assert np.allclose(profile[6], 1 / 20)  # X: any residue
    assert np.allclose(profile.sum(1), 1.0)


def test_protein_indices_pad_zero_unknown_last() -> None:
    # A=1, C=2, U->C=2, O->K=9, B and X -> unknown (21)
    assert PROTEIN.indices("ACUOBX").tolist() == [1, 2, 2, 9, 21, 21]
    assert PROTEIN.n_tokens == 22 and PROTEIN.unknown_index == 21


def test_nucleic_acid_rules() -> None:
    assert DNA.profile("ACGTN").tolist() == [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
        [0.25, 0.25, 0.25, 0.25],
    ]
    assert DNA.profile("acgu").tolist() == DNA.profile("ACGT").tolist()  # soft mask, U -> T
    assert RNA.profile("ACGT").tolist() == RNA.profile("ACGU").tolist()  # T -> U in RNA
    assert DNA.profile("R")[0].tolist() == [0.5, 0, 0.5, 0]  # R = A|G
    assert DNA.reverse_complement("AACGTN") == "NACGTT"
    assert RNA.reverse_complement("AACGU") == "ACGUU"


def test_cleaning_strips_whitespace_and_stop_and_rejects_other_characters() -> None:
    assert PROTEIN.clean("mk ta\nY*") == "MKTAY"
    with pytest.raises(ValueError, match=r"\['1', '@'\]"):
        PROTEIN.clean("MK1@")
    with pytest.raises(ValueError, match="not dna"):
        DNA.clean("ACGE")


def test_property_scales_published_values_and_standardisation() -> None:
    assert SCALES["hydrophobicity"]["I"] == 4.5 and SCALES["hydrophobicity"]["R"] == -4.5
    assert SCALES["polarity"]["D"] == 13.0 and SCALES["polarity"]["L"] == 4.9
    assert SCALES["vdw_volume"]["G"] == 0.0 and SCALES["vdw_volume"]["W"] == 8.08
    assert SCALES["charge"]["K"] == 1.0 and SCALES["charge"]["E"] == -1.0
    matrix = property_matrix()
    assert np.allclose(matrix.mean(0), 0, atol=1e-6) and np.allclose(matrix.std(0), 1, atol=1e-6)
    raw = property_matrix(["charge"], standardise=False)
    assert raw[PROTEIN.letters.index("H"), 0] == pytest.approx(0.09)
    channels = property_channels("IX")
    assert np.allclose(channels[1], 0, atol=1e-6)  # X = mean residue = 0 after standardising
    assert channels[0, 0] == pytest.approx(matrix[PROTEIN.letters.index("I"), 0])


def test_crop_modes() -> None:
    text = "ABCDEFGHIJ"
    assert crop(text, 4, "start") == "ABCD"
    assert crop(text, 4, "end") == "GHIJ"
    assert crop(text, 4, "center") == "DEFG"
    assert crop(text, 5, "ends") == "ABCIJ"  # DeepLoc: first and last halves
    assert crop(text, None) == text and crop("AB", 4, "ends") == "AB"
    assert crop(np.arange(10), 4, "ends").tolist() == [0, 1, 8, 9]


def test_pad_batch_masks_padding() -> None:
    x, mask = pad_batch([np.ones((2, 3)), np.ones((4, 3))])
    assert x.shape == (2, 4, 3) and x[0, 2:].sum() == 0
    assert mask.tolist() == [[True, True, False, False], [True] * 4]
    _, longer = pad_batch([np.ones(2, dtype=np.int64)], pad_to=5)
    assert longer.shape == (1, 5)


def test_encoder_layouts_and_round_trip() -> None:
    onehot = SequenceEncoder("protein", "onehot", max_length=3, crop="end")
    assert onehot.encode("MKAC").shape == (3, 20) and onehot.n_channels == 20
    assert SequenceEncoder("protein", "index").encode("AC").tolist() == [1, 2]
    both = SequenceEncoder("protein", "onehot+properties")
    assert both.n_channels == 24 and both.encode("W")[0, 18] == 1.0
    props = SequenceEncoder("protein", "properties")
    assert np.allclose(props.encode("KD")[:, 3], property_matrix()[[8, 2], 3])
    state = both.to_dict()
    assert SequenceEncoder.from_dict(state).to_dict() == state
    with pytest.raises(ValueError, match="proteins only"):
        SequenceEncoder("dna", "properties")
