"""De novo metrics (Casanovo's definitions) on peptide pairs worked through by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepms.chem import RESIDUE_MASSES
from deepms.errors import InvalidResidueError
from deepms.metrics.denovo import (
    DeNovoMetricAccumulator,
    aa_match,
    aa_match_batch,
    denovo_metrics,
    precision_coverage,
    precision_coverage_auc,
)

# The vocabulary writes L for I/L, so the default mass table has no I.
MASSES = {aa: m for aa, m in RESIDUE_MASSES.items() if aa != "I"}
WITH_I = dict(RESIDUE_MASSES)
# Toy masses: B is 0.6 Da heavier than A (beyond the 0.5 Da prefix window), D 0.05 Da heavier
# than C (inside the 0.1 Da residue window).
TOY = {"A": 100.0, "B": 100.6, "C": 50.0, "D": 50.05}


def test_identical_peptides_match_everywhere() -> None:
    matched, peptide = aa_match("PEPTLDE", "PEPTLDE", MASSES)
    assert matched.tolist() == [True] * 7
    assert peptide


def test_i_and_l_are_one_residue_by_default_and_differ_when_asked() -> None:
    matched, peptide = aa_match("PEPTLDE", "PEPTIDE", MASSES)  # I is read as L
    assert matched.all() and peptide
    matched, peptide = aa_match("PEPTLDE", "PEPTIDE", WITH_I, equate_il=False)
    assert matched.tolist() == [True, True, True, True, False, True, True]
    assert not peptide


def test_shifted_prefix_keeps_the_matching_suffix() -> None:
    # EP|PTIDE vs PE|PTIDE: prefix masses of the first two residues differ by 32 Da each, both
    # pairs mismatch; from P (prefix 226.095 on both sides) on, PTIDE matches: 5 of 7.
    matched, peptide = aa_match(list("EPPTIDE"), list("PEPTIDE"), MASSES)
    assert matched.tolist() == [False, False, True, True, True, True, True]
    assert not peptide


def test_same_residue_with_a_prefix_off_by_14_da_does_not_match() -> None:
    # GKA vs AKG: the K sits at the same position, but its prefix (57.02 vs 71.04) and suffix
    # (71.04 vs 57.02) masses both differ by 14 Da: nothing matches.
    matched, peptide = aa_match("GKA", "AKG", MASSES)
    assert matched.tolist() == [False, False, False]
    assert not peptide


def test_residue_within_0_1_da_matches_only_with_a_prefix_or_suffix_within_0_5() -> None:
    # AD vs AC: prefix A = A, D - C = 0.05 < 0.1 -> both match (mass-based, like K/Q).
    assert aa_match("AD", "AC", TOY) == (pytest.approx([True, True]), True)
    # AD vs BC: prefixes differ by 0.6 (A/B), but the suffixes D/C agree within 0.05 -> D matches.
    assert aa_match("AD", "BC", TOY)[0].tolist() == [False, True]
    # ADA vs BCB: D is 0.05 from C, but its prefix and its suffix are both 0.6 off -> no match.
    assert aa_match("ADA", "BCB", TOY)[0].tolist() == [False, False, False]
    # K/Q differ by 0.036 Da: a match under Casanovo's mass rule.
    assert aa_match("PEPQ", "PEPK", MASSES)[1]


def test_modified_tokens_and_unknown_tokens() -> None:
    masses = {**MASSES, "M[UNIMOD:35]": MASSES["M"] + 15.994915}
    matched, peptide = aa_match(["P", "M[UNIMOD:35]", "K"], ["P", "M", "K"], masses)
    # +16 Da on M: P matches by prefix, K by suffix, M[Oxidation] vs M does not.
    assert matched.tolist() == [True, False, True]
    assert not peptide
    with pytest.raises(InvalidResidueError, match="X"):
        aa_match("PXK", "PEK", MASSES)


BATCH_PRED = [list("PEPTLDE"), None, list("EPPTLDE"), []]
BATCH_TRUE = [list("PEPTLDE"), list("PEPTLDE"), list("PEPTLDE"), list("AK")]


def test_batch_counts_unsequenced_as_nothing_predicted() -> None:
    batch = aa_match_batch(BATCH_PRED, BATCH_TRUE, MASSES)
    assert (batch.n_aa_match, batch.n_aa_pred, batch.n_aa_true) == (7 + 5, 14, 23)
    assert batch.peptide_match.tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="2 predictions but 1"):
        aa_match_batch([None, None], [["A"]], MASSES)


def test_denovo_metrics_by_hand() -> None:
    scores = [0.9, 0.99, 0.5, 0.7]  # 0.99 and 0.7 belong to unsequenced spectra: ignored
    m = denovo_metrics(BATCH_PRED, BATCH_TRUE, scores, MASSES)
    assert m["aa_precision"] == pytest.approx(12 / 14)
    assert m["aa_recall"] == pytest.approx(12 / 23)
    assert m["peptide_recall"] == pytest.approx(1 / 4)
    assert m["peptide_precision"] == pytest.approx(1 / 2)
    assert m["coverage"] == pytest.approx(2 / 4)
    # Ranked: 0.9 right, 0.5 wrong, then the two unsequenced (-inf, one tie) -> points
    # (0.25, 1), (0.5, 0.5), (1, 0.25), anchored at (0, 1): 0.25 + 0.1875 + 0.1875.
    assert m["pc_auc"] == pytest.approx(0.625)


def test_precision_coverage_curve_and_area_by_hand() -> None:
    scores = [0.2, 0.9, 0.5, 0.7, 0.5]
    correct = [False, True, True, False, True]
    coverage, precision = precision_coverage(scores, correct)
    # 0.9 T | 0.7 F | 0.5 T, 0.5 T (one threshold) | 0.2 F
    assert coverage.tolist() == pytest.approx([0.2, 0.4, 0.8, 1.0])
    assert precision.tolist() == pytest.approx([1.0, 0.5, 0.75, 0.6])
    # (0,1)-(0.2,1): 0.2; -(0.4,0.5): 0.15; -(0.8,0.75): 0.25; -(1,0.6): 0.135
    assert precision_coverage_auc(scores, correct) == pytest.approx(0.735)
    assert precision_coverage_auc([3.0, 2.0, 1.0], [True] * 3) == pytest.approx(1.0)
    assert precision_coverage_auc([3.0, 2.0, 1.0], [False] * 3) == 0.0
    assert math.isnan(precision_coverage_auc([], []))
    with pytest.raises(ValueError, match="NaN"):
        precision_coverage([np.nan], [True])


def test_accumulator_equals_one_shot_and_merges_states() -> None:
    scores = [0.9, 0.99, 0.5, 0.7]
    expected = denovo_metrics(BATCH_PRED, BATCH_TRUE, scores, MASSES)
    acc = DeNovoMetricAccumulator(MASSES)
    acc.update(BATCH_PRED[:2], BATCH_TRUE[:2], scores[:2])
    other = DeNovoMetricAccumulator(MASSES)
    other.update(BATCH_PRED[2:], BATCH_TRUE[2:], scores[2:])
    acc.merge(other.state())
    assert acc.compute() == pytest.approx(expected)
    acc.reset()
    assert acc.state()["counts"] == [0, 0, 0]
    assert math.isnan(acc.compute()["peptide_recall"])
    with pytest.raises(ValueError, match="1 scores for 2"):
        acc.update(BATCH_PRED[:2], BATCH_TRUE[:2], [0.5])
