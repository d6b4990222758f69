"""Peptide chemistry: modifications (Unimod, offline), notations, fragment m/z, peak annotation."""

from __future__ import annotations

from deepms.chem.annotate import annotate, match_peaks
from deepms.chem.fragments import ION_TYPES, NEUTRAL_LOSSES, Fragment, fragment_ions, fragment_mz
from deepms.chem.notations import (
    format_peprec,
    format_unimod_bracket,
    parse_deeplc,
    parse_deeprt,
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
    "Fragment",
    "Modification",
    "ModificationTable",
    "Peptide",
    "annotate",
    "format_peprec",
    "format_unimod_bracket",
    "fragment_ions",
    "fragment_mz",
    "get_modification_table",
    "match_peaks",
    "parse_deeplc",
    "parse_deeprt",
    "parse_pdeep2",
    "parse_peprec",
    "parse_peptide",
    "parse_proforma",
    "parse_unimod_bracket",
]
