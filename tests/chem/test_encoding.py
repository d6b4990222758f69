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


def test_composition_encoding_of_phospho_is_its_unimod_delta() -> None:
    from deepms.chem.encoding import COMPOSITION_CHANNELS

    encoder = PeptideEncoder(mod_encoding="composition").fit([parse_proforma("PES[Phospho]K")])
    assert encoder.modifications == []  # composition only: no vocabulary
    assert encoder.n_mod_features == len(COMPOSITION_CHANNELS) + 1
    features = encoder.encode_modifications(parse_proforma("PES[Phospho]K"))
    channels = dict(zip(COMPOSITION_CHANNELS, features[2, :-1].tolist(), strict=True))
    assert channels == pytest.approx(
        {"C": 0, "H": 0.1, "N": 0, "O": 0.3, "S": 0, "P": 0.1, "other": 0}
    )
    assert features[2, -1] == pytest.approx(0.79966331, abs=1e-6)
    assert np.count_nonzero(features[[0, 1, 3]]) == 0


def test_unseen_modification_is_encoded_by_composition_in_both_mode() -> None:
    encoder = PeptideEncoder(mod_encoding="both").fit([parse_proforma("PEM[Oxidation]K")])
    assert encoder.modifications == ["Oxidation@M"]
    features = encoder.encode_modifications(parse_proforma("PES[Phospho]K"))  # never seen
    assert features[2, 0] == 0.0  # no vocabulary column for it ...
    assert features[2, 1:-1].sum() == pytest.approx(0.5)  # ... but H + 3 O + P
    seen = encoder.encode_modifications(parse_proforma("PEM[Oxidation]K"))
    assert seen[2, 0] == 1.0 and seen[2, 4] == pytest.approx(0.1)  # vocabulary and the O


def test_encoder_state_keeps_its_mode_and_old_states_mean_vocabulary() -> None:
    encoder = PeptideEncoder(["Oxidation@M"], mod_encoding="both")
    assert PeptideEncoder.from_dict(encoder.to_dict()).mod_encoding == "both"
    assert PeptideEncoder.from_dict({"modifications": ["Oxidation@M"]}).mod_encoding == "vocabulary"
    with pytest.raises(ValueError, match="mod_encoding"):
        PeptideEncoder(mod_encoding="atoms")
