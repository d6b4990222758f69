"""OpenSWATH PQP spectral libraries (SQLite): read into and write from the DIA table model.

The schema is OpenSWATH's (as in MassDash's test ``.pqp``, VERSION 3): PROTEIN, PEPTIDE,
PRECURSOR, TRANSITION and their mapping tables. Peptides are stored in OpenSWATH notation
(``.(UniMod:1)PEPTIDE``); the table model keeps DIA-NN's (:mod:`deepms.io.dia_library`).
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepms.errors import DataFormatError
from deepms.io.dia_library import (
    ANNOTATION_PATTERN,
    annotation,
    canonical,
    normalise_peptides,
    openswath_peptide,
)
from deepms.io.library import parse_library_peptide

_PQP_SCHEMA = """
CREATE TABLE VERSION(ID INT);
CREATE TABLE GENE(ID INT, GENE_NAME TEXT, DECOY INT);
CREATE TABLE PROTEIN(ID INT, PROTEIN_ACCESSION TEXT, DECOY INT);
CREATE TABLE PEPTIDE(ID INT, UNMODIFIED_SEQUENCE TEXT, MODIFIED_SEQUENCE TEXT, DECOY INT);
CREATE TABLE PRECURSOR_PEPTIDE_MAPPING(PRECURSOR_ID INT, PEPTIDE_ID INT);
CREATE TABLE PEPTIDE_PROTEIN_MAPPING(PEPTIDE_ID INT, PROTEIN_ID INT);
CREATE TABLE PEPTIDE_GENE_MAPPING(PEPTIDE_ID INT, GENE_ID INT);
CREATE TABLE PRECURSOR(ID INT, TRAML_ID TEXT, GROUP_LABEL TEXT, PRECURSOR_MZ REAL, CHARGE INT,
  LIBRARY_INTENSITY REAL, LIBRARY_RT REAL, LIBRARY_DRIFT_TIME REAL, DECOY INT);
CREATE TABLE TRANSITION(ID INT, TRAML_ID TEXT, PRODUCT_MZ REAL, CHARGE INT, TYPE TEXT,
  ANNOTATION TEXT, ORDINAL INT, DETECTING INT, IDENTIFYING INT, QUANTIFYING INT,
  LIBRARY_INTENSITY REAL, DECOY INT);
CREATE TABLE TRANSITION_PRECURSOR_MAPPING(TRANSITION_ID INT, PRECURSOR_ID INT);
CREATE TABLE TRANSITION_PEPTIDE_MAPPING(TRANSITION_ID INT, PEPTIDE_ID INT);
INSERT INTO VERSION VALUES (3);
INSERT INTO GENE VALUES (0, 'NA', 1);
"""
_PQP_INDEXES = """
CREATE INDEX idx_peptide_peptide_id ON PEPTIDE (ID);
CREATE INDEX idx_peptide_protein_mapping_peptide_id ON PEPTIDE_PROTEIN_MAPPING (PEPTIDE_ID);
CREATE INDEX idx_precursor_peptide_mapping_peptide_id ON PRECURSOR_PEPTIDE_MAPPING (PEPTIDE_ID);
CREATE INDEX idx_precursor_peptide_mapping_precursor_id ON PRECURSOR_PEPTIDE_MAPPING (PRECURSOR_ID);
CREATE INDEX idx_precursor_precursor_id ON PRECURSOR (ID);
CREATE INDEX idx_protein_protein_id ON PROTEIN (ID);
CREATE INDEX idx_transition_id ON TRANSITION (ID);
"""


def read_pqp(path: str | os.PathLike[str]) -> pd.DataFrame:
    """An OpenSWATH PQP (SQLite) library: transitions joined to precursors, peptides, proteins."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataFormatError(path, "file", "empty or missing PQP file")
    query = """
        SELECT PRECURSOR.TRAML_ID AS PrecursorId, PEPTIDE.MODIFIED_SEQUENCE AS ModifiedPeptide,
               PRECURSOR.CHARGE AS PrecursorCharge, PRECURSOR.PRECURSOR_MZ AS PrecursorMz,
               PRECURSOR.LIBRARY_RT AS NormalizedRetentionTime, TRANSITION.TRAML_ID AS
               TransitionId, TRANSITION.PRODUCT_MZ AS FragmentMz, TRANSITION.TYPE AS
               FragmentType, TRANSITION.ORDINAL AS FragmentNumber, TRANSITION.CHARGE AS
               FragmentCharge, {annotation} AS Annotation, TRANSITION.LIBRARY_INTENSITY
               AS RelativeIntensity, PRECURSOR.DECOY AS Decoy, PEPTIDE.ID AS peptide_id
        FROM TRANSITION
        JOIN TRANSITION_PRECURSOR_MAPPING
          ON TRANSITION.ID = TRANSITION_PRECURSOR_MAPPING.TRANSITION_ID
        JOIN PRECURSOR ON PRECURSOR.ID = TRANSITION_PRECURSOR_MAPPING.PRECURSOR_ID
        JOIN PRECURSOR_PEPTIDE_MAPPING ON PRECURSOR.ID = PRECURSOR_PEPTIDE_MAPPING.PRECURSOR_ID
        JOIN PEPTIDE ON PEPTIDE.ID = PRECURSOR_PEPTIDE_MAPPING.PEPTIDE_ID
        ORDER BY PRECURSOR.ID, TRANSITION.ID"""
    proteins_query = """
        SELECT PEPTIDE_ID, PROTEIN_ACCESSION FROM PEPTIDE_PROTEIN_MAPPING
        JOIN PROTEIN ON PROTEIN.ID = PEPTIDE_PROTEIN_MAPPING.PROTEIN_ID ORDER BY PROTEIN.ID"""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            columns = {r[1] for r in connection.execute("PRAGMA table_info(TRANSITION)")}
            annotation = (
                "TRANSITION.ANNOTATION" if "ANNOTATION" in columns else "TRANSITION.TRAML_ID"
            )
            raw = pd.read_sql_query(query.format(annotation=annotation), connection)
            mapping = pd.read_sql_query(proteins_query, connection)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        raise DataFormatError(path, "schema", f"not an OpenSWATH PQP library: {exc}") from exc
    proteins = mapping.groupby("PEPTIDE_ID", sort=False)["PROTEIN_ACCESSION"].agg(";".join)
    raw["ProteinId"] = raw["peptide_id"].map(proteins).fillna("")
    table: dict[str, Any] = {c: raw[c].to_numpy() for c in raw.columns if c != "peptide_id"}
    table["ModifiedPeptide"] = normalise_peptides(
        path, table["ModifiedPeptide"], "MODIFIED_SEQUENCE"
    )
    ions = [
        _ion(path, i, *row)
        for i, row in enumerate(
            zip(
                *(table.pop(c) for c in ("FragmentType", "FragmentNumber", "FragmentCharge")),
                table.pop("Annotation"),
                strict=True,
            )
        )
    ]
    for column, values in zip(ION_COLUMNS, zip(*ions, strict=True), strict=True):
        table[column] = np.asarray(values, dtype=object if column in ION_TEXT else np.int64)
    out = canonical(pd.DataFrame(table))
    out["StrippedPeptide"] = [parse_library_peptide(p).sequence for p in out["ModifiedPeptide"]]
    return out


ION_COLUMNS = ("FragmentType", "FragmentNumber", "FragmentCharge", "FragmentLossType")
ION_TEXT = ("FragmentType", "FragmentLossType")
_TRAML_ION = re.compile(r"_([abcxyz])(\d+)(?:_(\d+))?$")  # ..._y5 or ..._y16_2 (charge 2)


def _ion(path: Path, row: int, kind: Any, number: Any, charge: Any, text: Any) -> tuple:
    """Type, number, charge, loss of a transition; the loss from ANNOTATION's first ion (``y7``,
    ``b5-18^2/0.01``). Older OSW files leave TYPE/ORDINAL/CHARGE empty and name the ion at the
    end of TRAML_ID (``58037_PEPTIDER/3_y5``): read from there."""
    text = str(text or "")
    match = ANNOTATION_PATTERN.match(text)
    known = bool(kind) and number is not None and not pd.isna(number) and int(number) > 0
    if not known:
        traml = _TRAML_ION.search(text)
        if traml is None:
            raise DataFormatError(path, f"transition {row + 1}", f"no ion type in {text!r}")
        kind, number, match = traml[1], int(traml[2]), None
        charge = charge if charge is not None and not pd.isna(charge) else int(traml[3] or 1)
    if charge is None or pd.isna(charge):
        charge = int(match[4] or 1) if match else 1
    same = match is not None and match[1] == kind and int(match[2]) == int(number)
    return kind, int(number), int(charge), match[3] if same and match[3] else "noloss"


class PqpWriter:
    """Append table-model chunks to a new PQP; ids are assigned in order of first appearance."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(_PQP_SCHEMA)
        self.ids: dict[str, dict[Any, int]] = {"peptide": {}, "protein": {}, "precursor": {}}
        self.n_transitions = 0

    def write(self, table: pd.DataFrame) -> None:
        self._write(canonical(table))

    def _new(self, kind: str, key: Any) -> int | None:
        """The id of ``key``, or None when it is already known (its rows were inserted)."""
        known = self.ids[kind]
        if key in known:
            return None
        known[key] = len(known)
        return known[key]

    def _write(self, table: pd.DataFrame) -> None:
        rows: dict[str, list[tuple]] = {k: [] for k in ("pep", "prot", "map", "prec", "ppm")}
        firsts = table.drop_duplicates("PrecursorId")
        for r in firsts.itertuples(index=False):
            peptide_key = (r.ModifiedPeptide, r.Decoy)
            peptide_id = self._new("peptide", peptide_key)
            if peptide_id is not None:
                sequence = openswath_peptide(r.ModifiedPeptide)
                rows["pep"].append((peptide_id, r.StrippedPeptide, sequence, r.Decoy))
                for accession in filter(None, r.ProteinId.split(";")):
                    protein_id = self._new("protein", accession)
                    if protein_id is not None:
                        rows["prot"].append((protein_id, accession, r.Decoy))
                    rows["map"].append((peptide_id, self.ids["protein"][accession]))
            precursor_id = self._new("precursor", r.PrecursorId)
            if precursor_id is None:  # continued from an earlier chunk
                continue
            rt = None if np.isnan(r.NormalizedRetentionTime) else r.NormalizedRetentionTime
            precursor = (precursor_id, r.PrecursorId, "", r.PrecursorMz, r.PrecursorCharge)
            rows["prec"].append((*precursor, None, rt, -1.0, r.Decoy))
            rows["ppm"].append((precursor_id, self.ids["peptide"][peptide_key]))
        ids = np.arange(self.n_transitions, self.n_transitions + len(table))
        self.n_transitions += len(table)
        precursors = [self.ids["precursor"][p] for p in table["PrecursorId"]]
        transitions = [
            (
                *(int(i), r.TransitionId, r.FragmentMz, r.FragmentCharge, r.FragmentType),
                annotation(r.FragmentType, r.FragmentNumber, r.FragmentCharge, r.FragmentLossType),
                *(r.FragmentNumber, 1, 0, 1, r.RelativeIntensity, r.Decoy),
            )
            for i, r in zip(ids, table.itertuples(index=False), strict=True)
        ]
        db = self.db
        db.executemany("INSERT INTO PEPTIDE VALUES (?,?,?,?)", rows["pep"])
        db.executemany("INSERT INTO PROTEIN VALUES (?,?,?)", rows["prot"])
        db.executemany("INSERT INTO PEPTIDE_PROTEIN_MAPPING VALUES (?,?)", rows["map"])
        db.executemany(
            "INSERT INTO PEPTIDE_GENE_MAPPING VALUES (?,0)", [r[:1] for r in rows["pep"]]
        )
        db.executemany("INSERT INTO PRECURSOR VALUES (?,?,?,?,?,?,?,?,?)", rows["prec"])
        db.executemany("INSERT INTO PRECURSOR_PEPTIDE_MAPPING VALUES (?,?)", rows["ppm"])
        db.executemany("INSERT INTO TRANSITION VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", transitions)
        db.executemany(
            "INSERT INTO TRANSITION_PRECURSOR_MAPPING VALUES (?,?)",
            [(int(i), p) for i, p in zip(ids, precursors, strict=True)],
        )

    def close(self) -> None:
        self.db.executescript(_PQP_INDEXES)
        self.db.commit()
        self.db.close()
