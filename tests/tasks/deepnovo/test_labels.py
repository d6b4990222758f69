"""Labelled MGFs in the notations public de novo data use (issue 19): training reads flanked
``_.PEPTIDE._`` and Casanovo's ``+57.021`` labels; prediction never parses a label, so a label it
could not read costs nothing, and a spectrum it cannot use is named and set aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepms.chem import parse_proforma
from deepms.io import read_mgf
from deepms.tasks.deepnovo.predict import DeNovoPredictor
from tests.tasks.deepnovo.test_model import _models

PEAKS = "\n".join(
    f"{mz:.3f} {i:.1f}" for mz, i in zip(np.linspace(150, 900, 25), range(1, 26), strict=True)
)


def _record(title: str, seq: str, peaks: str = PEAKS) -> str:
    return f"BEGIN IONS\nTITLE={title}\nPEPMASS=500.25\nCHARGE=2+\nSEQ={seq}\n{peaks}\nEND IONS\n"


def _mgf(path: Path) -> Path:
    path.write_text(
        _record("flanked", "_.HEEAPGHRPTTNPNASK._")
        + _record("casanovo", "AC+57.021DM+15.995K")
        + _record("no_peaks", "PEPTIDEK", peaks="")
        + _record("unreadable_label", "PEP*TIDE")
    )
    return path


def test_training_reads_flanked_and_mass_delta_labels(tmp_path: Path) -> None:
    spectra = list(read_mgf(_mgf(tmp_path / "l.mgf"), on_error="skip"))
    assert [s.identifier for s in spectra] == ["flanked", "casanovo"]  # two bad records skipped
    assert spectra[0].peptide == parse_proforma("HEEAPGHRPTTNPNASK")
    assert spectra[1].peptide == parse_proforma("AC[Carbamidomethyl]DM[Oxidation]K")


def test_prediction_ignores_labels_and_names_the_spectrum_it_cannot_use(tmp_path: Path) -> None:
    model = _models()[0]
    model.hparams.update(  # the base class's settings (the subclass records its own only)
        beam_size=2, precursor_tolerance=50.0, tolerance_unit="ppm", isotope_errors=(0,)
    )
    predictor = DeNovoPredictor(model, batch_size=4)
    out = tmp_path / "out.csv"
    counts = predictor.predict_file(_mgf(tmp_path / "l.mgf"), out, progress=False)
    table = pd.read_csv(out)
    assert list(table["title"]) == ["flanked", "casanovo", "unreadable_label"]
    assert counts["rejected"] == 1
    report = Path(f"{out}.rejected.tsv").read_text().splitlines()
    assert len(report) == 2 and "record no_peaks" in report[1] and "no peaks" in report[1]
