"""Exceptions that name the file, the record and the cause, so bad input is never a mystery."""

from __future__ import annotations


class DeepMSError(Exception):
    """Base class for every error deepms raises on purpose."""


class PeptideParseError(DeepMSError, ValueError):
    """A peptide string could not be turned into a :class:`deepms.chem.Peptide`."""


class UnknownModificationError(PeptideParseError):
    """A modification name or accession is not in Unimod (or in the alias table)."""


class InvalidResidueError(PeptideParseError):
    """A residue letter has no defined mass (X, B, Z, J, ...)."""


class DataFormatError(DeepMSError, ValueError):
    """A record in an input file is malformed; carries where it is and why."""

    def __init__(self, path: object, record: object, cause: object) -> None:
        self.path = str(path)
        self.record = record
        self.cause = cause
        super().__init__(f"{self.path}: record {record}: {cause}")


class ChecksumError(DeepMSError):
    """A data file's sha256 differs from the catalogue: refuse rather than train on other data."""

    def __init__(self, path: object, expected: str, actual: str) -> None:
        self.path = str(path)
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{self.path}: sha256 mismatch: expected {expected}, got {actual}; "
            "the file is corrupt or not the catalogued version"
        )


class DatasetNotFoundError(DeepMSError, FileNotFoundError):
    """A named data set or one of its files could not be found or downloaded."""
