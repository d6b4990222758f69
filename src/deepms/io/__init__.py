"""Readers/writers turning MS file formats into :class:`Spectrum` / :class:`AnnotatedSpectrum`.

Every reader streams records and reports a malformed one as
:class:`deepms.errors.DataFormatError` (file, record, cause); ``on_error="skip"`` logs it instead.
"""

from __future__ import annotations

from deepms.io.fasta import SequenceRecord, clip_label, read_fasta, read_seq_table, write_fasta
from deepms.io.mgf import read_mgf, write_mgf
from deepms.io.msp import read_msp, write_msp
from deepms.io.mzml import read_mzml
from deepms.io.peprec import read_peprec, read_peprec_mgf
from deepms.io.plabel import read_plabel
from deepms.io.prosit import prosit_to_bonds, read_prosit_parquet
from deepms.io.spectrum import AnnotatedSpectrum, Spectrum

__all__ = [
    "AnnotatedSpectrum",
    "SequenceRecord",
    "Spectrum",
    "clip_label",
    "prosit_to_bonds",
    "read_fasta",
    "read_mgf",
    "read_msp",
    "read_mzml",
    "read_peprec",
    "read_peprec_mgf",
    "read_plabel",
    "read_prosit_parquet",
    "read_seq_table",
    "write_fasta",
    "write_mgf",
    "write_msp",
]
