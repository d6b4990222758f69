"""mzTab 1.0 and CSV output of de novo PSMs, read back with pyteomics."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from pyteomics import mztab

from deepms.chem import H2O, PROTON, RESIDUE_MASSES
from deepms.io.mztab import write_denovo_csv, write_mztab

PSMS = [
    {
        "sequence": "PEPTM[Oxidation]K",
        "spectrum_index": 0,
        "title": "run.1.1.2",
        "charge": 2,
        "precursor_mz": 420.2,
        "retention_time": 61.5,
        "score": 0.9,
        "aa_scores": [0.9, 0.8, 0.95, 1.0, 0.7, 0.85],
    },
    {"sequence": None, "spectrum_index": 1, "title": "run.2.2.3", "charge": 3, "score": None},
    {
        "sequence": "[UNIMOD:1]-AC[UNIMOD:4]K",
        "spectrum_ref": "scan=7",
        "charge": 1,
        "calc_mz": 420.19,
        "score": 0.5,
        "aa_scores": [0.5, 0.4, 0.6],
    },
]


def write(tmp_path: Path, **kwargs) -> tuple[int, mztab.MzTab, str]:
    path = tmp_path / "out.mztab"
    n = write_mztab(
        path,
        PSMS,
        ms_run_location=str(tmp_path / "run.mgf"),
        software_version="0.1.0",
        parameters={"beam_size": 5, "precursor_tolerance": "20 ppm"},
        **kwargs,
    )
    return n, mztab.MzTab(str(path)), path.read_text()


def test_mztab_header_and_psm_rows_read_back(tmp_path: Path) -> None:
    n, table, text = write(tmp_path, fixed_mods=["C[UNIMOD:4]"], variable_mods=["M[UNIMOD:35]"])
    assert n == 2  # the unsequenced spectrum is left out: mzTab needs a sequence
    assert (table.version, table.mode, table.type) == ("1.0.0", "Summary", "Identification")
    meta = table.metadata
    assert meta["ms_run[1]-location"] == (tmp_path / "run.mgf").resolve().as_uri()
    assert meta["software[1]"] == ("deepms", "0.1.0")
    assert meta["software[1]-setting[1]"] == "beam_size = 5"
    assert meta["fixed_mod[1]"] == "Carbamidomethyl" and meta["fixed_mod[1]-site"] == "C"
    assert meta["variable_mod[1]"] == "Oxidation" and meta["variable_mod[1]-site"] == "M"
    assert "MTD\tpsm_search_engine_score[1]\t[MS, MS:1001143, " in text

    psms = table.spectrum_match_table
    assert len(psms) == 2
    assert psms["sequence"].tolist() == ["PEPTMK", "ACK"]
    assert psms["charge"].tolist() == [2, 1]
    assert psms["search_engine_score[1]"].tolist() == pytest.approx([0.9, 0.5])
    assert psms["modifications"].tolist() == ["5-UNIMOD:35", "0-UNIMOD:1,2-UNIMOD:4"]
    assert psms["spectra_ref"].tolist() == ["ms_run[1]:index=0", "ms_run[1]:scan=7"]
    assert psms["opt_ms_run[1]_aa_scores"].iloc[1] == "0.50000,0.40000,0.60000"
    assert psms["exp_mass_to_charge"].iloc[0] == pytest.approx(420.2)
    assert psms["retention_time"].iloc[0] == pytest.approx(61.5)
    # calc m/z from the sequence when not given: PEPTM[+15.995]K at 2+
    mass = sum(RESIDUE_MASSES[aa] for aa in "PEPTMK") + 15.994915 + H2O
    assert psms["calc_mass_to_charge"].iloc[0] == pytest.approx((mass + 2 * PROTON) / 2, abs=1e-5)
    assert psms["calc_mass_to_charge"].iloc[1] == pytest.approx(420.19)


def test_no_modifications_searched_and_bad_input(tmp_path: Path) -> None:
    _, table, text = write(tmp_path)
    assert "MTD\tfixed_mod[1]\t[MS, MS:1002453, No fixed modifications searched, ]" in text
    assert "MTD\tvariable_mod[1]\t[MS, MS:1002454, No variable modifications searched, ]" in text
    assert table.metadata["fixed_mod[1]"] == "No fixed modifications searched"
    with pytest.raises(ValueError, match="PSM 0: needs 'spectrum_index'"):
        write_mztab(
            tmp_path / "x.mztab",
            [{"sequence": "PEPTIDE", "charge": 2}],
            ms_run_location="run.mgf",
            software_version="0",
        )
    with pytest.raises(ValueError, match="expected 'C\\[UNIMOD:4\\]'"):
        write(tmp_path, fixed_mods=["carbamidomethyl C"])


def test_csv_keeps_every_spectrum(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    assert write_denovo_csv(path, PSMS) == 3
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["sequence"] for r in rows] == ["PEPTM[Oxidation]K", "", "[UNIMOD:1]-AC[UNIMOD:4]K"]
    assert rows[1]["title"] == "run.2.2.3" and rows[1]["score"] == ""
    assert rows[2]["spectrum_ref"] == "scan=7"
    scores = [float(x) for x in rows[0]["aa_scores"].split(";")]
    assert math.fsum(scores) == pytest.approx(5.2)
