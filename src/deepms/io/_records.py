"""One place that decides what happens to a bad record: raise, or skip with a logged warning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from os import PathLike
from typing import Literal, Union

from pyteomics.auxiliary import PyteomicsError

from deepms.errors import DataFormatError

logger = logging.getLogger("deepms.io")

#: "raise", "skip" (logged), or a sink ``(record, cause) -> None`` that takes the record over
#: (``deepms predict`` collects rejected records into ``<output>.rejected.tsv`` this way)
OnError = Union[Literal["raise", "skip"], Callable[[str, str], None]]  # noqa: UP007 - alias

#: Exceptions that mean "this record is malformed" (not a bug in deepms); readers catch these.
RECORD_ERRORS: tuple[type[Exception], ...] = (ValueError, PyteomicsError)


class RecordErrors:
    """Apply the ``on_error`` policy for one file and count skipped records.

    Why: every reader must name file, record and cause the same way, and ``skip`` must never
    drop records silently.
    """

    def __init__(self, path: str | PathLike[str], on_error: OnError = "raise") -> None:
        self.sink = on_error if callable(on_error) else None
        if self.sink is None and on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise', 'skip' or a callable, got {on_error!r}")
        self.path = str(path)
        self.on_error = on_error
        self.skipped = 0

    def handle(self, record: object, cause: object) -> None:
        """Raise :class:`DataFormatError`, log it as a warning, or hand it to the sink."""
        if self.sink is not None:
            self.skipped += 1
            self.sink(f"record {record}", str(cause))
            return
        error = DataFormatError(self.path, record, cause)
        if self.on_error == "raise":
            raise error from (cause if isinstance(cause, BaseException) else None)
        self.skipped += 1
        logger.warning("skipped bad record: %s", error)

    def finish(self, total: int) -> None:
        """Log how many records were skipped, so a partly-read file is visible in the logs."""
        if self.skipped:
            logger.warning(
                "%s: skipped %d of %d records (on_error='skip')", self.path, self.skipped, total
            )
