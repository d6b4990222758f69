"""MS2PIP PEPREC tables and PEPREC+MGF pairs (labels live in the PEPREC, peaks in the MGF)."""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path

import pandas as pd

from deepms.chem import parse_peprec
from deepms.errors import DataFormatError
from deepms.io._records import RECORD_ERRORS, OnError, RecordErrors
from deepms.io.mgf import read_mgf
from deepms.io.spectrum import Spectrum

PEPREC_COLUMNS = ("spec_id", "modifications", "peptide", "charge")


def read_peprec(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a PEPREC (space or tab separated) with ``modifications`` kept as text ("-" = none).

    Raises :class:`DataFormatError` for a missing column or a non-integer charge.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    sep = "\t" if "\t" in first else " "
    frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    missing = [c for c in PEPREC_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(path, "header", f"missing PEPREC column(s) {missing}")
    charge = pd.to_numeric(frame["charge"], errors="coerce")
    bad = charge.isna() | (charge != charge.round())
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataFormatError(
            path, frame["spec_id"].iloc[row], f"charge {frame['charge'].iloc[row]!r} not an integer"
        )
    frame["charge"] = charge.astype("int64")
    return frame


def read_peprec_mgf(
    peprec: str | PathLike[str], mgf: str | PathLike[str], on_error: OnError = "raise"
) -> Iterator[Spectrum]:
    """Yield MGF spectra (in MGF order) labelled from the PEPREC row with ``spec_id == TITLE``.

    The PEPREC charge is the precursor charge (MS2PIP's convention); an MGF CHARGE that differs
    is an error. Spectra without a row, and rows without a spectrum (reported after the last
    spectrum), raise :class:`DataFormatError` or are skipped with a warning.
    """
    peprec, mgf = Path(peprec), Path(mgf)
    table = read_peprec(peprec)
    if table["spec_id"].duplicated().any():
        dup = table["spec_id"][table["spec_id"].duplicated()].iloc[0]
        raise DataFormatError(peprec, dup, "duplicate spec_id")
    rows = {
        sid: (pep, mods, int(z))
        for sid, pep, mods, z in zip(
            table["spec_id"], table["peptide"], table["modifications"], table["charge"], strict=True
        )
    }
    row_errors = RecordErrors(peprec, on_error)
    mgf_errors = RecordErrors(mgf, on_error)
    seen: set[str] = set()
    total = 0
    for spectrum in read_mgf(mgf, require_charge=False, on_error=on_error):
        total += 1
        row = rows.get(spectrum.identifier)
        if row is None:
            mgf_errors.handle(spectrum.identifier, "no PEPREC row with spec_id == TITLE")
            continue
        seen.add(spectrum.identifier)
        sequence, modifications, charge = row
        try:
            spectrum.peptide = parse_peprec(sequence, modifications)
            if spectrum.precursor_charge not in (None, charge):
                raise ValueError(
                    f"MGF CHARGE {spectrum.precursor_charge} != PEPREC charge {charge}"
                )
        except RECORD_ERRORS as exc:
            row_errors.handle(spectrum.identifier, exc)
            continue
        spectrum.precursor_charge = charge
        yield spectrum
    unmatched = [sid for sid in rows if sid not in seen]
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
        row_errors.handle(shown, f"{len(unmatched)} PEPREC row(s) have no spectrum in {mgf}")
    row_errors.finish(len(rows))
    mgf_errors.finish(total)
