"""DLOmix/Prosit 174-vector -> [bond, (b, y), z]: checked by hand and against computed m/z."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepms.chem import fragment_mz, parse_unimod_bracket
from deepms.errors import DataFormatError, InvalidResidueError
from deepms.io import prosit_to_bonds, read_prosit_parquet

MIRROR = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data"))
PARQUET = MIRROR / "pdeep" / "dlomix_proteometools_third_pool_sample.parquet"


def vector(entries: dict[tuple[int, int], float]) -> list[float]:
    """Prosit layout: position p (1-based), ion column (0..5 = y1+,y2+,y3+,b1+,b2+,b3+)."""
    v = np.full((29, 6), -1.0)
    for (p, col), value in entries.items():
        v[p - 1, col] = value
    return v.reshape(-1).tolist()


def write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


PEK = {
    "modified_sequence": "_PEK_",
    "precursor_charge": 2,
    "fragmentation": "HCD",
    "mass_analyzer": "FTMS",
    "aligned_collision_energy": 27.5,
    "raw_file": "run1",
    "scan_number": 42,
    "intensities_raw": vector(
        {(1, 0): 0.5, (1, 1): 0.0, (1, 3): 0.3, (1, 4): 0.0, (2, 0): 1.0, (2, 1): 0.0}
        | {(2, 3): 0.0, (2, 4): 0.2}
    ),
}


def test_hand_mapping(tmp_path: Path) -> None:
    (record,) = read_prosit_parquet(write(tmp_path, [PEK]))
    assert record.identifier == "run1:42"
    assert record.peptide.sequence == "PEK" and record.precursor_charge == 2
    assert (record.collision_energy, record.fragmentation, record.analyzer) == (27.5, "HCD", "FTMS")
    x = record.intensities
    assert x.shape == (2, 2, 3)
    assert x[0, 0, 0] == pytest.approx(0.3)  # b1+ at bond 0
    assert x[1, 0, 1] == pytest.approx(0.2)  # b2++ at bond 1
    assert x[1, 1, 0] == pytest.approx(0.5)  # y1+ at bond n-1-1 = 1
    assert x[0, 1, 0] == pytest.approx(1.0)  # y2+ at bond 0
    assert np.all(x[:, :, 2] == -1)  # impossible z=3 stays -1


def test_bad_rows(tmp_path: Path) -> None:
    bad_residue = PEK | {"modified_sequence": "_PXK_", "scan_number": 1}
    short = PEK | {"intensities_raw": [0.0] * 10, "scan_number": 2}
    path = write(tmp_path, [PEK, bad_residue, short])
    with pytest.raises(DataFormatError) as info:
        list(read_prosit_parquet(path))
    assert info.value.record == 1 and isinstance(info.value.cause, InvalidResidueError)
    assert len(list(read_prosit_parquet(path, on_error="skip"))) == 1
    path = write(tmp_path, [short])
    with pytest.raises(DataFormatError, match="10 values, expected 174"):
        list(read_prosit_parquet(path))


def test_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, [{k: v for k, v in PEK.items() if k != "precursor_charge"}])
    with pytest.raises(DataFormatError, match="precursor_charge"):
        list(read_prosit_parquet(path))


def test_too_long_peptide() -> None:
    with pytest.raises(ValueError, match="length 31"):
        prosit_to_bonds(np.zeros(174), 31)


@pytest.mark.skipif(not PARQUET.exists(), reason="data mirror not available")
def test_real_parquet() -> None:
    with pytest.raises(DataFormatError, match=r"record 8: masses_raw disagree with VPYIEQHQFK"):
        list(read_prosit_parquet(PARQUET, batch_size=300))
    records = list(read_prosit_parquet(PARQUET, batch_size=300, on_error="skip"))
    assert len(records) == 998  # rows 8 and 787 carry another peptide's fragment masses
    row = records[1]  # M[UNIMOD:35]VGNVTGAQAYASTTK, z=2, 16 residues
    assert row.peptide.to_proforma() == "M[Oxidation]VGNVTGAQAYASTTK"
    assert row.precursor_charge == 2 and row.intensities.shape == (15, 2, 3)
    assert row.collision_energy == pytest.approx(22.55891504773809)
    assert row.intensities[4, 0, 0] == pytest.approx(0.42857143)  # b5+ at bond 4
    assert row.intensities[16 - 11 - 1, 1, 0] == pytest.approx(1.0)  # y11+ at bond 4
    assert row.intensities[16 - 8 - 1, 1, 1] == pytest.approx(0.04761905)  # y8++ at bond 7
    assert np.all(row.intensities[:, :, 2] == -1)
    assert sum(r.fragmentation == "HCD" for r in records) == 842 - 2  # both skipped rows: HCD
    assert sum(r.analyzer == "FTMS" for r in records) == 723 - 2  # ... and FTMS


@pytest.mark.skipif(not PARQUET.exists(), reason="data mirror not available")
def test_real_parquet_masses_match_computed_fragments() -> None:
    """The file's fragment m/z, mapped the same way, match chem.fragment_mz at every bond.

    The stored values look like matched peak m/z: within 20 ppm for FTMS and 0.5 Da for ITMS
    rows; a b/y, bond or charge mix-up would be off by whole residues. Rows 8 and 787 carry
    masses of some other peptide in the source file (checked by hand), so they are excluded.
    """
    columns = ["modified_sequence", "masses_raw", "mass_analyzer"]
    table = pq.read_table(PARQUET, columns=columns).to_pylist()
    mismatched = []
    for index, row in enumerate(table):
        peptide = parse_unimod_bracket(row["modified_sequence"])
        mapped = prosit_to_bonds(np.asarray(row["masses_raw"]), len(peptide.sequence))
        computed = fragment_mz(peptide, charges=(1, 2, 3))[..., 0]
        known = mapped > 0
        assert known.sum() > 0
        tolerance = computed[known] * 20e-6 if row["mass_analyzer"] == "FTMS" else 0.5
        if np.any(np.abs(mapped[known] - computed[known]) > tolerance):
            mismatched.append(index)
    assert mismatched == [8, 787]
