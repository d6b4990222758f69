"""FASTA (plain or gzip), labelled FASTA headers, and DeepBind's ``.seq`` tables.

Sequence tasks keep their labels in different places: DeepLoc and CLIP sets in the FASTA header
(``>Q9H400 Cell.membrane-M test``, ``> chr1,+,69315,69415; class:0``), DeepBind's ENCODE sets in a
TSV column. All become :class:`SequenceRecord`. A record whose label cannot be read, whose letters
break the alphabet's rule, or which is empty raises :class:`deepms.errors.DataFormatError` naming
file, record and cause (or is skipped and counted with ``on_error="skip"``).

FASTA is parsed here rather than by ``pyteomics.fasta.read``: pyteomics reads a header line that
follows a header as a continued comment, so a record with no sequence silently merges into the
next record's header -- and its label would be read off the wrong protein.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import IO, Any

from deepms.chem.alphabets import Alphabet, get_alphabet
from deepms.io._records import RECORD_ERRORS, OnError, RecordErrors

LabelParser = Callable[[str], Any]
_CLIP_CLASS = re.compile(r"class:\s*([01])\b")


@dataclass
class SequenceRecord:
    """One sequence, its identifier and (when a parser was given) its label."""

    identifier: str
    sequence: str
    description: str = ""
    label: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def open_text(path: str | PathLike[str]) -> IO[str]:
    """Open a text file, transparently gunzipping (by magic bytes, not by name)."""
    path = Path(path)
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def clip_label(description: str) -> int:
    """CLIP FASTA (iONMF / iDeepS): ``> chr1,+,69315,69415; class:1`` -> 1."""
    match = _CLIP_CLASS.search(description)
    if match is None:
        raise ValueError(f"no label: header {description.strip()!r} has no 'class:<0|1>'")
    return int(match.group(1))


def _fasta_entries(handle: IO[str]) -> Iterator[tuple[str, str]]:
    """(header without '>', joined sequence) per record; text before the first '>' is ignored."""
    header: str | None = None
    lines: list[str] = []
    for line in handle:
        line = line.strip()
        if line.startswith(">"):
            if header is not None:
                yield header, "".join(lines)
            header, lines = line[1:], []
        elif line and header is not None and not line.startswith(";"):
            lines.append(line)
    if header is not None:
        yield header, "".join(lines)


def _check(sequence: str, alphabet: Alphabet | None) -> str:
    if alphabet is not None:
        sequence = alphabet.clean(sequence)
    if not sequence:
        raise ValueError("empty sequence")
    return sequence


def read_fasta(
    path: str | PathLike[str],
    label: LabelParser | None = None,
    alphabet: str | Alphabet | None = None,
    on_error: OnError = "raise",
) -> Iterator[SequenceRecord]:
    """Yield FASTA records; ``label(description)`` parses the header's label when given.

    A label parser that raises or returns None marks the record as lacking its label: a
    :class:`DataFormatError` (file, record number and identifier, cause) under ``raise``.
    """
    alpha = get_alphabet(alphabet) if isinstance(alphabet, str) else alphabet
    errors = RecordErrors(path, on_error)
    total = 0
    with open_text(path) as handle:
        for total, (description, sequence) in enumerate(_fasta_entries(handle), 1):
            description = description.strip()
            identifier = description.split()[0].rstrip(";") if description else f"#{total}"
            where = f"#{total} ({identifier})"
            try:
                sequence = _check(sequence, alpha)
                value = None
                if label is not None:
                    value = label(description)
                    if value is None:
                        raise ValueError(f"no label in header {description!r}")
            except RECORD_ERRORS as exc:
                errors.handle(where, exc)
                continue
            yield SequenceRecord(identifier, sequence, description, value)
    errors.finish(total)


def read_seq_table(
    path: str | PathLike[str],
    alphabet: str | Alphabet | None = "dna",
    on_error: OnError = "raise",
) -> Iterator[SequenceRecord]:
    """DeepBind ``.seq`` (gzip) TSV ``FoldID EventID seq Bound``; label = Bound (0/1)."""
    alpha = get_alphabet(alphabet) if isinstance(alphabet, str) else alphabet
    errors = RecordErrors(path, on_error)
    total = 0
    with open_text(path) as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = {"EventID", "seq", "Bound"} - set(reader.fieldnames or ())
        if missing:
            errors.on_error = "raise"
            errors.handle("header", f"missing column(s) {sorted(missing)}")
        for total, row in enumerate(reader, 1):
            identifier = row.get("EventID") or f"#{total}"
            try:
                bound = (row.get("Bound") or "").strip()
                if bound not in ("0", "1"):
                    raise ValueError(f"no label: Bound is {bound!r}, not 0 or 1")
                sequence = _check(row.get("seq") or "", alpha)
            except RECORD_ERRORS as exc:
                errors.handle(f"#{total} ({identifier})", exc)
                continue
            fold = row.get("FoldID", "")
            yield SequenceRecord(identifier, sequence, "", int(bound), {"fold": fold})
    errors.finish(total)


def write_fasta(records: list[SequenceRecord], path: str | PathLike[str], width: int = 60) -> Path:
    """Write records (description if set, else identifier) as ``width``-column FASTA."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        for r in records:
            handle.write(f">{r.description or r.identifier}\n")
            for start in range(0, len(r.sequence), width):
                handle.write(r.sequence[start : start + width] + "\n")
    return path
