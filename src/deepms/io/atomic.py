"""Files appear whole or not at all: write to a sibling ``.part`` file, rename when complete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str], per_process: bool = False) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; renamed onto ``path`` when the block ends
    without an error, removed otherwise (an interrupted library or download leaves no half file).

    ``per_process`` adds the process id to the temporary name, for files that several processes
    may produce at once (downloads, cached synthetic spectra): the last complete one wins.
    """
    path = Path(path)
    suffix = f".part{os.getpid()}" if per_process else ".part"
    partial = path.with_name(path.name + suffix)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
