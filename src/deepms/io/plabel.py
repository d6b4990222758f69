"""pDeep2 ``.plabel`` files: annotated b/y intensities per PSM (no raw peaks, no m/z)."""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path

import numpy as np

from deepms.chem import Peptide, parse_pdeep2
from deepms.io._records import RECORD_ERRORS, OnError, RecordErrors
from deepms.io.spectrum import ANNOTATED_CHARGES, AnnotatedSpectrum

#: Intact-ion columns fill ``intensities``; neutral-loss columns fill ``metadata["losses"]``.
ION_COLUMNS = ("b", "y")
LOSSES = ("NH3", "H2O", "ModLoss")


def _charge_from_spec(spec: str) -> int:
    """``<raw>.<scan>.<scan>.<charge>.<n>.dta`` -> charge, counted from the right (raw has dots)."""
    parts = spec.rsplit(".", 5)
    if len(parts) != 6 or parts[5] != "dta":
        raise ValueError(f"spec {spec!r} is not '<raw>.<scan>.<scan>.<charge>.<n>.dta'")
    try:
        return int(parts[3])
    except ValueError:
        raise ValueError(f"spec {spec!r}: charge field {parts[3]!r} is not an integer") from None


def _fill(out: np.ndarray, ion: str, suffix: str, text: str) -> None:
    """Parse ``b2+1,246224.5;b11+2,131.5;`` (``b2-NH3+1,..`` with a suffix) into ``out``.

    ``out[bond, ion, z-1]``; duplicates keep the maximum; fragment charges > 3 are dropped.
    """
    n = out.shape[0] + 1
    ion_axis = ION_COLUMNS.index(ion)
    for entry in text.split(";"):
        if not entry:
            continue
        try:
            name, value = entry.split(",")
            number, charge = name.split("+")
            if not number.startswith(ion) or not number.endswith(suffix):
                raise ValueError
            k, z, intensity = int(number[1 : len(number) - len(suffix)]), int(charge), float(value)
        except ValueError:
            raise ValueError(f"column {ion}{suffix}: bad ion entry {entry!r}") from None
        if not 1 <= k < n or z < 1:
            raise ValueError(f"column {ion}{suffix}: ion {name!r} impossible for a {n}-mer")
        if z <= len(ANNOTATED_CHARGES):
            bond = k - 1 if ion == "b" else n - k - 1
            out[bond, ion_axis, z - 1] = max(out[bond, ion_axis, z - 1], intensity)


def _record(fields: dict[str, str], cache: dict[tuple[str, str], Peptide]) -> AnnotatedSpectrum:
    key = (fields.get("peptide", ""), fields.get("modinfo", ""))
    peptide = cache.get(key)
    if peptide is None:
        peptide = cache[key] = parse_pdeep2(*key)
    shape = (len(peptide.sequence) - 1, len(ION_COLUMNS), len(ANNOTATED_CHARGES))
    intensities = np.zeros(shape, dtype=np.float32)
    for ion in ION_COLUMNS:
        _fill(intensities, ion, "", fields.get(ion, ""))
    losses = {}
    for loss in LOSSES:
        texts = [fields.get(f"{ion}-{loss}", "") for ion in ION_COLUMNS]
        if any(texts):
            losses[loss] = np.zeros(shape, dtype=np.float32)
            for ion, text in zip(ION_COLUMNS, texts, strict=True):
                _fill(losses[loss], ion, f"-{loss}", text)
    if not intensities.any() and not any(a.any() for a in losses.values()):
        raise ValueError("empty spectrum: no fragment intensities")
    return AnnotatedSpectrum(
        identifier=fields["spec"],
        peptide=peptide,
        precursor_charge=_charge_from_spec(fields["spec"]),
        intensities=intensities,
        fragmentation="HCD",  # pDeep2 training data are HCD spectra; the CE is not stored
        metadata={"losses": losses},
    )


def read_plabel(
    path: str | PathLike[str], on_error: OnError = "raise"
) -> Iterator[AnnotatedSpectrum]:
    """Stream PSMs from a pDeep2 ``.plabel`` (tab separated, header ``spec peptide modinfo b ...``).

    Errors name the ``spec`` field (or ``line N``) and the cause.
    """
    path = Path(path)
    errors = RecordErrors(path, on_error)
    cache: dict[tuple[str, str], Peptide] = {}
    total = 0
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
        missing = [c for c in ("spec", "peptide", "modinfo", *ION_COLUMNS) if c not in header]
        if missing:
            errors.on_error = "raise"  # a broken header makes every record unreadable
            errors.handle("header", f"missing plabel column(s) {missing}")
        for line_number, line in enumerate(handle, start=2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            total += 1
            fields = dict(zip(header, line.split("\t"), strict=False))
            try:
                record = _record(fields, cache)
            except RECORD_ERRORS as exc:
                errors.handle(fields.get("spec") or f"line {line_number}", exc)
                continue
            yield record
    errors.finish(total)
