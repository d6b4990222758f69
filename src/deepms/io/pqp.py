"""OpenSWATH PQP spectral libraries (SQLite): read into and write from the DIA table model.

The schema is OpenSWATH's (as in MassDash's test ``.pqp``, VERSION 3): PROTEIN, PEPTIDE,
PRECURSOR, TRANSITION and their mapping tables. Peptides are stored in OpenSWATH notation
(``.(UniMod:1)PEPTIDE``); the table model keeps DIA-NN's (:mod:`deepms.io.dia_library`).

Some OpenSWATH files keep a precursor's modifications only in PRECURSOR.TRAML_ID, written with
old TPP mass tags (``13478_AFDM[147]EER/2``), while PEPTIDE.MODIFIED_SEQUENCE is plain (the
DIAlignR S. pyogenes OSW: 57 of 322 precursors). The precursor m/z is the modified one, so a
reader that trusts MODIFIED_SEQUENCE alone pairs the oxidised precursor with an unmodified
peptide: :func:`precursor_peptide` recovers the modification and :func:`read_pqp` uses it.
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

from deepms.chem import parse_proforma
from deepms.errors import DataFormatError
from deepms.io.dia_library import (
    ANNOTATION_PATTERN,
    annotation,
    canonical,
    normalise_peptides,
    openswath_peptide,
)
from deepms.io.library import library_peptide, parse_library_peptide

#: old TPP mass tags in OpenSWATH TRAML_IDs (residue + nominal residue mass) -> ProForma
MASS_TAGS = {
    "M[147]": "M[Oxidation]",
    "C[160]": "C[Carbamidomethyl]",
    "C[143]": "C[Pyro-carbamidomethyl]",  # N-terminal carbamidomethyl-C cyclised (UniMod 26)
    "Q[111]": "Q[Gln->pyro-Glu]",
    "E[111]": "E[Glu->pyro-Glu]",
    "N[115]": "N[Deamidated]",
    "Q[129]": "Q[Deamidated]",
}
_TRAML_PEPTIDE = re.compile(r"^(?:DECOY_)?\d+_([A-Z0-9\[\]()]+)/\d+$")
_TAGGED_RESIDUE = re.compile(r"[A-Z](?:\[\d+\])?")


def _tagged_proforma(tokens: list[str]) -> str | None:
    """ProForma of TPP-tagged residues; None for a mass tag not in :data:`MASS_TAGS`."""
    out = []
    for token in tokens:
        if "[" in token and token not in MASS_TAGS:
            return None
        out.append(MASS_TAGS.get(token, token))
    return "".join(out)


def _traml_tokens(traml_id: Any, sequence: str, decoy: bool) -> list[str] | None:
    """The TRAML_ID's residues with their mass tags when it has tags and its residues are
    ``sequence``; else None.

    Targets: the tagged residues must spell ``sequence``. Decoys: OpenSWATH's pseudo-reverse
    keeps the C-terminal residue and moves modifications with their residues, while the decoy's
    TRAML_ID keeps the *target's* tagged sequence, so the tokens are pseudo-reversed first.
    """
    match = _TRAML_PEPTIDE.match(str(traml_id or ""))
    if not match or "[" not in match[1]:
        return None
    tokens = _TAGGED_RESIDUE.findall(match[1])
    if decoy and len(tokens) > 1:
        tokens = tokens[-2::-1] + tokens[-1:]
    return tokens if "".join(t[0] for t in tokens) == sequence else None


def traml_peptide(traml_id: Any, sequence: str, decoy: bool) -> str | None:
    """ProForma peptide from a precursor's TRAML_ID mass tags; None when it has none, its
    residues are not ``sequence`` (:func:`_traml_tokens`) or a tag is not in :data:`MASS_TAGS`."""
    tokens = _traml_tokens(traml_id, sequence, decoy)
    return _tagged_proforma(tokens) if tokens is not None else None


def precursor_peptide(traml_id: Any, sequence: str, modified: str, decoy: bool) -> str:
    """ProForma peptide of one precursor ('' if it cannot be written).

    TRAML_ID's mass tags when its residues are the peptide's, else PEPTIDE.MODIFIED_SEQUENCE
    (any library notation). A pairing TRAML_ID with an unknown tag gives '': the precursor is
    modified (its m/z says so) but the modification cannot be named, and falling back to the
    plain sequence would pass it off as unmodified.
    """
    tokens = _traml_tokens(traml_id, sequence, decoy)
    if tokens is not None:
        return _tagged_proforma(tokens) or ""
    try:
        return str(parse_library_peptide(str(modified).strip("_.")))
    except Exception:
        return ""


def _with_traml_modifications(raw: pd.DataFrame) -> pd.Series:
    """MODIFIED_SEQUENCE, or the TRAML_ID's modified peptide (DIA-NN notation) where
    MODIFIED_SEQUENCE carries no modification and the TRAML_ID does (one parse per precursor)."""
    modified = raw["ModifiedPeptide"].astype(str)
    plain = ~modified.str.contains(r"[\[(]", regex=True)
    tagged = raw["PrecursorId"].astype(str).str.contains("[", regex=False)
    out = modified.copy()
    candidates = raw.loc[plain & tagged, ["PrecursorId", "sequence", "Decoy"]].drop_duplicates()
    for traml_id, sequence, decoy in candidates.itertuples(index=False):
        peptide = traml_peptide(traml_id, str(sequence), bool(decoy))
        if peptide is not None:
            rows = (raw["PrecursorId"] == traml_id) & plain
            out[rows] = library_peptide(parse_proforma(peptide))
    return out


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
    """An OpenSWATH PQP (SQLite) library: transitions joined to precursors, peptides, proteins.

    ``ModifiedPeptide`` is PEPTIDE.MODIFIED_SEQUENCE, or the TRAML_ID's mass-tagged peptide when
    MODIFIED_SEQUENCE is plain and the TRAML_ID carries modifications (module docstring).
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataFormatError(path, "file", "empty or missing PQP file")
    query = """
        SELECT PRECURSOR.TRAML_ID AS PrecursorId, PEPTIDE.MODIFIED_SEQUENCE AS ModifiedPeptide,
               PEPTIDE.UNMODIFIED_SEQUENCE AS sequence,
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
    raw["ModifiedPeptide"] = _with_traml_modifications(raw)
    skip = ("peptide_id", "sequence")
    table: dict[str, Any] = {c: raw[c].to_numpy() for c in raw.columns if c not in skip}
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
