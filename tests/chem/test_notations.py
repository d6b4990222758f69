"""All notations of one modified peptide parse to the same Peptide; errors name input+cause."""

from __future__ import annotations

import math

import pytest

from deepms.chem import (
    Peptide,
    format_peprec,
    format_unimod_bracket,
    parse_deeplc,
    parse_deeprt,
    parse_pdeep2,
    parse_peprec,
    parse_peptide,
    parse_proforma,
    parse_unimod_bracket,
)
from deepms.errors import InvalidResidueError, PeptideParseError, UnknownModificationError


def test_all_notations_agree_oxidation_cam() -> None:
    expected = parse_proforma("AC[Carbamidomethyl]DM[Oxidation]K")
    same = [
        parse_proforma("AC[UNIMOD:4]DM[U:Oxidation]K"),
        parse_unimod_bracket("_AC[UNIMOD:4]DM[UNIMOD:35]K_"),
        parse_peprec("ACDMK", "2|Carbamidomethyl|4|Oxidation"),
        parse_deeplc("ACDMK", "2|Carbamidomethyl|4|Oxidation"),
        parse_pdeep2("ACDMK", "2,Carbamidomethyl[C];4,Oxidation[M];"),
        parse_proforma("AC[+57.021]DM[+15.995]K"),
        parse_peptide("ACDMK", "ms2pip", "2|Carbamidomethyl|4|Oxidation"),
    ]
    assert all(p == expected for p in same)


def test_deeprt_digits_agree() -> None:
    expected = parse_proforma("PEM[Oxidation]S[Phospho]T[Phospho]Y[Phospho]K")
    assert parse_deeprt("PE1234K") == expected
    assert parse_peptide("PE1234K", "deeprt") == expected
    assert parse_deeplc("PEMSTYK", "3|Oxidation|4|Phospho|5|Phospho|6|Phospho") == expected


def test_terminal_mods_agree() -> None:
    expected = parse_proforma("[Acetyl]-PEPTIDEK-[Amidated]")
    assert parse_peprec("PEPTIDEK", "0|Acetyl|-1|Amidated") == expected
    assert parse_unimod_bracket("[UNIMOD:1]-PEPTIDEK-[UNIMOD:2]") == expected
    assert parse_pdeep2("PEPTIDEK", "0,Acetyl[ProteinN-term];9,Amidated[AnyC-term];") == expected


def test_pyro_glu_rule_all_notations() -> None:
    expected = parse_proforma("Q[Gln->pyro-Glu]PEK")
    assert parse_peprec("QPEK", "1|Pyro_glu") == expected
    assert parse_peprec("QPEK", "0|Pyro_glu") == expected
    assert parse_proforma("[Gln->pyro-Glu]-QPEK") == expected
    assert parse_unimod_bracket("[UNIMOD:28]-QPEK") == expected
    assert parse_pdeep2("QPEK", "1,Gln->pyro-Glu[AnyN-termQ];") == expected
    assert parse_peprec("EPEK", "1|Pyro_glu").mods[1].unimod_id == 27


@pytest.mark.parametrize("empty", ["-", "", None, math.nan])
def test_unmodified_markers(empty: object) -> None:
    assert parse_peprec("PEPK", empty) == Peptide.unmodified("PEPK")  # type: ignore[arg-type]
    assert parse_deeplc("PEPK", empty) == Peptide.unmodified("PEPK")  # type: ignore[arg-type]
    assert parse_pdeep2("PEPK", empty) == Peptide.unmodified("PEPK")  # type: ignore[arg-type]


def test_formatters_round_trip() -> None:
    pep = parse_proforma("[Acetyl]-PEM[Oxidation]K-[Amidated]")
    assert format_peprec(pep) == ("PEMK", "0|Acetyl|3|Oxidation|-1|Amidated")
    assert parse_peprec(*format_peprec(pep)) == pep
    assert format_unimod_bracket(pep) == "[UNIMOD:1]-PEM[UNIMOD:35]K-[UNIMOD:2]"
    assert parse_unimod_bracket(format_unimod_bracket(pep)) == pep
    assert format_peprec(Peptide.unmodified("PEPK")) == ("PEPK", "-")


@pytest.mark.parametrize(
    ("call", "error", "fragments"),
    [
        (lambda: parse_proforma("PEPM[Foo]K"), UnknownModificationError, ["PEPM[Foo]K", "'Foo'"]),
        (lambda: parse_peprec("PEPK", "2|Foo"), UnknownModificationError, ["PEPK", "'Foo'"]),
        (lambda: parse_pdeep2("PEPK", "2,Foo[E];"), UnknownModificationError, ["PEPK", "Foo"]),
        (lambda: parse_deeprt("PEP7K"), UnknownModificationError, ["PEP7K", "digit '7'"]),
        (lambda: parse_proforma("PEPXK"), InvalidResidueError, ["PEPXK", "'X'"]),
        (lambda: parse_peprec("PEBK", "-"), InvalidResidueError, ["PEBK", "'B'"]),
        (lambda: parse_unimod_bracket("_PEZK_"), InvalidResidueError, ["PEZK", "'Z'"]),
        (lambda: parse_peprec("PEPK", "9|Oxidation"), PeptideParseError, ["outside"]),
        (lambda: parse_peprec("PEPK", "x|Oxidation"), PeptideParseError, ["'x'", "integer"]),
        (lambda: parse_peprec("PEPK", "2|Oxidation|3"), PeptideParseError, ["pairs"]),
        (lambda: parse_pdeep2("PEPK", "2,Oxidation[M];"), PeptideParseError, ["site M"]),
        (lambda: parse_proforma("PEM[Oxidation][Oxidation]K"), PeptideParseError, ["two"]),
        (lambda: parse_proforma("PEP[Oxidation"), PeptideParseError, ["unclosed"]),
        (lambda: parse_proforma("PEPK/2"), PeptideParseError, ["'/'", "not supported"]),
    ],
)
def test_clear_errors(call, error: type[Exception], fragments: list[str]) -> None:
    with pytest.raises(error) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_notation() -> None:
    with pytest.raises(ValueError, match="unknown peptide notation 'foo'"):
        parse_peptide("PEPK", "foo")


@pytest.mark.parametrize(
    ("label", "proforma"),
    [
        ("_.HEEAPGHRPTTNPNASK._", "HEEAPGHRPTTNPNASK"),  # the de novo benchmark suite's flanks
        ("K.PEPTIDEK.A", "PEPTIDEK"),
        ("-.PEPTIDEK.-", "PEPTIDEK"),
        ("C+57.021PEPTM+15.995K", "C[Carbamidomethyl]PEPTM[Oxidation]K"),  # Casanovo
        ("+42.011PEPTIDE", "[Acetyl]-PEPTIDE"),
        ("AC[Carbamidomethyl]K", "AC[Carbamidomethyl]K"),  # ProForma passes through
    ],
)
def test_labelled_mgf_notations(label: str, proforma: str) -> None:
    from deepms.chem import parse_labelled_mgf

    assert parse_labelled_mgf(label).to_proforma() == proforma
    assert parse_peptide(label, "casanovo") == parse_labelled_mgf(label)


def test_labelled_mgf_bad_label_names_the_notation() -> None:
    from deepms.chem import parse_labelled_mgf

    with pytest.raises(PeptideParseError, match="labelled-MGF peptide 'PEP\\*TIDE'"):
        parse_labelled_mgf("PEP*TIDE")
