"""DLOmix/Prosit parquet (174-vector intensities) mapped onto deepms' bond-indexed layout."""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from deepms.chem import fragment_mz, parse_unimod_bracket
from deepms.errors import DataFormatError
from deepms.io._records import RECORD_ERRORS, OnError, RecordErrors
from deepms.io.spectrum import AnnotatedSpectrum

PROSIT_POSITIONS = 29  # fragment numbers 1..29 -> peptides up to 30 residues
PROSIT_IONS = 6  # y1+, y2+, y3+, b1+, b2+, b3+ per position
PROSIT_VECTOR = PROSIT_POSITIONS * PROSIT_IONS
#: ``masses_raw`` holds observed fragment m/z (ITMS within 0.5 Da of theory); a row where more than
#: MAX_OFF_FRACTION of them sit over MASS_TOLERANCE_DA from the peptide's own ions is mislabelled.
MASS_TOLERANCE_DA = 1.0
MAX_OFF_FRACTION = 0.1
REQUIRED = ("modified_sequence", "precursor_charge", "intensities_raw")
OPTIONAL = (
    "raw_file",
    "scan_number",
    "fragmentation",
    "mass_analyzer",
    "aligned_collision_energy",
    "andromeda_score",
)


def prosit_to_bonds(vector: np.ndarray, length: int) -> np.ndarray:
    """Map a 174-vector to ``[length-1, 2 (b, y), 3 (z)]``.

    Position p (1-based) holds y_p and b_p; b_p sits at bond p-1 and y_p at bond length-p-1,
    so the y block is the position block reversed.
    """
    if not 2 <= length <= PROSIT_POSITIONS + 1:
        raise ValueError(f"peptide length {length} outside 2..{PROSIT_POSITIONS + 1}")
    block = np.asarray(vector, dtype=np.float32).reshape(PROSIT_POSITIONS, PROSIT_IONS)
    block = block[: length - 1]
    out = np.empty((length - 1, 2, 3), dtype=np.float32)
    out[:, 0, :] = block[:, 3:6]
    out[:, 1, :] = block[::-1, 0:3]
    return out


def check_masses(peptide: Any, masses: np.ndarray) -> None:
    """Refuse a row whose stored fragment m/z do not belong to its peptide."""
    observed = prosit_to_bonds(masses, len(peptide.sequence))
    theory = fragment_mz(peptide, charges=(1, 2, 3))[..., 0]
    present = observed > 0
    if not present.any():
        return
    off = np.abs(observed[present] - theory[present]) > MASS_TOLERANCE_DA
    if off.mean() > MAX_OFF_FRACTION:
        raise ValueError(
            f"masses_raw disagree with {peptide}: {int(off.sum())} of {int(present.sum())} "
            f"fragment m/z are more than {MASS_TOLERANCE_DA} Da from its b/y ions "
            "(mislabelled or corrupt row)"
        )


def _row(
    values: dict[str, Any], vector: np.ndarray, index: int, masses: np.ndarray | None = None
) -> AnnotatedSpectrum:
    if vector.size != PROSIT_VECTOR:
        raise ValueError(f"intensities_raw has {vector.size} values, expected {PROSIT_VECTOR}")
    peptide = parse_unimod_bracket(values["modified_sequence"])
    if masses is not None and masses.size == PROSIT_VECTOR:
        check_masses(peptide, masses)
    ce = values.get("aligned_collision_energy")
    identifier = (
        f"{values['raw_file']}:{values['scan_number']}"
        if values.get("raw_file") is not None and values.get("scan_number") is not None
        else str(index)
    )
    meta = {k: values[k] for k in ("raw_file", "scan_number", "andromeda_score") if k in values}
    return AnnotatedSpectrum(
        identifier=identifier,
        peptide=peptide,
        precursor_charge=int(values["precursor_charge"]),
        intensities=prosit_to_bonds(vector, len(peptide.sequence)),
        collision_energy=float(ce) if ce is not None else None,
        fragmentation=values.get("fragmentation"),
        analyzer=values.get("mass_analyzer"),
        metadata=meta,
    )


def read_prosit_parquet(
    path: str | PathLike[str], on_error: OnError = "raise", batch_size: int = 4096
) -> Iterator[AnnotatedSpectrum]:
    """Stream a DLOmix intensity parquet batch by batch (whole-file loads are avoided).

    ``collision_energy`` is ``aligned_collision_energy`` (NCE); -1 (impossible ion) stays -1.
    When ``masses_raw`` is present each row's fragment m/z are checked against its peptide
    (:func:`check_masses`). Errors name the 0-based row index.
    """
    path = Path(path)
    errors = RecordErrors(path, on_error)
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise DataFormatError(path, "schema", f"missing column(s) {missing}")
    columns = [*REQUIRED, *(c for c in (*OPTIONAL, "masses_raw") if c in names)]
    index = 0
    for batch in parquet.iter_batches(batch_size=batch_size, columns=columns):
        lists = batch.column("intensities_raw")
        offsets = lists.offsets.to_numpy()
        flat = lists.values.to_numpy(zero_copy_only=False)
        masses = batch.column("masses_raw") if "masses_raw" in columns else None
        mass_flat = masses.values.to_numpy(zero_copy_only=False) if masses is not None else None
        lists_only = ("intensities_raw", "masses_raw")
        scalars = {c: batch.column(c).to_pylist() for c in columns if c not in lists_only}
        for i in range(batch.num_rows):
            values = {c: scalars[c][i] for c in scalars}
            try:
                if not lists[i].is_valid:
                    raise ValueError("intensities_raw is null")
                row_masses = None
                if masses is not None and masses[i].is_valid:
                    start, stop = masses.offsets[i].as_py(), masses.offsets[i + 1].as_py()
                    row_masses = mass_flat[start:stop]
                record = _row(values, flat[offsets[i] : offsets[i + 1]], index, row_masses)
            except RECORD_ERRORS as exc:
                errors.handle(index, exc)
            else:
                yield record
            index += 1
    errors.finish(index)
