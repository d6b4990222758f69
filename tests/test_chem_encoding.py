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
