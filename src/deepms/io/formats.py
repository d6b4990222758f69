"""One registry of input formats over the :mod:`deepms.io` readers.

A data source names its format (``format: plabel``); the format knows which of the source's files
it reads (by suffix) and how to turn them into records. Every task finds its readers here, so a
format is written once and a user's own file is read by the same code as a catalogued one.

A reader is ``read(paths, on_error, **options) -> Iterator[record]``: ``paths`` are the source's
local files already filtered to the format's suffixes (in catalogue order), ``on_error`` is the
bad-record policy (``raise`` or ``skip``), and ``options`` are format options from the source spec
(e.g. ``alphabet`` or ``label`` for FASTA). Modules that add formats register them with
:func:`register_format`; :func:`get_format` imports the built-in ones on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepms.errors import DeepMSError

#: FASTA file suffixes (plain or gzipped): one list for every FASTA reader in deepms
FASTA_SUFFIXES = (
    ".fasta",
    ".fa",
    ".faa",
    ".fna",
    ".fasta.gz",
    ".fa.gz",
    ".faa.gz",
    ".fna.gz",
)

Reader = Callable[..., Iterator[Any]]


class UnknownFormatError(DeepMSError, ValueError):
    """A source names a format no reader is registered for."""


@dataclass(frozen=True)
class Format:
    """A named input format: the reader, the files it takes and what it yields."""

    name: str
    read: Reader
    suffixes: tuple[str, ...]  # lower-case file suffixes this format reads ('' = any file)
    record: str  # the record type it yields, for documentation and errors
    description: str = ""

    def takes(self, path: str | Path) -> bool:
        """Whether ``path`` is one of this format's files (by its suffix)."""
        name = Path(path).name.lower()
        return not self.suffixes or any(name.endswith(s) for s in self.suffixes)

    def open(self, paths: Sequence[Path], on_error: str = "raise", **options: Any) -> Iterator:
        """Records of the files in ``paths`` that this format reads."""
        mine = [Path(p) for p in paths if self.takes(p)]
        if not mine:
            names = ", ".join(Path(p).name for p in paths) or "none"
            raise UnknownFormatError(
                f"format {self.name!r} reads {', '.join(self.suffixes)} files; given: {names}"
            )
        return self.read(mine, on_error, **options)


_FORMATS: dict[str, Format] = {}
#: modules that register the built-in formats when imported
_BUILTIN_MODULES = (
    "deepms.io.builtin_formats",
    "deepms.io.dia_formats",
    "deepms.io.msi_formats",
    "deepms.io.ms1map",
    "deepms.io.features",
)
_loaded = False


def register_format(
    name: str, suffixes: Sequence[str], record: str, description: str = ""
) -> Callable[[Reader], Reader]:
    """Decorator: register ``read`` as format ``name`` (re-registering a name is an error)."""

    def decorate(read: Reader) -> Reader:
        if name in _FORMATS and _FORMATS[name].read is not read:
            raise ValueError(f"format {name!r} is registered twice")
        _FORMATS[name] = Format(name, read, tuple(s.lower() for s in suffixes), record, description)
        return read

    return decorate


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def formats() -> dict[str, Format]:
    """Every registered format by name."""
    _load_builtins()
    return dict(sorted(_FORMATS.items()))


def get_format(name: str) -> Format:
    """The format called ``name``; a clear error listing the known ones otherwise."""
    _load_builtins()
    if name not in _FORMATS:
        raise UnknownFormatError(f"unknown format {name!r}; known: {sorted(_FORMATS)}")
    return _FORMATS[name]
