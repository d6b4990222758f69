"""Fragment m/z of PEPM[Oxidation]K checked against values computed by hand from textbook masses."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.chem import NEUTRAL_LOSSES, Peptide, fragment_ions, fragment_mz, parse_proforma

P, E, M, OX, K = 97.05276, 129.04259, 131.04049, 15.99491, 128.09496
PROTON, WATER, AMMONIA, PHOSPHORIC = 1.007276, 18.010565, 17.026549, 97.976896
PEPTIDE = "PEPM[Oxidation]K"


def mz(neutral: float, z: int) -> float:
    return (neutral + z * PROTON) / z


def test_shape_and_bond_convention() -> None:
    table = fragment_mz(PEPTIDE)
    assert table.shape == (4, 2, 2, 1) and table.dtype == np.float64
    # bond k: b_{k+1} and y_{n-k-1}; n = 5
    b2, y1 = P + E, K + WATER
    assert table[1, 0, 0, 0] == pytest.approx(mz(b2, 1), abs=1e-4)  # b2+ = 227.10263
    assert table[1, 0, 1, 0] == pytest.approx(mz(b2, 2), abs=1e-4)  # b2++ = 114.05495
    assert table[3, 1, 0, 0] == pytest.approx(mz(y1, 1), abs=1e-4)  # y1+ = 147.11280
    assert table[3, 1, 1, 0] == pytest.approx(mz(y1, 2), abs=1e-4)  # y1++ = 74.06004
    assert mz(b2, 1) == pytest.approx(227.10263, abs=1e-5)
    assert mz(y1, 1) == pytest.approx(147.11280, abs=1e-5)


def test_oxidised_residue_in_both_series() -> None:
    table = fragment_mz(PEPTIDE, charges=(1,))
    b4 = P + E + P + M + OX
    y2 = M + OX + K + WATER
    assert table[3, 0, 0, 0] == pytest.approx(mz(b4, 1), abs=1e-4)
    assert table[2, 1, 0, 0] == pytest.approx(mz(y2, 1), abs=1e-4)
    # complementary ions add up to the precursor: b_i + y_{n-i} = M + 2 protons
    pep = parse_proforma(PEPTIDE)
    assert np.allclose(table[:, 0, 0, 0] + table[:, 1, 0, 0], pep.monoisotopic_mass + 2 * PROTON)


def test_neutral_losses() -> None:
    assert NEUTRAL_LOSSES["H2O"] == pytest.approx(WATER, abs=1e-6)
    assert NEUTRAL_LOSSES["NH3"] == pytest.approx(AMMONIA, abs=1e-6)
    assert NEUTRAL_LOSSES["H3PO4"] == pytest.approx(PHOSPHORIC, abs=1e-5)
    table = fragment_mz(PEPTIDE, charges=(1, 2), losses=(None, "H2O", "NH3", "H3PO4"))
    assert table.shape == (4, 2, 2, 4)
    b2, y1 = P + E, K + WATER
    assert table[1, 0, 0, 1] == pytest.approx(mz(b2 - WATER, 1), abs=1e-4)  # 209.09206
    assert table[3, 1, 0, 2] == pytest.approx(mz(y1 - AMMONIA, 1), abs=1e-4)  # 130.08625
    assert table[3, 1, 1, 3] == pytest.approx(mz(y1 - PHOSPHORIC, 2), abs=1e-4)
    assert table[1, 0, 1, 0] - table[1, 0, 1, 1] == pytest.approx(WATER / 2, abs=1e-6)


def test_charge_three_and_ion_order() -> None:
    table = fragment_mz(PEPTIDE, charges=(3,), ion_types=("y", "b"))
    assert table[0, 0, 0, 0] == pytest.approx(mz(E + P + M + OX + K + WATER, 3), abs=1e-4)
    assert table[0, 1, 0, 0] == pytest.approx(mz(P, 3), abs=1e-4)


def test_fragment_ions_flat_list() -> None:
    ions = fragment_ions(PEPTIDE, charges=(1, 2), losses=(None, "H2O"))
    assert len(ions) == 4 * 2 * 2 * 2
    by_label = {ion.label: ion for ion in ions}
    assert by_label["b2"].mz == pytest.approx(mz(P + E, 1), abs=1e-4)
    assert by_label["y1^2"].mz == pytest.approx(mz(K + WATER, 2), abs=1e-4)
    assert by_label["b2-H2O"].loss == "H2O"
    assert [i.number for i in ions if i.ion_type == "y" and i.charge == 1 and i.loss is None] == [
        1,
        2,
        3,
        4,
    ]


def test_accepts_string_and_single_residue() -> None:
    assert np.array_equal(fragment_mz(PEPTIDE), fragment_mz(parse_proforma(PEPTIDE)))
    assert fragment_mz(Peptide.unmodified("K")).shape == (0, 2, 2, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ion_types": ("c",)}, "ion type"),
        ({"losses": ("CO2",)}, "neutral loss"),
        ({"charges": (0,)}, "charges"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fragment_mz(PEPTIDE, **kwargs)


def test_batched_fragment_mz_equals_the_per_peptide_table() -> None:
    from deepms.chem import fragment_mz_batch

    peptides = [parse_proforma(p) for p in (PEPTIDE, "PEPTIDEK", "AK")]
    batch = fragment_mz_batch(peptides, (1, 2))
    assert batch.shape == (3, 7, 4)  # [B, longest bonds, b z1 z2, y z1 z2]
    for i, peptide in enumerate(peptides):
        bonds = len(peptide.sequence) - 1
        single = fragment_mz(peptide, charges=(1, 2))[..., 0].reshape(bonds, 4)
        np.testing.assert_allclose(batch[i, :bonds], single, rtol=0, atol=1e-9)
    assert batch[0, 0, 0] == pytest.approx(mz(P, 1), abs=1e-4)  # b1 of PEPM[Oxidation]K
    assert batch[0, 0, 2] == pytest.approx(mz(E + P + M + OX + K + WATER, 1), abs=1e-4)  # y4
