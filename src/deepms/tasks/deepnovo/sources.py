"""Labelled spectra from every source format as one record type, for the deepnovo data module.

Sources are read through the format registry (:mod:`deepms.io.formats`), catalogued or by path;
this module turns each record into a :class:`LabelledSpectrum` by what the record holds, not by
the format's name. Peak lists (:class:`Spectrum`: Casanovo's ``SEQ=`` MGF, synthetic MGFs,
MS2PIP's MassIVE-KB MGF labelled by its PEPREC) keep their peaks. Annotated ions
(:class:`AnnotatedSpectrum`: pDeep2 ``.plabel``, DLOmix/Prosit parquet) get a peak list rebuilt
at theoretical m/z (:func:`rebuild_peaks`) and the precursor m/z of their peptide and charge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepms.chem import Peptide
from deepms.io.spectrum import AnnotatedSpectrum, Spectrum
from deepms.tasks.deepnovo.preprocess import rebuild_peaks

#: where a source's spectra may go: cut by the split, or all to one part
ROLES = ("split", "train", "val", "test")


@dataclass
class LabelledSpectrum:
    """A peak list with its precursor and the peptide that produced it."""

    identifier: str
    peptide: Peptide | None  # None: no label, or no precursor (the data module counts these)
    charge: int
    precursor_mz: float
    mz: np.ndarray
    intensity: np.ndarray


def from_spectrum(s: Spectrum) -> LabelledSpectrum:
    """A peak list as it is; unlabelled without a precursor charge and m/z."""
    complete = s.precursor_charge is not None and s.precursor_mz is not None
    return LabelledSpectrum(
        s.identifier,
        s.peptide if complete else None,
        int(s.precursor_charge or 0),
        float(s.precursor_mz or 0.0),
        s.mz,
        s.intensity,
    )


def from_annotated(r: AnnotatedSpectrum) -> LabelledSpectrum:
    """Peaks rebuilt from the annotated ions; the precursor m/z of the peptide and charge."""
    mz, intensity = rebuild_peaks(r)
    charge = int(r.precursor_charge)
    precursor = r.peptide.precursor_mz(charge)
    return LabelledSpectrum(r.identifier, r.peptide, charge, precursor, mz, intensity)


def labelled(record: Spectrum | AnnotatedSpectrum) -> LabelledSpectrum:
    """Any spectrum record as a :class:`LabelledSpectrum` (by record type)."""
    if isinstance(record, AnnotatedSpectrum):
        return from_annotated(record)
    if isinstance(record, Spectrum):
        return from_spectrum(record)
    raise TypeError(f"deepnovo reads spectra, not {type(record).__name__} records")
