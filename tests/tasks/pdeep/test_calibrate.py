"""Collision-energy calibration (issue 19): on spectra a model itself predicted at NCE 27, the
calibration finds 27; ``--calibrate-ce`` predicts every row at the chosen NCE (not the rows'
own) with the curve written beside the output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.chem import parse_proforma
from deepms.tasks.pdeep.calibrate import load_identified, spectrum_pcc
from deepms.tasks.pdeep.predict import PDeepPredictor
from tests.tasks.pdeep.test_predict import PREDICTOR, save_checkpoint, tiny_model


def peaked_forward(tensors: tuple) -> np.ndarray:
    """A stand-in network whose spectra depend strongly on the NCE: b ions peak at a bond that
    moves along the peptide with the NCE (y ions mirror them). An untrained model barely listens
    to its NCE input, so this is what makes the NCE recoverable and the test sharp."""
    from deepms.tasks.pdeep.data import MAX_CHARGE

    residues, _, meta, lengths = tensors
    nce = meta[:, MAX_CHARGE].numpy()[:, None, None]  # NCE / 100
    bonds = residues.shape[1] - 1
    where = (np.arange(bonds) + 1)[None, :, None] / lengths.numpy()[:, None, None]
    centre = (nce - 0.18) / 0.24  # NCE 18 -> 0, 42 -> 1
    b = np.exp(-((where - centre) ** 2) / 0.02)
    y = np.exp(-((1 - where - centre) ** 2) / 0.02)
    return np.concatenate([b, 0.5 * b, y, 0.5 * y], axis=-1).astype(np.float32)


def nce_sensitive_predictor() -> PDeepPredictor:
    predictor = PDeepPredictor(tiny_model(hidden=16), min_intensity=0.0)
    predictor._forward = peaked_forward
    return predictor


PEPTIDES = ["LGEYGFQNALIVR", "PEPTIDEK", "ACDEMK", "VLSEAMKR", "GLSDGEWQQVLNVWGK", "TTPSVVAFTK"]
TRUE_NCE = 27.0


def _identified(tmp_path: Path, predictor: PDeepPredictor) -> Path:
    """An MGF of the model's own spectra at NCE 27 (fragment m/z and intensities), labelled."""
    frame = pd.DataFrame({"peptide": PEPTIDES, "charge": 2, "collision_energy": TRUE_NCE})
    library = predictor.predict(frame, min_intensity=0.0)
    blocks = []
    for (peptide, charge), ions in library.groupby(["StrippedPeptide", "PrecursorCharge"]):
        peaks = "\n".join(
            f"{mz:.5f} {1000 * i:.3f}"
            for mz, i in sorted(zip(ions["FragmentMz"], ions["RelativeIntensity"], strict=True))
        )
        mz = parse_proforma(peptide).precursor_mz(int(charge))
        blocks.append(
            f"BEGIN IONS\nTITLE={peptide}\nPEPMASS={mz:.5f}\nCHARGE={charge}+\nSEQ={peptide}\n"
            f"{peaks}\nEND IONS\n"
        )
    path = tmp_path / "identified.mgf"
    path.write_text("".join(blocks))
    return path


def test_calibration_finds_the_nce_the_spectra_were_made_at(tmp_path: Path) -> None:
    predictor = nce_sensitive_predictor()
    identified = _identified(tmp_path, predictor)
    samples, unusable = load_identified(identified, predictor.fragment_charges)
    assert len(samples) == len(PEPTIDES) and unusable == 0
    pcc = spectrum_pcc(predictor, samples, TRUE_NCE)
    # 1 but where two ions share an m/z within the annotation tolerance (one peptide here)
    assert (np.abs(pcc - 1.0) < 1e-4).sum() >= len(PEPTIDES) - 1
    calibration = predictor.calibrate_collision_energy(identified)
    assert calibration.nce == TRUE_NCE
    assert calibration.median_pcc == pytest.approx(1.0, abs=1e-4)
    curve = calibration.curve
    assert curve["26"] < curve["27"] > curve["28"]  # a peak, not a plateau
    assert curve["20"] < 0.9 and calibration.median_pcc_unknown_nce < 0.9


def test_calibrate_ce_predicts_at_the_chosen_nce_and_records_it(tmp_path: Path) -> None:
    from deepms.cli import main

    predictor = PDeepPredictor(tiny_model(hidden=16), min_intensity=0.0)
    identified = _identified(tmp_path, predictor)
    expected_nce = predictor.calibrate_collision_energy(identified).nce
    checkpoint = save_checkpoint(predictor.model, tmp_path / "pdeep.ckpt")
    source = tmp_path / "precursors.csv"
    pd.DataFrame({"peptide": ["PEPTIDEK"], "charge": [2], "collision_energy": [35.0]}).to_csv(
        source, index=False
    )
    out = tmp_path / "lib.tsv"
    args = ["predict", str(checkpoint), "--predictor", PREDICTOR, "--input", str(source)]
    assert (
        main([*args, "--output", str(out), "--calibrate-ce", str(identified), "--no-progress"]) == 0
    )
    record = json.loads(Path(f"{out}.calibration.json").read_text())
    assert record["nce"] == expected_nce and record["n_spectra"] == len(PEPTIDES)
    assert set(record["curve"]) == {f"{x}" for x in range(18, 43)}
    assert record["source"] == str(identified)
    got = pd.read_csv(out, sep="\t")
    predictor.calibration = None
    at_chosen = predictor.predict(pd.read_csv(source).assign(collision_energy=expected_nce))
    assert np.allclose(got["RelativeIntensity"], at_chosen["RelativeIntensity"], atol=1e-5)


def test_no_usable_identified_spectrum_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "unlabelled.mgf"
    path.write_text("BEGIN IONS\nTITLE=a\nPEPMASS=500\nCHARGE=2+\n200.1 10\nEND IONS\n")
    with pytest.raises(ValueError, match=r"unlabelled\.mgf: no identified spectrum"):
        load_identified(path, (1, 2))
