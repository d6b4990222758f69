"""The formats deepms reads out of the box, registered over the :mod:`deepms.io` readers.

| format | files | records |
|---|---|---|
| ``mgf_seq`` | ``.mgf`` (Casanovo style, ``SEQ=`` ProForma labels) | :class:`Spectrum` |
| ``peprec_mgf`` | an MS2PIP ``.peprec`` and its ``.mgf`` (TITLE = spec_id) | :class:`Spectrum` |
| ``mzml`` | ``.mzML`` (MS2 by default; ``ms_level``) | :class:`Spectrum` |
| ``plabel`` | pDeep2 ``.plabel`` | :class:`AnnotatedSpectrum` |
| ``prosit_parquet`` | DLOmix/Prosit intensity ``.parquet`` | :class:`AnnotatedSpectrum` |
| ``fasta`` | FASTA (``label``: header -> label parser, ``alphabet``) | :class:`SequenceRecord` |
| ``deepbind_seq`` | DeepBind ``.seq``/``.seq.gz`` tables | :class:`SequenceRecord` |
| ``scl2205`` | SCL2205 ``.csv`` + its JSON files (``part``) | :class:`SequenceRecord` |
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import deepms.io.matrix  # (cohort matrices and sample tables register themselves)
import deepms.io.rt_table  # noqa: F401  (RT tables register themselves)
from deepms.io.fasta import read_fasta, read_seq_table
from deepms.io.formats import FASTA_SUFFIXES, UnknownFormatError, register_format
from deepms.io.mgf import read_mgf
from deepms.io.mzml import read_mzml
from deepms.io.peprec import read_peprec_mgf
from deepms.io.plabel import read_plabel
from deepms.io.prosit import read_prosit_parquet
from deepms.io.scl2205 import read_scl2205
from deepms.io.spectrum import AnnotatedSpectrum, Spectrum


@register_format("mgf_seq", (".mgf",), "Spectrum", "MGF with SEQ= ProForma labels (Casanovo)")
def _mgf(paths: Sequence[Path], on_error: str, **options: Any) -> Iterator[Spectrum]:
    for path in paths:
        yield from read_mgf(path, on_error=on_error, **options)


@register_format("peprec_mgf", (".peprec", ".mgf"), "Spectrum", "MS2PIP PEPREC + MGF pair")
def _peprec_mgf(paths: Sequence[Path], on_error: str) -> Iterator[Spectrum]:
    peprecs = [p for p in paths if p.name.lower().endswith(".peprec")]
    mgfs = [p for p in paths if p.name.lower().endswith(".mgf")]
    if len(peprecs) != 1 or len(mgfs) != 1:
        names = ", ".join(p.name for p in paths)
        raise UnknownFormatError(f"peprec_mgf needs one .peprec and one .mgf file; given: {names}")
    yield from read_peprec_mgf(peprecs[0], mgfs[0], on_error=on_error)


@register_format("mzml", (".mzml", ".mzml.gz"), "Spectrum", "mzML spectra (MS2 by default)")
def _mzml(paths: Sequence[Path], on_error: str, ms_level: int | None = 2) -> Iterator[Spectrum]:
    for path in paths:
        yield from read_mzml(path, ms_level=ms_level, on_error=on_error)


@register_format("plabel", (".plabel",), "AnnotatedSpectrum", "pDeep2 annotated PSMs")
def _plabel(paths: Sequence[Path], on_error: str) -> Iterator[AnnotatedSpectrum]:
    for path in paths:
        yield from read_plabel(path, on_error=on_error)


@register_format("prosit_parquet", (".parquet",), "AnnotatedSpectrum", "DLOmix/Prosit parquet")
def _prosit(paths: Sequence[Path], on_error: str) -> Iterator[AnnotatedSpectrum]:
    for path in paths:
        yield from read_prosit_parquet(path, on_error=on_error)


@register_format("fasta", FASTA_SUFFIXES, "SequenceRecord", "FASTA; label parsed from headers")
def _fasta(
    paths: Sequence[Path], on_error: str, label: Any = None, alphabet: str | None = None
) -> Iterator[Any]:
    for path in paths:
        yield from read_fasta(path, label, alphabet, on_error)


@register_format(
    "scl2205", (".csv", ".json"), "SequenceRecord", "SCL2205 CSV + splits/entries/labels JSON"
)
def _scl2205(
    paths: Sequence[Path], on_error: str, alphabet: str | None = "protein", part: str = "trn"
) -> Iterator[Any]:
    yield from read_scl2205(paths, part, alphabet, on_error)


@register_format("deepbind_seq", (".seq", ".seq.gz"), "SequenceRecord", "DeepBind .seq table")
def _deepbind_seq(paths: Sequence[Path], on_error: str, alphabet: str = "dna") -> Iterator[Any]:
    for path in paths:
        yield from read_seq_table(path, alphabet, on_error)
