"""Peptide retention-time tables (DeepLC, DeepRT, DLOmix, ProForma), registered as formats.

| format | files | columns (peptide notation) |
|---|---|---|
| ``rt_deeplc`` | ``.csv`` | ``seq,modifications,tr`` (DeepLC ``pos|Name``) |
| ``rt_deeprt`` | ``.txt``/``.tsv`` | ``sequence<TAB>RT`` (DeepRT digit-coded residues) |
| ``rt_dlomix`` | ``.csv`` | ``sequence,irt`` (UNIMOD brackets) |
| ``rt_proforma`` | ``.csv`` | ``peptide,rt`` (ProForma) |

Each yields one :class:`RTRow` per good row: the peptide parsed by the shared notation parsers
and the RT as written in the file (no unit conversion, no merging of duplicate rows: both are the
task's choice). A bad row is a :class:`DataFormatError` naming file, line and cause under
``on_error="raise"``; under ``skip`` it is counted in the ``dropped`` counter when one is given
(``"<file>: <error type>"``), so the run's lineage reports it. A missing column always raises.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from deepms.chem import Peptide, parse_deeplc, parse_deeprt, parse_proforma, parse_unimod_bracket
from deepms.errors import DataFormatError, DeepMSError
from deepms.io.formats import register_format

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RTRow:
    """One row of an RT table: the parsed peptide, its RT in the file's unit, where it was."""

    peptide: Peptide
    rt: float
    line: int  # 1-based line in the file (the header is line 1)
    path: Path
    text: str  # the peptide as written, for error messages


@dataclass(frozen=True)
class TableLayout:
    """Where a table keeps sequence, modifications and RT, and which parser reads the peptide."""

    sep: str
    sequence: str
    rt: str
    parse: Callable[[str, Any], Peptide]
    modifications: str | None = None


LAYOUTS: dict[str, TableLayout] = {
    "rt_deeplc": TableLayout(",", "seq", "tr", parse_deeplc, "modifications"),
    "rt_deeprt": TableLayout("\t", "sequence", "RT", lambda s, _: parse_deeprt(s)),
    "rt_dlomix": TableLayout(",", "sequence", "irt", lambda s, _: parse_unimod_bracket(s)),
    "rt_proforma": TableLayout(",", "peptide", "rt", lambda s, _: parse_proforma(s)),
}


def drop_row(
    path: Path,
    line: int,
    text: str,
    err: Exception,
    on_error: str | Callable[[str, Exception], None],
    dropped: Counter | None,
) -> None:
    """Apply ``on_error`` to one bad row (also used by tasks that refuse rows after reading):
    ``raise``, ``skip`` (counted), or a sink ``(record, error)`` that takes the row over."""
    if callable(on_error):
        on_error(f"line {line} ({text})", err)
        return
    if on_error == "raise":
        raise DataFormatError(path, f"line {line} ({text!r})", err) from err
    if dropped is not None:
        dropped[f"{path.name}: {type(err).__name__}"] += 1
    log.debug("%s line %d: %s", path, line, err)


def read_table(
    path: Path,
    layout: str,
    on_error: str | Callable[[str, Exception], None] = "raise",
    dropped: Counter | None = None,
) -> Iterator[RTRow]:
    """The good rows of one RT table in file order (see the module docstring); a ``.tsv`` file
    is read tab-separated whatever the layout."""
    spec = LAYOUTS[layout]
    sep = "\t" if Path(path).suffix.lower() == ".tsv" else spec.sep
    table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    missing = [c for c in (spec.sequence, spec.rt, spec.modifications) if c and c not in table]
    if missing:
        raise DataFormatError(path, "header", f"missing column(s) {missing} for format {layout!r}")
    mods = table[spec.modifications] if spec.modifications else [None] * len(table)
    rows = zip(table[spec.sequence], mods, table[spec.rt], strict=True)
    for row, (seq, mod, rt_text) in enumerate(rows):
        line = row + 2
        try:
            peptide = spec.parse(seq, mod or None)
            rt = float(rt_text)
            if not math.isfinite(rt):
                raise ValueError(f"retention time {rt_text!r} is not a finite number")
        except (DeepMSError, ValueError) as err:
            drop_row(path, line, seq, err, on_error, dropped)
            continue
        yield RTRow(peptide, rt, line, path, seq)


def _register(name: str, suffixes: tuple[str, ...], description: str) -> None:
    def read(
        paths: Sequence[Path], on_error: str, dropped: Counter | None = None
    ) -> Iterator[RTRow]:
        for path in paths:
            yield from read_table(path, name, on_error, dropped)

    register_format(name, suffixes, "RTRow", description)(read)


_register("rt_deeplc", (".csv",), "DeepLC RT table: seq, modifications (pos|Name), tr")
_register("rt_deeprt", (".txt", ".tsv"), "DeepRT RT table: sequence (digit mods) <TAB> RT")
_register("rt_dlomix", (".csv",), "DLOmix RT table: sequence (UNIMOD brackets), irt")
_register("rt_proforma", (".csv",), "RT table: peptide (ProForma), rt")
