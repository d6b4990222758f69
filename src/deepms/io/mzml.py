"""mzML reading via pyteomics, reduced to the fields models need (precursor, RT, activation)."""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from pyteomics import mzml

from deepms.io._records import RECORD_ERRORS, OnError, RecordErrors
from deepms.io.spectrum import Spectrum

#: PSI-MS activation terms -> the short names used elsewhere (Spectrum.fragmentation).
_ACTIVATION = {
    "beam-type collision-induced dissociation": "HCD",
    "higher energy beam-type collision-induced dissociation": "HCD",
    "collision-induced dissociation": "CID",
    "trap-type collision-induced dissociation": "CID",
    "electron transfer dissociation": "ETD",
    "electron capture dissociation": "ECD",
}


def _retention_time_seconds(scan: dict[str, Any]) -> float | None:
    value = scan.get("scan start time")
    if value is None:
        return None
    unit = getattr(value, "unit_info", None) or "minute"  # mzML default unit is minutes
    return float(value) * 60.0 if unit.startswith("min") else float(value)


def _precursor(spectrum: dict[str, Any]) -> tuple[float | None, int | None, dict[str, Any]]:
    precursors = spectrum.get("precursorList", {}).get("precursor", [])
    if not precursors:
        return None, None, {}
    precursor = precursors[0]
    ions = precursor.get("selectedIonList", {}).get("selectedIon", [{}])
    ion = ions[0] if ions else {}
    mz = ion.get("selected ion m/z")
    charge = ion.get("charge state")
    return (
        float(mz) if mz is not None else None,
        int(charge) if charge is not None else None,
        precursor.get("activation", {}),
    )


def _to_spectrum(raw: dict[str, Any]) -> Spectrum:
    if len(raw.get("m/z array", ())) == 0:
        raise ValueError("empty spectrum: no peaks")
    scan = (raw.get("scanList", {}).get("scan") or [{}])[0]
    precursor_mz, charge, activation = _precursor(raw)
    fragmentation = next((v for k, v in _ACTIVATION.items() if k in activation), None)
    energy = activation.get("collision energy")
    filter_string = str(scan.get("filter string", ""))
    analyzer = filter_string.split()[0] if filter_string[:4] in ("FTMS", "ITMS") else None
    return Spectrum(
        identifier=str(raw["id"]),
        mz=raw["m/z array"],
        intensity=raw["intensity array"],
        precursor_mz=precursor_mz,
        precursor_charge=charge,
        retention_time=_retention_time_seconds(scan),
        collision_energy=float(energy) if energy is not None else None,
        fragmentation=fragmentation,
        analyzer=analyzer,
        metadata={"ms_level": int(raw.get("ms level", 0)), "index": int(raw.get("index", -1))},
    )


def read_mzml(
    path: str | PathLike[str], ms_level: int | None = 2, on_error: OnError = "raise"
) -> Iterator[Spectrum]:
    """Stream spectra of one MS level (``None`` = all) from an mzML file.

    RT is converted to seconds; the first precursor's selected ion gives m/z and charge; the
    collision energy is the raw value stored in the file (usually NCE for Thermo data).
    """
    path = Path(path)
    errors = RecordErrors(path, on_error)
    total = 0
    with mzml.MzML(str(path), use_index=False, decode_binary=True) as reader:
        for raw in reader:
            if ms_level is not None and raw.get("ms level") != ms_level:
                continue
            total += 1
            try:
                spectrum = _to_spectrum(raw)
            except RECORD_ERRORS as exc:
                errors.handle(raw.get("id", raw.get("index")), exc)
                continue
            yield spectrum
    errors.finish(total)
