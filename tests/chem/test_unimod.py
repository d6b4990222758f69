"""Unimod table: offline load, names, accessions, aliases, mass deltas, clear errors."""

from __future__ import annotations

import socket

import pytest

from deepms.chem import Modification, get_modification_table
from deepms.chem.unimod import _load_table
from deepms.errors import PeptideParseError, UnknownModificationError


def test_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Unimod load tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    table = _load_table()
    assert len(table) > 1000


@pytest.mark.parametrize(
    ("key", "name", "unimod_id", "mass"),
    [
        ("Oxidation", "Oxidation", 35, 15.994915),
        ("oxidation", "Oxidation", 35, 15.994915),
        ("UNIMOD:4", "Carbamidomethyl", 4, 57.021464),
        ("U:35", "Oxidation", 35, 15.994915),
        ("U:Phospho", "Phospho", 21, 79.966331),
        (21, "Phospho", 21, 79.966331),
        ("1", "Acetyl", 1, 42.010565),
        ("Deamidation", "Deamidated", 7, 0.984016),
        ("Carbamyl", "Carbamyl", 5, 43.005814),
        ("GlyGly", "GG", 121, 114.042927),
        ("Malonyl", "Malonyl", 747, 86.000394),
        ("Phospho ", "Phospho", 21, 79.966331),  # DeepLC writes a trailing space
    ],
)
def test_lookup(key: str | int, name: str, unimod_id: int, mass: float) -> None:
    mod = get_modification_table().get(key)
    assert mod == Modification(name, unimod_id, pytest.approx(mass, abs=1e-6))
    assert mod.accession == f"UNIMOD:{unimod_id}"


def test_pyro_glu_alias_depends_on_residue() -> None:
    table = get_modification_table()
    assert table.get("Pyro_glu", residue="Q").unimod_id == 28
    assert table.get("Pyro_glu", residue="Q").name == "Gln->pyro-Glu"
    assert table.get("Pyro_glu", residue="E").unimod_id == 27
    assert table.get("Gln->pyro-Glu").monoisotopic_mass == pytest.approx(-17.026549, abs=1e-6)


@pytest.mark.parametrize(
    ("delta", "residue", "terminus", "name"),
    [
        ("+15.995", "M", None, "Oxidation"),
        ("+57.021", "C", None, "Carbamidomethyl"),
        ("+0.984", "N", None, "Deamidated"),
        ("+79.966", "S", None, "Phospho"),
        ("+42.011", "P", "N-term", "Acetyl"),
        ("-17.027", "Q", "N-term", "Gln->pyro-Glu"),
    ],
)
def test_mass_delta(delta: str, residue: str, terminus: str | None, name: str) -> None:
    assert get_modification_table().get(delta, residue, terminus).name == name


@pytest.mark.parametrize("key", ["NotAMod", "UNIMOD:999999", "+1234.5"])
def test_unknown_modification_names_key(key: str) -> None:
    with pytest.raises(UnknownModificationError, match=key.replace("+", r"\+")) as info:
        get_modification_table().get(key)
    assert isinstance(info.value, PeptideParseError)
    assert "Unimod" in str(info.value)


def test_phospho_composition_is_hpo3_as_in_unimod() -> None:
    table = get_modification_table()
    assert table.composition("Phospho") == {"H": 1, "O": 3, "P": 1}
    assert table.composition("Oxidation") == {"O": 1}
    assert table.composition("Deamidated") == {"H": -1, "N": -1, "O": 1}  # negative counts kept
    assert table.composition("Label:13C(6)") == {"13C": 6, "C": -6}  # isotopes keep their symbol


@pytest.mark.parametrize(
    "name", ["Phospho", "Crotonyl", "GG", "HexNAc", "Biotin", "Nitro", "Trimethyl", "Amidated"]
)
def test_composition_adds_up_to_the_unimod_monoisotopic_mass(name: str) -> None:
    from pyteomics import mass

    table = get_modification_table()
    formula = {("C[13]" if e == "13C" else e): n for e, n in table.composition(name).items()}
    computed = mass.calculate_mass(composition=formula)
    assert computed == pytest.approx(table.get(name).monoisotopic_mass, abs=1e-4)
