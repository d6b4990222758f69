"""Precursor lists for prediction: tables (CSV, TSV, parquet) and in-silico FASTA digests.

Inputs stream in chunks of precursors, so a whole proteome never has to be held: only the set of
peptidoforms already emitted is kept, to drop peptides shared by several proteins. Digestion uses
pyteomics' cleavage rules (``pyteomics.parser.expasy_rules`` names or a regex).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepms.chem import get_modification_table
from deepms.io._records import RecordErrors
from deepms.io.fasta import read_fasta
from deepms.io.formats import FASTA_SUFFIXES

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
RejectSink = Callable[[str, str], None]  # (record, cause): a reader hands over a bad record
_STANDARD = re.compile(r"^[ACDEFGHIKLMNPQRSTVWY]+$")


def suffix_of(path: str | os.PathLike[str], known: Sequence[str]) -> str:
    """The known (possibly double, ``.fasta.gz``) suffix of ``path``; a clear error otherwise."""
    name = Path(path).name.lower()
    for suffix in sorted(known, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise ValueError(f"{path}: unsupported file type; use one of {', '.join(known)}")


def read_table_chunks(path: str | os.PathLike[str], chunk_size: int) -> Iterator[pd.DataFrame]:
    """CSV, TSV or parquet in chunks of ``chunk_size`` rows.

    Each chunk's index is the record's place in the file and ``attrs["record_noun"]`` says what
    it counts (``line`` of a text table, the header being line 1; ``row`` of a parquet), so a
    rejected record can be named. Blank lines are kept as all-empty rows (rejected as such by
    ``deepms predict``) so the line numbers stay true. Bytes that are not UTF-8 and text that
    is not a table are one error naming the file."""
    suffix = suffix_of(path, TABLE_SUFFIXES)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        first = 1
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(first, first + len(frame))
            frame.attrs["record_noun"] = "row"
            first += len(frame)
            yield frame
        return
    try:
        reader = pd.read_csv(
            path,
            sep="\t" if suffix == ".tsv" else ",",
            chunksize=chunk_size,
            skip_blank_lines=False,
        )
        for frame in reader:
            frame.index = frame.index + 2  # 0-based data rows after a 1-line header
            frame.attrs["record_noun"] = "line"
            yield frame
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} cannot be decoded); "
            "save the table as UTF-8"
        ) from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: not a readable table: {exc}") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty file, no header and no records") from None


@dataclass(frozen=True)
class ModSpec:
    """``Name@sites``: sites are residue letters, ``N-term`` or ``C-term`` (peptide termini)."""

    name: str
    sites: str

    @classmethod
    def parse(cls, text: str) -> ModSpec:
        name, at, sites = text.strip().rpartition("@")
        if not at or not name or not sites:
            raise ValueError(f"modification {text!r}: expected Name@sites, e.g. Oxidation@M")
        table = get_modification_table()
        if sites in ("N-term", "C-term"):
            return cls(table.get(name, terminus=sites).name, sites)
        if not _STANDARD.match(sites):
            raise ValueError(f"modification {text!r}: sites must be residue letters or N/C-term")
        return cls(table.get(name, residue=sites[0]).name, sites)

    def slots(self, sequence: str) -> list[int]:
        """ProForma slots (0 N-term, 1..n residues, n+1 C-term) this modification can occupy."""
        if self.sites == "N-term":
            return [0]
        if self.sites == "C-term":
            return [len(sequence) + 1]
        return [i for i, aa in enumerate(sequence, start=1) if aa in self.sites]


@dataclass(frozen=True)
class DigestSettings:
    """In-silico digestion and precursor settings (defaults: the usual tryptic DIA library)."""

    enzyme: str = "trypsin"  # a pyteomics.parser.expasy_rules name or a cleavage regex
    missed_cleavages: int = 1
    min_length: int = 7
    max_length: int = 30
    charges: tuple[int, ...] = (2, 3)
    fixed_mods: tuple[str, ...] = ("Carbamidomethyl@C",)
    variable_mods: tuple[str, ...] = ()
    max_variable_mods: int = 1

    def __post_init__(self) -> None:
        from pyteomics import parser

        rule = parser.expasy_rules.get(self.enzyme.lower(), self.enzyme)
        try:
            re.compile(rule)
        except re.error as exc:
            raise ValueError(f"enzyme {self.enzyme!r}: not a known enzyme or regex") from exc
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError(f"length range {self.min_length}-{self.max_length} is empty")
        object.__setattr__(self, "_rule", rule)
        object.__setattr__(self, "_fixed", [ModSpec.parse(m) for m in self.fixed_mods])
        object.__setattr__(self, "_variable", [ModSpec.parse(m) for m in self.variable_mods])

    def peptidoforms(self, sequence: str) -> Iterator[str]:
        """ProForma strings: fixed mods everywhere, then up to ``max_variable_mods`` variable."""
        slots: list[str | None] = [None] * (len(sequence) + 2)
        for spec in self._fixed:
            for slot in spec.slots(sequence):
                slots[slot] = slots[slot] or spec.name
        options = [
            (slot, spec.name)
            for spec in self._variable
            for slot in spec.slots(sequence)
            if slots[slot] is None
        ]
        for k in range(min(self.max_variable_mods, len(options)) + 1):
            for chosen in itertools.combinations(options, k):
                if len({slot for slot, _ in chosen}) < k:
                    continue
                placed = list(slots)
                for slot, name in chosen:
                    placed[slot] = name
                yield _proforma(sequence, placed)

    def digest(self, protein: str) -> Iterator[str]:
        """Cleavage products within the length range, standard residues only, in order."""
        from pyteomics import parser

        for _, peptide in parser.icleave(
            protein,
            self._rule,
            missed_cleavages=self.missed_cleavages,
            min_length=self.min_length,
            max_length=self.max_length,
            regex=True,
        ):
            if _STANDARD.match(peptide):
                yield peptide


def _proforma(sequence: str, slots: list[str | None]) -> str:
    n = len(sequence)
    head = f"[{slots[0]}]-" if slots[0] else ""
    body = "".join(aa + (f"[{slots[i]}]" if slots[i] else "") for i, aa in enumerate(sequence, 1))
    return head + body + (f"-[{slots[n + 1]}]" if slots[n + 1] else "")


_PROTEIN_LETTERS = re.compile(r"^[A-Za-z]+\*?$")


def _fasta_sequences(path: Path, reject: RejectSink | None = None) -> Iterator[str]:
    """Upper-case protein sequences of a FASTA (the one reader).

    A record whose sequence holds anything but letters (and a final ``*``) is a record error:
    handed to ``reject`` (``deepms predict``: named in ``<output>.rejected.tsv``), else raised.
    Letters outside the 20 standard residues (X, U, B, ...) are kept: the digest drops the
    peptides that hold them. Empty records are skipped and logged, as before."""
    errors = RecordErrors(path, reject if reject is not None else "raise")
    for number, record in enumerate(read_fasta(path, on_error="skip"), 1):
        sequence = record.sequence.strip()
        if not _PROTEIN_LETTERS.match(sequence):
            bad = "".join(sorted(set(re.sub(r"[A-Za-z]", "", sequence.rstrip("*")))))
            cause = f"non-standard characters {bad!r} in its sequence"
            errors.handle(f"#{number} ({record.identifier})", cause)
            continue
        yield sequence.rstrip("*").upper()


def digest_fasta(
    path: str | os.PathLike[str],
    settings: DigestSettings,
    chunk_size: int,
    reject: RejectSink | None = None,
) -> Iterator[pd.DataFrame]:
    """Unique precursors of a FASTA (``peptide``, ``charge``, ``collision_energy``) in chunks."""
    seen: set[str] = set()
    rows: list[str] = []
    for protein in _fasta_sequences(Path(path), reject):
        for sequence in settings.digest(protein):
            for proforma in settings.peptidoforms(sequence):
                if proforma not in seen:
                    seen.add(proforma)
                    rows.append(proforma)
        while len(rows) * len(settings.charges) >= chunk_size:
            take = max(1, chunk_size // len(settings.charges))
            yield _precursor_frame(rows[:take], settings)
            rows = rows[take:]
    if rows:
        yield _precursor_frame(rows, settings)


def _precursor_frame(peptides: list[str], settings: DigestSettings) -> pd.DataFrame:
    charges = np.asarray(settings.charges, dtype=np.int64)
    return pd.DataFrame(
        {
            "peptide": np.repeat(np.asarray(peptides, dtype=object), len(charges)),
            "charge": np.tile(charges, len(peptides)),
        }
    )


def read_precursors(
    path: str | os.PathLike[str],
    chunk_size: int,
    digest: DigestSettings | None = None,
    collision_energy: float | None = None,
    reject: RejectSink | None = None,
) -> Iterator[pd.DataFrame]:
    """Precursor chunks (``peptide``, ``charge``, ``collision_energy``) from a table or a FASTA.

    ``collision_energy`` fills rows that have none (all rows of a digest); ``digest`` settings
    apply to FASTA input only.
    """
    suffix = suffix_of(path, (*TABLE_SUFFIXES, *FASTA_SUFFIXES))
    if suffix in FASTA_SUFFIXES:
        chunks = digest_fasta(path, digest or DigestSettings(), chunk_size, reject)
    elif digest is not None:
        raise ValueError(f"{path}: digestion settings apply to FASTA input only")
    else:
        chunks = read_table_chunks(path, chunk_size)
    energy = np.nan if collision_energy is None else float(collision_energy)
    for chunk in chunks:
        missing = {"peptide", "charge"} - set(chunk.columns)
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; has {list(chunk)}")
        if "collision_energy" not in chunk.columns:
            chunk["collision_energy"] = energy
        elif collision_energy is not None:
            chunk["collision_energy"] = chunk["collision_energy"].fillna(energy)
        yield chunk
