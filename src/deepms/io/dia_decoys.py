"""Decoys for DIA libraries, and the streaming writer of predicted libraries with decoys.

OpenSWATH's decoy generator (``OpenSwathDecoyGenerator -method pseudo-reverse``) reverses each
target sequence but keeps its C-terminal residue (the tryptic K/R) in place, so a decoy has the
target's composition, mass and cleavage site; modifications move with their residues. A decoy
identical to a target sequence would be a target in disguise, so it is skipped (and counted).
Fragment m/z are recomputed from the decoy's residue masses (:mod:`deepms.chem`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from deepms.chem import Peptide
from deepms.chem.fragments import NEUTRAL_LOSSES
from deepms.chem.peptide import H2O, PROTON
from deepms.io.atomic import atomic_path
from deepms.io.dia_library import (
    DECOY_PREFIX,
    canonical,
    dia_format_of,
    open_dia_writer,
    to_dia_table,
)
from deepms.io.library import RT_COLUMN, library_peptide, parse_library_peptide

DECOY_METHODS = ("none", "pseudo_reverse")
#: ion types whose residues are counted from the N-terminus (the rest from the C-terminus)
N_TERMINAL_IONS = ("a", "b", "c")
#: key of ``table.attrs`` holding the number of precursors skipped as identical to a target
SKIPPED = "decoys_identical_to_target"


def pseudo_reverse(peptide: Peptide) -> Peptide:
    """``PEPTIDEK`` -> ``EDITPEPK``: residues 1..n-1 reversed with their modifications; the last
    residue and both termini's modifications stay."""
    n = len(peptide.sequence)
    sequence = peptide.sequence[-2::-1] + peptide.sequence[-1]
    mods = peptide.mods
    return Peptide(sequence, (mods[0], *mods[n - 1 : 0 : -1], mods[n], mods[n + 1]))


def _loss_mass(loss: str) -> float:
    """Neutral loss mass of a ``FragmentLossType``: noloss, a name (H2O, NH3, ...), or a number;
    NaN when unknown (such ions are moved by the mass shift instead)."""
    if loss in ("noloss", ""):
        return 0.0
    if loss in NEUTRAL_LOSSES:
        return NEUTRAL_LOSSES[loss]
    try:
        return float(loss)
    except ValueError:
        return float("nan")


def pseudo_reverse_decoys(table: pd.DataFrame, exclude: Iterable[str] = ()) -> pd.DataFrame:
    """Decoy transitions of the target rows of a table-model ``table`` (decoy rows are ignored).

    Each row keeps its ion type, number, charge, loss and intensity; b/y m/z are the decoy's
    theoretical ones (:mod:`deepms.chem` masses, less the named loss), other ions move by the
    decoy's mass shift. ``Decoy`` is 1; precursor, transition and protein ids get ``DECOY_``.
    A precursor whose decoy sequence equals a target sequence (of ``table`` or in ``exclude``) is
    skipped; their number is ``result.attrs["decoys_identical_to_target"]``.
    """
    targets = canonical(table)
    targets = targets[targets["Decoy"] == 0].reset_index(drop=True)
    known = set(targets["StrippedPeptide"]) | set(exclude)
    codes, peptides = pd.factorize(targets["ModifiedPeptide"])
    longest = max((len(parse_library_peptide(p).sequence) for p in peptides), default=1)
    shift = np.zeros((len(peptides), longest + 1))  # decoy - target prefix mass, per b number
    prefix = np.zeros((len(peptides), longest + 1))  # decoy prefix mass; [n] = residue total
    lengths = np.zeros(len(peptides), dtype=np.int64)
    names, sequences, keep = [], [], np.ones(len(peptides), dtype=bool)
    masses = np.zeros(len(peptides))
    for i, text in enumerate(peptides):
        target = parse_library_peptide(text)
        decoy = pseudo_reverse(target)
        n = lengths[i] = len(target.sequence)
        prefix[i, 1 : n + 1] = np.cumsum(decoy.residue_masses())
        shift[i, 1 : n + 1] = prefix[i, 1 : n + 1] - np.cumsum(target.residue_masses())
        names.append(library_peptide(decoy))
        sequences.append(decoy.sequence)
        masses[i] = decoy.monoisotopic_mass
        keep[i] = decoy.sequence not in known
    number = targets["FragmentNumber"].to_numpy()
    charge = targets["FragmentCharge"].to_numpy()
    n_terminal = targets["FragmentType"].isin(N_TERMINAL_IONS).to_numpy()
    valid = (number >= 1) & (number < lengths[codes]) & keep[codes]
    residues = np.where(n_terminal, number, lengths[codes] - number)  # prefix the ion lacks
    residues = np.clip(residues, 0, longest)
    delta = np.where(n_terminal, 1.0, -1.0) * shift[codes, residues]
    skipped = int(
        targets.loc[~keep[codes], ["ModifiedPeptide", "PrecursorCharge"]].drop_duplicates().shape[0]
    )
    decoys = targets[valid].copy()
    rows = codes[valid]
    # b/y with a known loss: the decoy's theoretical m/z; other ions: the target's m/z + shift
    kind = targets["FragmentType"].to_numpy()
    loss = targets["FragmentLossType"].map(_loss_mass).to_numpy(dtype=np.float64)
    total = prefix[codes, lengths[codes]]
    neutral = np.where(kind == "b", prefix[codes, residues], total - prefix[codes, residues] + H2O)
    exact = (neutral - loss + charge * PROTON) / np.maximum(charge, 1)
    shifted = targets["FragmentMz"].to_numpy() + delta / np.maximum(charge, 1)
    theoretical = np.isin(kind, ("b", "y")) & np.isfinite(loss)
    decoys["FragmentMz"] = np.where(theoretical, exact, shifted)[valid]
    decoys["ModifiedPeptide"] = np.asarray(names, dtype=object)[rows]
    decoys["StrippedPeptide"] = np.asarray(sequences, dtype=object)[rows]
    z = decoys["PrecursorCharge"].to_numpy()
    decoys["PrecursorMz"] = (masses[rows] + z * PROTON) / z  # as Peptide.precursor_mz
    for column in ("PrecursorId", "TransitionId"):
        decoys[column] = DECOY_PREFIX + decoys[column].astype(str)
    decoys["ProteinId"] = [
        ";".join(DECOY_PREFIX + p for p in text.split(";") if p) for text in decoys["ProteinId"]
    ]
    decoys["Decoy"] = 1
    out = canonical(decoys)
    out.attrs[SKIPPED] = skipped
    return out


def write_predicted_library(
    tables: Iterable[pd.DataFrame],
    path: str | os.PathLike[str],
    fmt: str | None = None,
    decoys: str = "none",
) -> dict[str, int]:
    """Stream predicted library rows (:data:`deepms.io.library.LIBRARY_COLUMNS` + RT) into an
    OpenSWATH/DIA-NN TSV or a PQP (:func:`deepms.io.dia_library.dia_format_of`), atomically.

    With ``decoys="pseudo_reverse"`` the decoys of each chunk wait in a temporary parquet file
    and follow all targets, so a decoy equal to any target of the whole library is skipped.
    """
    if decoys not in DECOY_METHODS:
        raise ValueError(f"decoys {decoys!r}: use one of {DECOY_METHODS}")
    fmt = dia_format_of(path, fmt)
    counts = {"precursors": 0, "fragments": 0}
    if decoys != "none":
        counts |= {"decoy_precursors": 0, "decoy_fragments": 0, "decoys_skipped": 0}
    targets: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="deepms-decoys-") as tmp, atomic_path(path) as part:
        writer = open_dia_writer(part, fmt)
        try:
            pending = []
            for chunk in tables:
                table = to_dia_table(chunk)
                if table[RT_COLUMN].isna().any():
                    raise ValueError(f"{path}: a DIA library needs retention times (--rt-model)")
                writer.write(table)
                counts["precursors"] += table["PrecursorId"].nunique()
                counts["fragments"] += len(table)
                if decoys != "none":
                    targets.update(table["StrippedPeptide"])
                    pending.append(Path(tmp) / f"{len(pending)}.parquet")
                    decoy_table = pseudo_reverse_decoys(table)
                    counts["decoys_skipped"] += decoy_table.attrs[SKIPPED]
                    decoy_table.to_parquet(pending[-1], index=False)
            for table in _filtered(pending, targets, counts):
                writer.write(table)
        finally:
            writer.close()
    return counts


def _filtered(paths: list[Path], targets: set[str], counts: dict[str, int]) -> Iterator:
    """The decoys saved per chunk, less those equal to a target of a later chunk."""
    for path in paths:
        table = pd.read_parquet(path)
        clash = table["StrippedPeptide"].isin(targets).to_numpy()
        skipped = table.loc[clash, "PrecursorId"].nunique()
        table = table[~clash]
        counts["decoys_skipped"] += skipped
        counts["decoy_precursors"] += table["PrecursorId"].nunique()
        counts["decoy_fragments"] += len(table)
        yield table
