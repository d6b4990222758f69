"""Peptide encoding: indices, modification channels, and refusal of unseen modifications."""

from __future__ import annotations

import numpy as np
import pytest

from deepms.chem import parse_proforma
from deepms.chem.encoding import RESIDUE_INDEX, PeptideEncoder
from deepms.errors import UnknownModificationError


def test_encodes_residues_and_terminal_and_residue_mods() -> None:
    peptide = parse_proforma("[Acetyl]-PEM[Oxidation]K")
    encoder = PeptideEncoder().fit([peptide])
    assert encoder.modifications == ["Acetyl@N-term", "Oxidation@M"]
    residues = encoder.encode_residues(peptide)
    assert residues.tolist() == [RESIDUE_INDEX[a] for a in "PEMK"]
    mods = encoder.encode_modifications(peptide)
    assert mods.shape == (4, 3)
    assert mods[0, 0] == 1.0 and mods[2, 1] == 1.0
    # last channel: mass shift / 100 (Acetyl 42.010565, Oxidation 15.994915)
    assert mods[0, 2] == pytest.approx(0.42010565, abs=1e-6)
    assert mods[2, 2] == pytest.approx(0.15994915, abs=1e-6)
    assert np.count_nonzero(mods[[1, 3]]) == 0


def test_round_trip_and_unseen_modification_is_refused() -> None:
    encoder = PeptideEncoder.from_dict(PeptideEncoder(["Oxidation@M"]).to_dict())
    with pytest.raises(UnknownModificationError, match="Phospho@S"):
        encoder.encode_modifications(parse_proforma("PES[Phospho]K"))


def test_batch_encoding_equals_the_per_peptide_encoding_padded_with_zeros() -> None:
    peptides = [parse_proforma(p) for p in ("PEM[Oxidation]K", "[Acetyl]-AC", "LGEYGFQNALIVR")]
    encoder = PeptideEncoder().fit(peptides)
    batch = encoder.encode_batch(peptides)
    assert batch.residues.dtype == np.int64 and batch.mods.dtype == np.float32
    assert batch.residues.shape == (3, 13) and batch.mods.shape == (3, 13, 3)
    assert batch.lengths.tolist() == [4, 2, 13]
    for i, peptide in enumerate(peptides):
        n = len(peptide.sequence)
        np.testing.assert_array_equal(batch.residues[i, :n], encoder.encode_residues(peptide))
        np.testing.assert_array_equal(batch.mods[i, :n], encoder.encode_modifications(peptide))
        assert not batch.residues[i, n:].any() and not batch.mods[i, n:].any()  # padding: 0
    assert batch.residues[1, :2].tolist() == [RESIDUE_INDEX["A"], RESIDUE_INDEX["C"]]
    assert batch.mods[1, 0, 0] == 1.0  # Acetyl@N-term on the first residue


def test_batch_encoding_refuses_an_unseen_modification() -> None:
    encoder = PeptideEncoder(["Oxidation@M"])
    with pytest.raises(UnknownModificationError, match="Phospho@S"):
        encoder.encode_batch([parse_proforma("PEPK"), parse_proforma("PES[Phospho]K")])
