"""Cohort matrix and sample-table readers: orientation, vendor layouts, and each named error."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepms.errors import DataFormatError
from deepms.io.formats import get_format


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _read(fmt: str, path: Path, **options):
    return list(get_format(fmt).open([path], "raise", **options))


def test_matrix_rows_reads_values_ids_and_missing(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "Sample ID,P1,P2\ns1,1.5,\ns2,NaN,4\n")
    vectors = _read("matrix_table", path)
    assert [v.id for v in vectors] == ["s1", "s2"]
    assert vectors[0].features == ("P1", "P2")
    np.testing.assert_array_equal(vectors[0].values, [1.5, np.nan])
    np.testing.assert_array_equal(vectors[1].values, [np.nan, 4.0])


def test_samples_as_columns_reads_the_transpose(tmp_path: Path) -> None:
    rows = _write(tmp_path / "rows.tsv", "id\tP1\tP2\tP3\nA\t1\t2\t3\nB\t4\t\t6\n")
    cols = _write(tmp_path / "cols.tsv", "protein\tA\tB\nP1\t1\t4\nP2\t2\t\nP3\t3\t6\n")
    by_rows = _read("matrix_table", rows)
    by_cols = _read("matrix_table", cols, samples_as="columns")
    assert [v.id for v in by_cols] == ["A", "B"]
    assert by_cols[0].features == ("P1", "P2", "P3")
    for a, b in zip(by_rows, by_cols, strict=True):
        np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(by_cols[1].values, [4.0, np.nan, 6.0])


def test_parquet_matrix(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pd.DataFrame({"id": ["x", "y"], "P1": [1.0, None], "P2": [3.0, 4.0]}).to_parquet(path)
    vectors = _read("matrix_table", path)
    np.testing.assert_array_equal(vectors[1].values, [np.nan, 4.0])


def test_duplicate_sample_id_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "id,P1\ns1,1\ns2,2\ns1,3\n")
    with pytest.raises(DataFormatError, match=r"m\.csv.*column 'id'.*duplicate sample id 's1'"):
        _read("matrix_table", path)


def test_duplicate_sample_column_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.tsv", "protein\tA\tA\nP1\t1\t2\n")
    with pytest.raises(DataFormatError, match="duplicate column name 'A'"):
        _read("matrix_table", path, samples_as="columns")


def test_non_numeric_cell_names_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "id,P1,P2\ns1,1,2\ns2,3,high\ns3,5,6\n")
    with pytest.raises(DataFormatError, match=r"m\.csv: record line 3 column 'P2'.*'high'"):
        _read("matrix_table", path)


def test_missing_id_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "sample,P1\ns1,1\n")
    with pytest.raises(DataFormatError, match="no id column 'Sample ID'"):
        _read("matrix_table", path, id_column="Sample ID")


def test_text_columns_are_skipped_and_counted_excluded_columns_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "P1,age,Class\n1,70,Control\n2,80,Impaired\n")
    dropped: Counter = Counter()
    vectors = _read("matrix_table", path, id_column=False, exclude_columns=["age"], dropped=dropped)
    assert [v.id for v in vectors] == ["row1", "row2"]
    assert vectors[0].features == ("P1",)
    assert dropped == {"m.csv: text column skipped": 1}


def test_maxquant_drops_flagged_rows_and_reads_lfq_columns(tmp_path: Path) -> None:
    header = "Protein IDs\tIntensity S1\tLFQ intensity S1\tLFQ intensity S2\tReverse\t"
    header += "Potential contaminant\tOnly identified by site\n"
    rows = [
        "P1\t10\t100\t0\t\t\t\n",  # kept; 0 = not quantified
        "REV__P2\t5\t50\t60\t+\t\t\n",
        "CON__P3\t5\t70\t80\t\t+\t\n",
        "P4\t5\t30\t40\t\t\t+\n",
        "P5\t5\t200\t300\t\t\t\n",
    ]
    path = _write(tmp_path / "proteinGroups.txt", header + "".join(rows))
    dropped: Counter = Counter()
    vectors = _read("maxquant_protein_groups", path, dropped=dropped)
    assert [v.id for v in vectors] == ["S1", "S2"]
    assert vectors[0].features == ("P1", "P5")
    np.testing.assert_array_equal(vectors[0].values, [100.0, 200.0])
    np.testing.assert_array_equal(vectors[1].values, [np.nan, 300.0])
    assert dropped["proteinGroups.txt: Reverse"] == 1
    assert dropped["proteinGroups.txt: Potential contaminant"] == 1
    assert dropped["proteinGroups.txt: Only identified by site"] == 1


def test_maxquant_without_lfq_columns_says_which_prefix(tmp_path: Path) -> None:
    path = _write(tmp_path / "proteinGroups.txt", "Protein IDs\tIntensity S1\nP1\t3\n")
    with pytest.raises(DataFormatError, match="no 'LFQ intensity '<sample> columns"):
        _read("maxquant_protein_groups", path)


def test_diann_pg_matrix_runs_after_annotations(tmp_path: Path) -> None:
    header = "Protein.Group\tProtein.Ids\tProtein.Names\tGenes\tFirst.Protein.Description\t"
    header += "D:\\runs\\ctrl_01.raw\t/data/ad_01.mzML\n"
    body = "P1\tP1\tALBU_HUMAN\tALB\tAlbumin\t1e6\t\nP2;P3\tP2;P3\tX\tY\tZ\t2e5\t3e5\n"
    path = _write(tmp_path / "report.pg_matrix.tsv", header + body)
    vectors = _read("diann_pg_matrix", path)
    assert [v.id for v in vectors] == ["ctrl_01", "ad_01"]
    assert vectors[0].features == ("P1", "P2;P3")
    np.testing.assert_array_equal(vectors[1].values, [np.nan, 3e5])


def test_sample_table_rows_and_duplicates(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", "Sample ID,AD,age\na,1,70\nb,0,\n")
    rows = _read("sample_table", path, id_column="Sample ID")
    assert [(r.id, r.fields["AD"], r.fields["age"], r.line) for r in rows] == [
        ("a", "1", "70", 2),
        ("b", "0", "", 3),
    ]
    bad = _write(tmp_path / "d.csv", "id,AD\na,1\na,0\n")
    with pytest.raises(DataFormatError, match="duplicate sample id 'a'"):
        _read("sample_table", bad)
