"""Peptide chemistry: modifications (Unimod, offline), notations, fragment m/z, peak annotation,
and the numeric encoding of peptides that training and prediction share."""

from __future__ import annotations

from deepms.chem.annotate import annotate, match_peaks
from deepms.chem.encoding import EncodedBatch, PeptideEncoder, pad_encoded
from deepms.chem.fragments import (
    ION_TYPES,
    NEUTRAL_LOSSES,
    Fragment,
    fragment_ions,
    fragment_mz,
    fragment_mz_batch,
)
from deepms.chem.notations import (
    format_peprec,
    format_unimod_bracket,
    parse_deeplc,
    parse_deeprt,
    parse_labelled_mgf,
    parse_pdeep2,
    parse_peprec,
    parse_peptide,
    parse_proforma,
    parse_unimod_bracket,
)
from deepms.chem.peptide import H2O, PROTON, RESIDUE_MASSES, Peptide
from deepms.chem.unimod import Modification, ModificationTable, get_modification_table

__all__ = [
    "H2O",
    "ION_TYPES",
    "NEUTRAL_LOSSES",
    "PROTON",
    "RESIDUE_MASSES",
    "EncodedBatch",
    "Fragment",
    "Modification",
    "ModificationTable",
    "Peptide",
    "PeptideEncoder",
    "annotate",
    "format_peprec",
    "format_unimod_bracket",
    "fragment_ions",
    "fragment_mz",
    "fragment_mz_batch",
    "get_modification_table",
    "match_peaks",
    "pad_encoded",
    "parse_deeplc",
    "parse_deeprt",
    "parse_labelled_mgf",
    "parse_pdeep2",
    "parse_peprec",
    "parse_peptide",
    "parse_proforma",
    "parse_unimod_bracket",
]
