"""Peptide masses against textbook monoisotopic values, written out by hand."""

from __future__ import annotations

import pytest

from deepms.chem import Peptide, get_modification_table, parse_proforma
from deepms.errors import InvalidResidueError, PeptideParseError

# Textbook monoisotopic residue masses (Da).
P, E, M, K, C = 97.05276, 129.04259, 131.04049, 128.09496, 103.00919
OX, CAM, ACETYL = 15.99491, 57.02146, 42.01057
PROTON, WATER = 1.007276, 18.010565


def test_unmodified_mass_and_precursor_mz() -> None:
    pep = Peptide.unmodified("PEPMK")
    neutral = P + E + P + M + K + WATER
    assert pep.monoisotopic_mass == pytest.approx(neutral, abs=1e-4)
    assert pep.precursor_mz(1) == pytest.approx(neutral + PROTON, abs=1e-4)
    assert pep.precursor_mz(2) == pytest.approx((neutral + 2 * PROTON) / 2, abs=1e-4)
    with pytest.raises(ValueError, match="charge"):
        pep.precursor_mz(0)


def test_residue_masses_carry_terminal_mods() -> None:
    pep = parse_proforma("[Acetyl]-PEPM[Oxidation]K")
    expected = [P + ACETYL, E, P, M + OX, K]
    assert pep.residue_masses() == pytest.approx(expected, abs=1e-4)
    assert pep.monoisotopic_mass == pytest.approx(sum(expected) + WATER, abs=1e-4)
    assert not pep.residue_masses().flags.writeable


def test_value_equality_and_hash() -> None:
    a = parse_proforma("PEPM[Oxidation]K")
    b = parse_proforma("PEPM[UNIMOD:35]K")
    assert a == b and hash(a) == hash(b)
    assert a != Peptide.unmodified("PEPMK")
    assert len({a, b}) == 1
    assert a.length == 5 and len(a.mods) == 7


def test_proforma_round_trip() -> None:
    for text in ["[Acetyl]-PEPM[Oxidation]K", "PEPTIDEK-[Amidated]", "Q[Gln->pyro-Glu]PEK"]:
        pep = parse_proforma(text)
        assert pep.to_proforma() == text == str(pep)
        assert parse_proforma(pep.to_proforma()) == pep


def test_pyro_glu_moves_from_n_term_to_residue() -> None:
    table = get_modification_table()
    pyro = table.get("Gln->pyro-Glu")
    n_term = Peptide("QPEK", (pyro, None, None, None, None, None))
    assert n_term.mods[0] is None and n_term.mods[1] == pyro
    assert n_term == parse_proforma("Q[Gln->pyro-Glu]PEK")


def test_with_fixed_mod_skips_already_modified() -> None:
    pep = Peptide.unmodified("ACDCK").with_fixed_mod("Carbamidomethyl", "C")
    assert pep.to_proforma() == "AC[Carbamidomethyl]DC[Carbamidomethyl]K"
    assert pep.monoisotopic_mass == pytest.approx(
        Peptide.unmodified("ACDCK").monoisotopic_mass + 2 * CAM, abs=1e-4
    )


@pytest.mark.parametrize("seq", ["PEPXK", "PEPBK", "ZK", "JK", "pepk"])
def test_non_standard_residue(seq: str) -> None:
    with pytest.raises(InvalidResidueError, match=seq) as info:
        Peptide.unmodified(seq)
    assert "not a standard amino acid" in str(info.value)


def test_bad_mods_length_and_empty() -> None:
    with pytest.raises(PeptideParseError, match="expected 4"):
        Peptide("PK", (None,))
    with pytest.raises(PeptideParseError, match="empty"):
        Peptide("")


def test_cysteine_mass() -> None:
    pep = parse_proforma("C[Carbamidomethyl]K")
    assert pep.monoisotopic_mass == pytest.approx(C + CAM + K + WATER, abs=1e-4)
