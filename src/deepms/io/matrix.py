"""Cohort matrices (samples x features) and sample tables, registered as formats.

| format | files | layout |
|---|---|---|
| ``matrix_table`` | csv, tsv, txt, parquet | samples as rows (``samples_as: columns``) |
| ``maxquant_protein_groups`` | ``proteinGroups.txt`` | ``LFQ intensity <sample>`` columns |
| ``diann_pg_matrix`` | ``.pg_matrix.tsv`` | a column per run after the annotations |
| ``sample_table`` | csv, tsv, txt, parquet | a row per sample: id, label, covariates |

The matrix formats yield one :class:`SampleVector` per sample (its id, a float vector with NaN
for missing, the file's feature names); ``sample_table`` yields one :class:`SampleInfo` per row
(cells as written). Options: ``id_column`` (the column of row names: sample ids, or feature names
when samples are columns; default the first column; ``false`` numbers the rows ``row1``,
``row2``... for files without ids) and ``exclude_columns`` (numeric columns that are not features).
A column without a single numeric cell is an annotation and is skipped (counted in ``dropped``);
a non-numeric cell among numbers, a duplicate sample or feature id and a missing id column are
:class:`DataFormatError` naming file, column/row and cause, whatever ``on_error`` says: a
matrix with a wrong cell is not a matrix to train on. MaxQuant writes 0 for "not quantified":
those become NaN, and rows flagged ``Reverse``, ``Potential contaminant`` or ``Only identified
by site`` are dropped and counted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepms.errors import DataFormatError
from deepms.io.formats import register_format

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
#: cells that mean "no value" in exported matrices
MISSING = {"", "na", "nan", "n/a", "#n/a", "null", "none"}
MAXQUANT_FLAGS = ("Reverse", "Potential contaminant", "Contaminant", "Only identified by site")
DIANN_ANNOTATIONS = (
    "Protein.Group",
    "Protein.Ids",
    "Protein.Names",
    "Genes",
    "First.Protein.Description",
    "N.Sequences",
    "N.Proteotypic.Sequences",
)
RUN_SUFFIX = re.compile(r"\.(raw|d|mzml|wiff|dia|mzxml)$", re.IGNORECASE)


@dataclass(frozen=True)
class SampleVector:
    """One sample of a matrix: its id, its values (NaN = missing) and the file's feature names."""

    id: str
    values: np.ndarray  # float64 [n_features]
    features: tuple[str, ...]  # shared by every sample of one file
    path: Path


@dataclass(frozen=True)
class SampleInfo:
    """One row of a sample table: the sample id and its cells as written (``''`` = empty)."""

    id: str
    fields: dict[str, str]
    path: Path
    line: int  # 1-based line in the file (the header is line 1)


def read_frame(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Every cell as a string (header included as column names, duplicates kept apart)."""
    if path.name.lower().endswith(".parquet"):
        frame = pd.read_parquet(path)
        frame = frame.astype(object).where(frame.notna(), "")
        return frame.map(str).astype(object)
    if sep is None:
        sep = "," if path.name.lower().endswith(".csv") else "\t"
    raw = pd.read_csv(
        path, sep=sep, dtype=str, keep_default_na=False, header=None, encoding="utf-8-sig"
    )
    if raw.empty:
        raise DataFormatError(path, "header", "empty file")
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = [str(c).strip() for c in raw.iloc[0]]
    return frame


def _unique(path: Path, where: str, names: Sequence[str], what: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataFormatError(
                path, where, f"duplicate {what} {name!r} (positions {seen[name] + 1} and {i + 1})"
            )
        seen[name] = i


def _row_names(path: Path, frame: pd.DataFrame, id_column: Any, what: str) -> list[str]:
    """The row names (sample ids or feature names) in ``id_column``; checked for duplicates."""
    if id_column is False:
        return [f"row{i + 1}" for i in range(len(frame))]
    column = frame.columns[0] if id_column is None else str(id_column)
    if column not in list(frame.columns):
        raise DataFormatError(
            path, "header", f"no id column {column!r}; columns are {list(frame.columns)[:8]}..."
        )
    names = [str(v).strip() for v in frame[column]]
    for row, name in enumerate(names):
        if not name:
            raise DataFormatError(path, f"line {row + 2} column {column!r}", f"empty {what}")
    _unique(path, f"column {column!r}", names, what)
    return names


def _numeric(path: Path, frame: pd.DataFrame, column: str, line_of: Any) -> np.ndarray | None:
    """A column as floats; None when no cell is a number (an annotation column)."""
    cells = [str(v).strip() for v in frame[column]]
    values = np.full(len(cells), np.nan)
    bad: list[int] = []
    for i, cell in enumerate(cells):
        if cell.lower() in MISSING:
            continue
        try:
            values[i] = float(cell)
        except ValueError:
            bad.append(i)
    if bad and len(bad) == sum(c.lower() not in MISSING for c in cells):
        return None
    if bad:
        i = bad[0]
        raise DataFormatError(
            path, f"{line_of(i)} column {column!r}", f"non-numeric cell {cells[i]!r} in the matrix"
        )
    if not np.all(np.isfinite(values[~np.isnan(values)])):
        raise DataFormatError(path, f"column {column!r}", "infinite value in the matrix")
    return values


def matrix_vectors(
    path: Path,
    frame: pd.DataFrame,
    id_column: Any = None,
    samples_as: str = "rows",
    exclude_columns: Sequence[str] = (),
    dropped: Counter | None = None,
) -> list[SampleVector]:
    """The samples of a string frame in either orientation (see the module docstring)."""
    if samples_as not in ("rows", "columns"):
        raise ValueError(f"{path}: samples_as={samples_as!r}: use rows or columns")
    what = "sample id" if samples_as == "rows" else "feature name"
    row_names = _row_names(path, frame, id_column, what)
    id_name = None if id_column is False else str(id_column or frame.columns[0])
    _unique(path, "header", list(frame.columns), "column name")
    columns, data = [], []
    for column in frame.columns:
        if column == id_name or column in exclude_columns:
            continue
        values = _numeric(path, frame, column, lambda i: f"line {i + 2}")
        if values is None:
            if dropped is not None:
                dropped[f"{path.name}: text column skipped"] += 1
            continue
        columns.append(str(column))
        data.append(values)
    matrix = np.column_stack(data) if data else np.zeros((len(frame), 0))
    if samples_as == "columns":
        features, ids, matrix = tuple(row_names), columns, matrix.T
    else:
        features, ids = tuple(columns), row_names
    if samples_as == "columns":
        _unique(path, "header", ids, "sample id")
    return [SampleVector(i, matrix[k], features, path) for k, i in enumerate(ids)]


def stack_vectors(vectors: Sequence[SampleVector]) -> tuple[np.ndarray, list[str], list[str]]:
    """(X [samples, features], ids, feature names): features aligned by name across files
    (NaN where a file lacks one); a sample id in two files is an error."""
    seen: dict[str, Path] = {}
    for v in vectors:
        if v.id in seen:
            raise DataFormatError(v.path, f"sample {v.id!r}", f"duplicate: also in {seen[v.id]}")
        seen[v.id] = v.path
    names = list(dict.fromkeys(f for v in vectors for f in v.features))
    column = {f: j for j, f in enumerate(names)}
    X = np.full((len(vectors), len(names)), np.nan)
    for i, v in enumerate(vectors):
        X[i, [column[f] for f in v.features]] = v.values
    return X, [v.id for v in vectors], names


def _options(options: dict[str, Any]) -> tuple[Counter | None, str | None]:
    return options.pop("dropped", None), options.pop("sep", None)


@register_format("matrix_table", TABLE_SUFFIXES, "SampleVector", "samples x features table")
def read_matrix_table(
    paths: Sequence[Path], on_error: str, **options: Any
) -> Iterator[SampleVector]:
    dropped, sep = _options(options)
    for path in paths:
        yield from matrix_vectors(path, read_frame(path, sep), dropped=dropped, **options)


@register_format("maxquant_protein_groups", (".txt", ".tsv"), "SampleVector", "proteinGroups.txt")
def read_maxquant(
    paths: Sequence[Path],
    on_error: str,
    intensity: str = "LFQ intensity ",
    id_column: str = "Protein IDs",
    dropped: Counter | None = None,
) -> Iterator[SampleVector]:
    """Samples from the ``<intensity><sample>`` columns; flagged rows dropped, 0 = missing."""
    for path in paths:
        frame = read_frame(path, "\t")
        samples = [c for c in frame.columns if c.startswith(intensity)]
        if not samples:
            raise DataFormatError(
                path,
                "header",
                f"no {intensity!r}<sample> columns (e.g. set intensity: 'Intensity ')",
            )
        keep = np.ones(len(frame), dtype=bool)
        for flag in MAXQUANT_FLAGS:
            if flag in frame.columns:
                flagged = frame[flag].str.strip() == "+"
                if dropped is not None:
                    dropped[f"{path.name}: {flag}"] += int((flagged & keep).sum())
                keep &= ~flagged.to_numpy()
        frame = frame.loc[keep, [id_column, *samples] if id_column in frame else samples]
        frame = frame.rename(columns={c: c[len(intensity) :].strip() for c in samples})
        vectors = matrix_vectors(path, frame.reset_index(drop=True), id_column, "columns")
        for vector in vectors:
            vector.values[vector.values == 0] = np.nan
        yield from vectors


@register_format("diann_pg_matrix", (".tsv",), "SampleVector", "DIA-NN pg_matrix.tsv")
def read_diann(
    paths: Sequence[Path],
    on_error: str,
    id_column: str = "Protein.Group",
    strip_paths: bool = True,
    dropped: Counter | None = None,
) -> Iterator[SampleVector]:
    """Runs as samples (a run's path reduced to its file stem unless ``strip_paths`` is off)."""
    for path in paths:
        frame = read_frame(path, "\t")
        annotations = [c for c in DIANN_ANNOTATIONS if c in frame.columns and c != id_column]
        if strip_paths:
            names = {c: RUN_SUFFIX.sub("", re.split(r"[\\/]", c)[-1]) for c in frame.columns}
            names = {c: n for c, n in names.items() if c not in (id_column, *annotations)}
            frame = frame.rename(columns=names)
        yield from matrix_vectors(path, frame, id_column, "columns", annotations, dropped)


@register_format("sample_table", TABLE_SUFFIXES, "SampleInfo", "sample id, label, covariates")
def read_sample_table(
    paths: Sequence[Path], on_error: str, id_column: Any = None, sep: str | None = None
) -> Iterator[SampleInfo]:
    for path in paths:
        frame = read_frame(path, sep)
        ids = _row_names(path, frame, id_column, "sample id")
        _unique(path, "header", list(frame.columns), "column name")
        records = frame.to_dict("records")
        for row, (sample, fields) in enumerate(zip(ids, records, strict=True)):
            yield SampleInfo(sample, {k: str(v).strip() for k, v in fields.items()}, path, row + 2)
