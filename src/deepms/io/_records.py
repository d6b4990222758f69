"""One place that decides what happens to a bad record: raise, or skip with a logged warning."""

from __future__ import annotations

import logging
from os import PathLike
from typing import Literal

from pyteomics.auxiliary import PyteomicsError

from deepms.errors import DataFormatError

logger = logging.getLogger("deepms.io")

OnError = Literal["raise", "skip"]

#: Exceptions that mean "this record is malformed" (not a bug in deepms); readers catch these.
RECORD_ERRORS: tuple[type[Exception], ...] = (ValueError, PyteomicsError)


class RecordErrors:
    """Apply the ``on_error`` policy for one file and count skipped records.

    Why: every reader must name file, record and cause the same way, and ``skip`` must never
    drop records silently.
    """

    def __init__(self, path: str | PathLike[str], on_error: OnError = "raise") -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.path = str(path)
        self.on_error = on_error
        self.skipped = 0

    def handle(self, record: object, cause: object) -> None:
        """Raise :class:`DataFormatError` or log it as a warning, depending on the policy."""
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
