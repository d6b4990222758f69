"""Spectral library writers: predicted fragment tables to TSV, parquet or MSP, streaming.

Predictions arrive as one fragment table per chunk of precursors and writers append, so a library
of a whole proteome never has to fit in memory. Format by file extension: ``.tsv``
(DIA-NN/Spectronaut-style, one row per fragment), ``.parquet`` (same columns), ``.msp`` (NIST MSP
with peak annotations, via :func:`deepms.io.write_msp`). A library is written to a ``.part`` file
and renamed at the end, so a failed run never leaves a half library behind.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepms.chem import Peptide, parse_unimod_bracket
from deepms.io.atomic import atomic_path
from deepms.io.msp import write_msp
from deepms.io.precursors import suffix_of
from deepms.io.spectrum import Spectrum

PRECURSOR_COLUMNS = ["ModifiedPeptide", "StrippedPeptide", "PrecursorCharge", "PrecursorMz"]
FRAGMENT_COLUMNS = [
    "FragmentMz",
    "RelativeIntensity",
    "FragmentType",
    "FragmentNumber",
    "FragmentCharge",
    "FragmentLossType",
]
LIBRARY_COLUMNS = [*PRECURSOR_COLUMNS, *FRAGMENT_COLUMNS]
RT_COLUMN = "NormalizedRetentionTime"
LIBRARY_SUFFIXES = (".tsv", ".parquet", ".msp")


# --- peptide notation in libraries -------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def library_peptide(peptide: Peptide) -> str:
    """DIA-NN notation: ``PEPC(UniMod:4)K``; N-term mods lead, C-term mods follow a ``-``."""
    if peptide.mods.count(None) == len(peptide.mods):  # unmodified (faster than is_modified)
        return peptide.sequence
    mods, n = peptide.mods, len(peptide.sequence)
    out = [f"(UniMod:{mods[0].unimod_id})"] if mods[0] else []
    for i, aa in enumerate(peptide.sequence, start=1):
        out.append(aa if mods[i] is None else f"{aa}(UniMod:{mods[i].unimod_id})")
    if mods[n + 1] is not None:
        out.append(f"-(UniMod:{mods[n + 1].unimod_id})")
    return "".join(out)


@lru_cache(maxsize=1 << 16)
def parse_library_peptide(text: str) -> Peptide:
    """Read :func:`library_peptide` notation (and ``[UniMod:n]`` / ``_..._`` variants) back."""
    bracketed = re.sub(r"\((UniMod:\d+)\)", r"[\1]", text.strip().strip("_"))
    return parse_unimod_bracket(bracketed)


# --- outputs: library writers ------------------------------------------------------------------


def _annotation(kind: str, number: int, charge: int, loss: str) -> str:
    """``y7``, ``b5-H2O``, ``y7^2``: the labels of :class:`deepms.chem.Fragment`."""
    loss_text = "" if loss == "noloss" else f"-{loss}"
    return f"{kind}{number}{loss_text}{f'^{charge}' if charge > 1 else ''}"


def library_spectra(table: pd.DataFrame) -> Iterator[Spectrum]:
    """One :class:`Spectrum` per precursor of a fragment table (rows grouped by precursor)."""
    if table.empty:
        return
    key = table["ModifiedPeptide"].astype(str) + "/" + table["PrecursorCharge"].astype(str)
    starts = np.flatnonzero(np.r_[True, key.to_numpy()[1:] != key.to_numpy()[:-1]])
    bounds = np.r_[starts, len(table)]
    columns = {c: table[c].to_numpy() for c in table.columns}
    for start, stop in itertools.pairwise(bounds):
        comment = {}
        if RT_COLUMN in columns:
            comment["iRT"] = repr(float(columns[RT_COLUMN][start]))
        annotations = [
            _annotation(*row)
            for row in zip(
                columns["FragmentType"][start:stop],
                columns["FragmentNumber"][start:stop],
                columns["FragmentCharge"][start:stop],
                columns["FragmentLossType"][start:stop],
                strict=True,
            )
        ]
        peptide = parse_library_peptide(str(columns["ModifiedPeptide"][start]))
        charge = int(columns["PrecursorCharge"][start])
        yield Spectrum(
            identifier=f"{peptide.to_proforma()}/{charge}",
            mz=columns["FragmentMz"][start:stop],
            intensity=columns["RelativeIntensity"][start:stop],
            precursor_mz=float(columns["PrecursorMz"][start]),
            precursor_charge=charge,
            peptide=peptide,
            metadata={"annotations": annotations, "comment": comment},
        )


class _ArrowSink:
    """Append tables to a CSV, TSV or parquet file, batching small tables into row groups."""

    def __init__(self, path: Path, kind: str, rows_per_group: int = 200_000) -> None:
        self.path, self.kind, self.rows_per_group = path, kind, rows_per_group
        self.writer: Any = None
        self.handle: Any = None
        self.pending: list[Any] = []
        self.n_pending = 0

    def write(self, table: pd.DataFrame) -> None:
        import pyarrow as pa

        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if self.writer is None:
            self._open(arrow.schema)
        self.pending.append(arrow.cast(self.schema))
        self.n_pending += len(arrow)
        if self.n_pending >= self.rows_per_group:
            self.flush()

    def _open(self, schema: Any) -> None:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        self.schema = schema
        if self.kind == "parquet":
            self.writer = pq.ParquetWriter(self.path, schema)
            return
        delimiter = "\t" if self.kind == "tsv" else ","
        self.handle = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.handle.write((delimiter.join(schema.names) + "\n").encode())  # arrow quotes names
        quoting = "none" if self.kind == "tsv" else "needed"  # TSV for DIA-NN: no quotes
        options = pcsv.WriteOptions(
            include_header=False, delimiter=delimiter, quoting_style=quoting
        )
        self.writer = pcsv.CSVWriter(self.handle, schema, write_options=options)

    def flush(self) -> None:
        import pyarrow as pa

        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending))
            self.pending, self.n_pending = [], 0

    def close(self) -> None:
        if self.writer is not None:
            self.flush()
            self.writer.close()
        if self.handle is not None:
            self.handle.close()


def write_tables(
    tables: Iterable[pd.DataFrame], path: str | os.PathLike[str], columns: Sequence[str] = ()
) -> int:
    """Stream tables into a CSV, TSV or parquet file, written atomically; rows written.

    ``columns`` head the file when no table arrives, so an empty result is still a valid file.
    """
    path = Path(path)
    kind = suffix_of(path, (".csv", ".tsv", ".parquet")).lstrip(".")
    rows = 0
    with atomic_path(path) as partial:
        sink = _ArrowSink(partial, kind)
        try:
            for table in tables:
                sink.write(table)
                rows += len(table)
        finally:
            sink.close()
        if sink.writer is None:
            empty = pd.DataFrame(columns=list(columns))
            if kind == "parquet":
                empty.to_parquet(partial, index=False)
            else:
                empty.to_csv(partial, sep="\t" if kind == "tsv" else ",", index=False)
    return rows


def write_library(tables: Iterable[pd.DataFrame], path: str | os.PathLike[str]) -> dict[str, int]:
    """Stream fragment tables into ``path`` (format by extension); counts precursors, fragments."""
    path = Path(path)
    kind = suffix_of(path, LIBRARY_SUFFIXES).lstrip(".")
    counts = {"precursors": 0, "fragments": 0}

    def counted() -> Iterator[pd.DataFrame]:
        for table in tables:
            counts["fragments"] += len(table)
            if len(table):
                key = table["ModifiedPeptide"].to_numpy(), table["PrecursorCharge"].to_numpy()
                changes = (key[0][1:] != key[0][:-1]) | (key[1][1:] != key[1][:-1])
                counts["precursors"] += 1 + int(np.count_nonzero(changes))
            yield table

    if kind != "msp":
        write_tables(counted(), path, LIBRARY_COLUMNS)
        return counts
    with atomic_path(path) as partial:
        write_msp((s for t in counted() for s in library_spectra(t)), partial)
    return counts
