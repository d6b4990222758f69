"""One error policy for every predictor's input: a bad record is named and set aside; the file
goes on.

Why: one bad row (a charge of 0, an NCE of ``abc``, a residue the model cannot encode) used to
abort a whole file, losing every good row after it, often with a message that named neither file
nor row. Now, with ``on_error="skip"`` (``deepms predict``'s default), each rejected record is
counted on stderr and written, with its file, its record (line, row or record id) and the cause,
to ``<output>.rejected.tsv``; ``on_error="raise"`` stops at the first one with the same message.
Whole-file problems (not text, wrong columns, no records) stay one error naming the file.

Finding the bad rows needs no per-task code: a chunk whose prediction fails is split in halves
until the failing rows stand alone (:func:`predict_isolating`), so a chunk with k bad rows costs
about 2 k log2(n) extra predictions of shrinking size, and a clean chunk costs nothing.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from deepms.errors import DeepMSError

ON_ERROR = ("skip", "raise")
#: exceptions that mean "this input is wrong", as opposed to a bug or an exhausted machine
DATA_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)
RECORD_NOUN = "record_noun"  # DataFrame.attrs key: what the index counts ("line", "row", ...)


class RecordError(DeepMSError, ValueError):
    """A record of an input file cannot be predicted (``on_error="raise"``)."""


@dataclass
class RejectedRecords:
    """Rejected records of one input file, under one policy."""

    path: str
    on_error: str = "skip"
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error {self.on_error!r}: use one of {ON_ERROR}")

    def reject(self, record: str, cause: str) -> None:
        """Set ``record`` aside (or raise, under ``on_error="raise"``)."""
        cause = " ".join(str(cause).split()) or "rejected"
        if self.on_error == "raise":
            raise RecordError(f"{self.path}: {record}: {cause}")
        self.rejected.append((record, cause))

    def finish(self, output: str | os.PathLike[str]) -> int:
        """Write ``<output>.rejected.tsv`` (or remove a stale one) and say so on stderr."""
        report = Path(f"{output}.rejected.tsv")
        if not self.rejected:
            report.unlink(missing_ok=True)
            return 0
        with open(report, "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["file", "record", "cause"])
            writer.writerows((self.path, record, cause) for record, cause in self.rejected)
        print(
            f"{self.path}: rejected {len(self.rejected)} record(s), kept the rest; "
            f"each with its cause in {report}",
            file=sys.stderr,
        )
        return len(self.rejected)


def record_labels(chunk: pd.DataFrame) -> list[str]:
    """``line 4``, ``row 3``: the reader's record numbers (index) and noun (attrs); a reader that
    did not say counts rows of the chunk from 1."""
    noun = chunk.attrs.get(RECORD_NOUN)
    if noun is None:
        return [f"row {i}" for i in range(1, len(chunk) + 1)]
    return [f"{noun} {i}" for i in chunk.index]


def predict_isolating(
    process: Callable[[pd.DataFrame], pd.DataFrame],
    chunk: pd.DataFrame,
    errors: RejectedRecords,
) -> list[pd.DataFrame]:
    """``process(chunk)``; if it fails on the data, the rows that fail alone are rejected and the
    others predicted (halving). Output tables come in input order.

    When every row of a chunk (3 or more) fails alone with the same cause, that is a whole-file
    problem (e.g. a missing column), raised once rather than reported per row."""
    labels = record_labels(chunk)
    try:
        return [process(chunk)]
    except DATA_ERRORS as exc:
        whole_chunk_error = exc
    found: list[tuple[str, str]] = []
    out = _halve(process, chunk, labels, found)
    if len(chunk) >= 3 and len(found) == len(chunk) and len({c for _, c in found}) == 1:
        raise whole_chunk_error  # the file's problem, not its records': the reader's own error
    for label, cause in found:
        errors.reject(label, cause)
    return out


def _halve(
    process: Callable[[pd.DataFrame], pd.DataFrame],
    chunk: pd.DataFrame,
    labels: list[str],
    found: list[tuple[str, str]],
) -> list[pd.DataFrame]:
    if len(chunk) == 1:
        try:
            return [process(chunk)]
        except DATA_ERRORS as exc:
            found.append((labels[0], str(exc)))
            return []
    mid = len(chunk) // 2
    parts = []
    for part, part_labels in ((chunk.iloc[:mid], labels[:mid]), (chunk.iloc[mid:], labels[mid:])):
        part = part.copy()
        part.attrs.update(chunk.attrs)
        try:
            parts.append(process(part))
        except DATA_ERRORS:
            parts.extend(_halve(process, part, part_labels, found))
    return parts
