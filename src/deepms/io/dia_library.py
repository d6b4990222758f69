"""DIA spectral libraries: one table model, read from and written to OpenSWATH TSV, DIA-NN TSV
and OpenSWATH PQP (SQLite), plus OpenSWATH-style pseudo-reversed decoys.

Every reader returns the same table (:data:`DIA_COLUMNS`, one row per transition), so predicted
and experimental libraries compare column for column whatever tool wrote them. Peptides are kept
in DIA-NN notation (:func:`deepms.io.library.library_peptide`); OpenSWATH's ``.(UniMod:1)``
terminal notation is translated on the way in and out. Column names follow each tool (OpenMS
``TargetedFileConverter`` TSV; DIA-NN's library TSV; OpenSWATH's PQP schema); readers accept the
aliases those tools accept. Files are written atomically (:mod:`deepms.io.atomic`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepms.errors import DataFormatError, PeptideParseError
from deepms.io.atomic import atomic_path
from deepms.io.library import RT_COLUMN, library_peptide, parse_library_peptide

#: the table model: one row per transition
DIA_COLUMNS = [
    "PrecursorId",
    "ModifiedPeptide",
    "StrippedPeptide",
    "PrecursorCharge",
    "PrecursorMz",
    "ProteinId",
    RT_COLUMN,
    "TransitionId",
    "FragmentMz",
    "FragmentType",
    "FragmentNumber",
    "FragmentCharge",
    "FragmentLossType",
    "RelativeIntensity",
    "Decoy",
]
INT_COLUMNS = ("PrecursorCharge", "FragmentNumber", "FragmentCharge", "Decoy")
FLOAT_COLUMNS = ("PrecursorMz", RT_COLUMN, "FragmentMz", "RelativeIntensity")
DIA_FORMATS = ("openswath", "diann", "pqp")
DECOY_PREFIX = "DECOY_"

#: table column -> (OpenSWATH TSV name, DIA-NN TSV name)
_WRITE_NAMES = {
    "PrecursorMz": ("PrecursorMz", "PrecursorMz"),
    "FragmentMz": ("ProductMz", "ProductMz"),
    "PrecursorCharge": ("PrecursorCharge", "PrecursorCharge"),
    "FragmentCharge": ("ProductCharge", "FragmentCharge"),
    "RelativeIntensity": ("LibraryIntensity", "LibraryIntensity"),
    RT_COLUMN: ("NormalizedRetentionTime", "Tr_recalibrated"),
    "StrippedPeptide": ("PeptideSequence", "PeptideSequence"),
    "ModifiedPeptide": ("ModifiedPeptideSequence", "ModifiedPeptide"),
    "ProteinId": ("ProteinId", "ProteinName"),
    "FragmentType": ("FragmentType", "FragmentType"),
    "FragmentNumber": ("FragmentSeriesNumber", "FragmentSeriesNumber"),
    "FragmentLossType": ("FragmentLossType", "FragmentLossType"),
    "PrecursorId": ("TransitionGroupId", "transition_group_id"),
    "TransitionId": ("TransitionId", "transition_name"),
    "Decoy": ("Decoy", "decoy"),
}
#: table column -> the header names readers accept (OpenMS and DIA-NN aliases), first wins
_READ_NAMES = {
    "PrecursorMz": ("PrecursorMz", "Q1"),
    "FragmentMz": ("ProductMz", "FragmentMz", "Q3"),
    "RelativeIntensity": ("LibraryIntensity", "RelativeIntensity", "RelativeFragmentIntensity"),
    RT_COLUMN: (
        "NormalizedRetentionTime",
        "Tr_recalibrated",
        "iRT",
        "RetentionTime",
        "RetentionTimeCalculatorScore",
    ),
    "ModifiedPeptide": (
        "ModifiedPeptideSequence",
        "ModifiedPeptide",
        "FullUniModPeptideName",
        "FullPeptideName",
        "ModifiedSequence",
        "PeptideSequence",
    ),
    "PrecursorCharge": ("PrecursorCharge", "Charge"),
    "FragmentCharge": ("ProductCharge", "FragmentCharge"),
    "FragmentType": ("FragmentType",),
    "FragmentNumber": ("FragmentSeriesNumber", "FragmentNumber"),
    "FragmentLossType": ("FragmentLossType",),
    "ProteinId": ("ProteinId", "ProteinName", "UniprotID", "UniprotId"),
    "PrecursorId": ("TransitionGroupId", "transition_group_id"),
    "TransitionId": ("TransitionId", "transition_name"),
    "Decoy": ("Decoy", "decoy"),
    "Annotation": ("Annotation",),
}
_REQUIRED = ("PrecursorMz", "FragmentMz", "RelativeIntensity", "ModifiedPeptide", "PrecursorCharge")
ANNOTATION_PATTERN = re.compile(r"^\[?([abcxyz])(\d+)(?:-([A-Za-z0-9.]+))?(?:\^(\d+))?")


# --- peptides ----------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def normalise_peptide(text: str) -> str:
    """Any library notation (DIA-NN, OpenSWATH ``.(UniMod:1)``, ``_..._``) to DIA-NN's."""
    text = text.strip().strip("_")
    if text.startswith("."):
        text = text[1:]
    text = re.sub(r"\.(\(UniMod:\d+\))$", r"-\1", text)
    return library_peptide(parse_library_peptide(text))


def openswath_peptide(modified: str) -> str:
    """DIA-NN notation to OpenSWATH's: terminal mods ``.(UniMod:n)PEP``, ``PEP.(UniMod:n)``."""
    if modified.startswith("("):
        modified = "." + modified
    return modified.replace("-(UniMod:", ".(UniMod:")


def annotation(kind: str, number: int, charge: int, loss: str) -> str:
    loss_text = "" if loss in ("noloss", "") else f"-{loss}"
    return f"{kind}{number}{loss_text}{f'^{charge}' if charge > 1 else ''}"


# --- the table model ---------------------------------------------------------------------------


def canonical(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with exactly :data:`DIA_COLUMNS`, in order, with their dtypes."""
    out = pd.DataFrame(index=range(len(table)))
    for column in DIA_COLUMNS:
        values = table[column].to_numpy() if column in table.columns else None
        if column in INT_COLUMNS:
            default = 0 if column == "Decoy" else 1
            out[column] = default if values is None else values.astype(np.int64)
        elif column in FLOAT_COLUMNS:
            out[column] = np.nan if values is None else values.astype(np.float64)
        else:
            text = pd.Series(values if values is not None else [""] * len(table), dtype=object)
            out[column] = text.fillna("").astype(str).to_numpy(dtype=object)
    return out


def to_dia_table(predicted: pd.DataFrame) -> pd.DataFrame:
    """Predicted library rows (:data:`deepms.io.library.LIBRARY_COLUMNS`) to the table model;
    precursor ids ``PEPTIDE_2``, transition ids ``PEPTIDE_2_y7_1`` (``_H2O`` for a loss)."""
    table = predicted.copy()
    precursor = table["ModifiedPeptide"].astype(str) + "_" + table["PrecursorCharge"].astype(str)
    ion = table["FragmentType"].astype(str) + table["FragmentNumber"].astype(str)
    loss = table["FragmentLossType"].astype(str)
    suffix = np.where(loss.to_numpy() == "noloss", "", "_" + loss.to_numpy().astype(object))
    table["PrecursorId"] = precursor
    table["TransitionId"] = precursor + "_" + ion + "_" + table["FragmentCharge"].astype(str)
    table["TransitionId"] = table["TransitionId"] + suffix
    return canonical(table)


# --- readers -----------------------------------------------------------------------------------


def read_dia_library(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A library file as the table model: ``.pqp`` read as SQLite, anything else as a TSV whose
    layout (OpenSWATH or DIA-NN) is told by its header."""
    path = Path(path)
    if path.suffix.lower() in (".pqp", ".osw"):  # an OSW result file holds its PQP library
        from deepms.io.pqp import read_pqp

        return read_pqp(path)
    return read_library_tsv(path)


def read_library_tsv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """An OpenSWATH or DIA-NN TSV library (header aliases as OpenMS and DIA-NN accept them)."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError(path, "header", "empty file: no header, no transitions") from exc
    names = {}
    for column, aliases in _READ_NAMES.items():
        found = next((a for a in aliases if a in raw.columns), None)
        if found is not None:
            names[column] = found
    for column in _REQUIRED:
        if column not in names:
            raise DataFormatError(path, "header", f"missing column {'/'.join(_READ_NAMES[column])}")
    table = {column: raw[name].to_numpy(dtype=object) for column, name in names.items()}
    for column in (*FLOAT_COLUMNS, *INT_COLUMNS):
        if column in table and column != "Decoy":
            table[column] = _numbers(path, table[column], names[column], column in INT_COLUMNS)
    if "Decoy" in table:
        flags = pd.Series(table["Decoy"]).str.strip().str.lower()
        table["Decoy"] = flags.isin(["1", "true"]).astype(np.int64).to_numpy()
    modified = table.pop("ModifiedPeptide")
    table["ModifiedPeptide"] = normalise_peptides(path, modified, names["ModifiedPeptide"])
    _fill_fragments(path, table)
    out = canonical(pd.DataFrame(table))
    out["StrippedPeptide"] = [parse_library_peptide(p).sequence for p in out["ModifiedPeptide"]]
    if "PrecursorId" not in names:
        out["PrecursorId"] = out["ModifiedPeptide"] + "_" + out["PrecursorCharge"].astype(str)
    if "TransitionId" not in names:
        out["TransitionId"] = [str(i) for i in range(len(out))]
    return out


def _numbers(path: Path, values: np.ndarray, name: str, integer: bool) -> np.ndarray:
    """Parse a numeric column; the first bad cell is named by line (header = line 1)."""
    text = pd.Series(values, dtype=object).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = numbers.isna() & text.ne("")
    if bad.any() or (integer and numbers.isna().any()):
        i = int(np.flatnonzero(bad | (integer & numbers.isna()))[0])
        raise DataFormatError(path, f"line {i + 2}", f"{name} {values[i]!r} is not a number")
    return numbers.to_numpy(dtype=np.int64 if integer else np.float64)


def normalise_peptides(path: Path, values: np.ndarray, name: str) -> list[str]:
    out = []
    for i, text in enumerate(values):
        try:
            out.append(normalise_peptide(str(text)))
        except PeptideParseError as exc:
            raise DataFormatError(path, f"line {i + 2}", f"{name} {text!r}: {exc}") from exc
    return out


def _fill_fragments(path: Path, table: dict[str, Any]) -> None:
    """Fragment type/number/charge/loss from their columns, else from the ``Annotation``."""
    wanted = ("FragmentType", "FragmentNumber", "FragmentCharge", "FragmentLossType")
    if all(c in table for c in wanted):
        return
    annotations = table.get("Annotation")
    if annotations is None:
        if "FragmentType" not in table or "FragmentNumber" not in table:
            cause = "missing column FragmentType/FragmentSeriesNumber (or Annotation)"
            raise DataFormatError(path, "header", cause)
        table.setdefault("FragmentLossType", np.full(len(table["FragmentType"]), "noloss"))
        return
    parsed = []
    for i, text in enumerate(annotations):
        match = ANNOTATION_PATTERN.match(str(text))
        if match is None and ("FragmentType" not in table or "FragmentNumber" not in table):
            raise DataFormatError(path, f"line {i + 2}", f"Annotation {text!r}: not an ion")
        kind, number, loss, charge = match.groups() if match else ("", 0, None, None)
        parsed.append((kind, int(number), int(charge or 1), loss or "noloss"))
    for column, values in zip(wanted, zip(*parsed, strict=True), strict=True):
        table.setdefault(column, np.asarray(values, dtype=object))


# --- writers -----------------------------------------------------------------------------------

_TSV_LAYOUT = {
    "openswath": [
        *("PrecursorMz", "FragmentMz", "PrecursorCharge", "FragmentCharge", "RelativeIntensity"),
        *(RT_COLUMN, "StrippedPeptide", "ModifiedPeptide", "ProteinId", "FragmentType"),
        *("FragmentNumber", "Annotation", "PrecursorId", "TransitionId", "Decoy"),
    ],
    "diann": [
        *("PrecursorMz", "FragmentMz", RT_COLUMN, "TransitionId", "RelativeIntensity"),
        *("PrecursorId", "Decoy", "StrippedPeptide", "ProteinId", "ModifiedPeptide"),
        *("PrecursorCharge", "FragmentType", "FragmentCharge", "FragmentNumber"),
        "FragmentLossType",
    ],
}


class TsvLibraryWriter:
    """Append table-model chunks to an OpenSWATH (``openswath``) or DIA-NN (``diann``) TSV."""

    def __init__(self, path: str | os.PathLike[str], fmt: str) -> None:
        self.fmt = fmt
        self.handle = open(path, "w", newline="")  # noqa: SIM115 - closed in close()
        names = _WRITE_NAMES | {"Annotation": ("Annotation", "Annotation")}
        column = 0 if fmt == "openswath" else 1
        self.handle.write("\t".join(names[c][column] for c in _TSV_LAYOUT[fmt]) + "\n")

    def write(self, table: pd.DataFrame) -> None:
        table = canonical(table)
        if self.fmt == "openswath":
            table["ModifiedPeptide"] = [openswath_peptide(p) for p in table["ModifiedPeptide"]]
            ions = table[["FragmentType", "FragmentNumber", "FragmentCharge", "FragmentLossType"]]
            table["Annotation"] = [annotation(*row) for row in ions.itertuples(index=False)]
        table[_TSV_LAYOUT[self.fmt]].to_csv(self.handle, sep="\t", header=False, index=False)

    def close(self) -> None:
        self.handle.close()


def dia_format_of(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """``fmt``, else ``pqp`` for a ``.pqp`` path; a ``.tsv`` needs ``fmt`` (openswath/diann)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".pqp":
        if fmt not in (None, "pqp", "openswath"):
            raise ValueError(f"{path}: a .pqp file is always an OpenSWATH PQP, not {fmt!r}")
        return "pqp"
    if fmt is None or fmt == "pqp":
        raise ValueError(f"{path}: name a TSV layout (openswath or diann) or use a .pqp file")
    return fmt


def open_dia_writer(path: str | os.PathLike[str], fmt: str) -> Any:
    """A writer (``write(table)``, ``close()``) of ``fmt``: openswath, diann or pqp."""
    if fmt == "pqp":
        from deepms.io.pqp import PqpWriter

        return PqpWriter(path)
    if fmt not in _TSV_LAYOUT:
        raise ValueError(f"library format {fmt!r}: use one of {DIA_FORMATS}")
    return TsvLibraryWriter(path, fmt)


def write_dia_library(
    tables: pd.DataFrame | Iterable[pd.DataFrame],
    path: str | os.PathLike[str],
    fmt: str | None = None,
) -> int:
    """Write table-model chunks as ``fmt`` (see :func:`dia_format_of`), atomically; rows."""
    fmt = dia_format_of(path, fmt)
    chunks: Iterable[pd.DataFrame] = [tables] if isinstance(tables, pd.DataFrame) else tables
    rows = 0
    with atomic_path(path) as partial:
        writer = open_dia_writer(partial, fmt)
        try:
            for chunk in chunks:
                writer.write(chunk)
                rows += len(chunk)
        finally:
            writer.close()
    return rows


def __getattr__(name: str) -> Any:
    """``read_pqp`` and ``pseudo_reverse_decoys`` live in :mod:`deepms.io.pqp` and
    :mod:`deepms.io.dia_decoys` (which import this module); reachable from here too."""
    if name in ("read_pqp", "PqpWriter"):
        from deepms.io import pqp

        return getattr(pqp, name)
    if name in ("pseudo_reverse_decoys", "pseudo_reverse", "write_predicted_library"):
        from deepms.io import dia_decoys

        return getattr(dia_decoys, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
