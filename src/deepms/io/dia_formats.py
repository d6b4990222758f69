"""DIA input formats: OpenSWATH/PyProphet peak groups, DIA-NN reports and XIC files.

| format | files | records |
|---|---|---|
| ``pyprophet_tsv`` | PyProphet ``.tsv``/``.txt`` | one ``PeakGroups`` DataFrame per file |
| ``osw`` | OpenSWATH ``.osw`` (SQLite) | one ``PeakGroups`` DataFrame per file |
| ``diann_report`` | DIA-NN main report ``.tsv``/``.parquet`` | one DataFrame per file |
| ``xic`` | ``.sqMass``, chromatogram ``.mzML`` | :class:`~deepms.io.xic.Chromatogram` |

Why whole tables: target-decoy scoring needs every peak group of a file at once (decoys set
the null distribution), so peak-group formats yield one frame per file, not row records.
A bad file raises, or with ``on_error="skip"`` is logged and left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from deepms.errors import DataFormatError
from deepms.io._records import RecordErrors
from deepms.io.formats import register_format
from deepms.io.openswath import read_diann_report, read_peak_groups
from deepms.io.xic import XIC_SUFFIXES, Chromatogram, read_xics


def _tables(
    paths: Sequence[Path], on_error: str, read: Callable[[Path], pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    for path in paths:
        errors = RecordErrors(path, on_error)  # type: ignore[arg-type]
        try:
            frame = read(path)
        except DataFormatError as exc:
            if on_error == "raise":
                raise  # keep the reader's own error type and message
            errors.handle(exc.record, exc.cause)
            continue
        yield frame


@register_format("pyprophet_tsv", (".tsv", ".txt"), "PeakGroups", "PyProphet TSV peak groups")
def _pyprophet_tsv(paths: Sequence[Path], on_error: str) -> Iterator[pd.DataFrame]:
    yield from _tables(paths, on_error, read_peak_groups)


@register_format("osw", (".osw",), "PeakGroups", "OpenSWATH .osw peak groups (SQLite)")
def _osw(paths: Sequence[Path], on_error: str, include_ms1: bool = False) -> Iterator[Any]:
    yield from _tables(paths, on_error, lambda p: read_peak_groups(p, include_ms1=include_ms1))


@register_format("diann_report", (".tsv", ".parquet"), "DataFrame", "DIA-NN main report")
def _diann_report(paths: Sequence[Path], on_error: str) -> Iterator[pd.DataFrame]:
    yield from _tables(paths, on_error, read_diann_report)


@register_format("xic", XIC_SUFFIXES, "Chromatogram", "OpenSWATH XICs (.sqMass, chrom .mzML)")
def _xic(paths: Sequence[Path], on_error: str) -> Iterator[Chromatogram]:
    for path in paths:
        errors = RecordErrors(path, on_error)  # type: ignore[arg-type]
        try:
            yield from read_xics(path)
        except DataFormatError as exc:
            if on_error == "raise":
                raise
            errors.handle(exc.record, exc.cause)
