"""pDeep2 .plabel reader: charge from the spec field, ions at the right bond, loss columns kept."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from deepms.errors import DataFormatError, UnknownModificationError
from deepms.io import read_plabel

MIRROR = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))
KMOD = MIRROR / "pdeep" / "pdeep2_PT21Mod_Kmod_Malonyl_3xHCD_R1.plabel"
EXAMPLE = MIRROR / "pdeep" / "pdeep2_example.plabel"
HEADER = "spec\tpeptide\tmodinfo\tb\tb-NH3\tb-H2O\tb-ModLoss\ty\ty-NH3\ty-H2O\ty-ModLoss\n"


def row(spec: str, peptide: str, modinfo: str, b: str, y: str, y_modloss: str = "") -> str:
    return "\t".join([spec, peptide, modinfo, b, "", "", "", y, "", "", y_modloss]) + "\n"


def write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "a.plabel"
    path.write_text(HEADER + "".join(rows))
    return path


def test_bond_mapping_and_charge(tmp_path: Path) -> None:
    # PEPTIDEK (n=8): b2 -> bond 1, y3 -> bond 8-3-1 = 4, b3+4 ignored (charge > 3)
    text = row(
        "run.a.1.1.3.0.dta",  # dots in the raw name: the charge is counted from the right
        "PEPTIDEK",
        "",
        "b2+1,100.5;b3+2,7;b3+4,9;",
        "y3+1,50;y1+3,2;",
        "y2-ModLoss+1,11;",
    )
    (record,) = read_plabel(write(tmp_path, text))
    assert record.precursor_charge == 3
    assert record.intensities.shape == (7, 2, 3)
    assert record.intensities[1, 0, 0] == 100.5
    assert record.intensities[2, 0, 1] == 7
    assert record.intensities[4, 1, 0] == 50
    assert record.intensities[6, 1, 2] == 2  # y1 at the last bond
    assert record.intensities.sum() == pytest.approx(100.5 + 7 + 50 + 2)
    assert record.metadata["losses"]["ModLoss"][5, 1, 0] == 11


def test_modinfo_parsed(tmp_path: Path) -> None:
    text = row("r.5.5.2.0.dta", "PEPKTIDE", "4,Malonyl[K];", "b2+1,1;", "")
    (record,) = read_plabel(write(tmp_path, text))
    assert record.peptide.to_proforma() == "PEPK[Malonyl]TIDE"


def test_errors_name_spec_and_cause(tmp_path: Path) -> None:
    bad_spec = row("nodots", "PEPTIDE", "", "b2+1,1;", "")
    with pytest.raises(DataFormatError, match="charge") as info:
        list(read_plabel(write(tmp_path, bad_spec)))
    assert info.value.record == "nodots"
    bad_ion = row("r.1.1.2.0.dta", "PEPTIDE", "", "b9+1,1;", "")
    with pytest.raises(DataFormatError, match="impossible for a 7-mer"):
        list(read_plabel(write(tmp_path, bad_ion)))
    bad_value = row("r.1.1.2.0.dta", "PEPTIDE", "", "b2+1,x;", "")
    with pytest.raises(DataFormatError, match="bad ion entry"):
        list(read_plabel(write(tmp_path, bad_value)))
    empty = row("r.1.1.2.0.dta", "PEPTIDE", "", "", "")
    with pytest.raises(DataFormatError, match="empty spectrum"):
        list(read_plabel(write(tmp_path, empty)))
    bad_mod = row("r.1.1.2.0.dta", "PEPTIDE", "2,Nonsense[E];", "b2+1,1;", "")
    with pytest.raises(DataFormatError) as info:
        list(read_plabel(write(tmp_path, bad_mod)))
    assert isinstance(info.value.cause, UnknownModificationError)


def test_skip(tmp_path: Path) -> None:
    good = row("r.1.1.2.0.dta", "PEPTIDE", "", "b2+1,1;", "")
    bad = row("r.2.2.2.0.dta", "PEPXIDE", "", "b2+1,1;", "")
    records = list(read_plabel(write(tmp_path, good, bad, good), on_error="skip"))
    assert len(records) == 2


@pytest.mark.skipif(not KMOD.exists(), reason="data mirror not available")
def test_real_kmod_malonyl() -> None:
    records = list(read_plabel(KMOD))
    assert len(records) == 5947
    first = records[0]
    assert first.identifier.endswith("R1.38971.38971.2.0.dta")
    assert first.precursor_charge == 2
    assert first.peptide.to_proforma() == "VQGGALEDSQLVAGVAFK[Malonyl]K"
    n = 19
    assert first.intensities.shape == (n - 1, 2, 3)
    assert first.intensities[1, 0, 0] == pytest.approx(230609.4)  # b2+1
    assert first.intensities[13, 0, 1] == pytest.approx(8042)  # b14+2
    assert first.intensities[n - 18 - 1, 1, 1] == pytest.approx(27267.7)  # y18+2
    assert first.intensities[n - 1 - 1, 1, 0] == pytest.approx(37994.4)  # y1+1
    assert first.metadata["losses"]["ModLoss"][0, 1, 1] == pytest.approx(27934)  # y18-ModLoss+2
    assert first.metadata["losses"]["H2O"][n - 2, 1, 0] == pytest.approx(9655.1)  # y1-H2O+1
    charges = np.bincount([r.precursor_charge for r in records])
    assert charges[2] == 5550 and charges[3] == 385 and charges[4] == 12  # 4th dot field
    third = next(r for r in records if r.identifier.endswith(".12049.12049.3.0.dta"))
    assert third.precursor_charge == 3


@pytest.mark.skipif(not EXAMPLE.exists(), reason="data mirror not available")
def test_real_example() -> None:
    records = list(read_plabel(EXAMPLE))
    assert len(records) == 4
    first = records[0]
    assert first.identifier.endswith("R1.38970.38970.2.0.dta")
    assert first.intensities[1, 0, 0] == pytest.approx(246224.5)  # b2+1
    assert first.intensities[14, 0, 1] == pytest.approx(9740.6)  # b15+2
    assert first.intensities[19 - 17 - 1, 1, 1] == pytest.approx(7414)  # y17+2
    assert first.intensities[17, 1, 0] == pytest.approx(75375.6)  # y1+1
