"""MGF reading/writing: one block at a time, so one bad spectrum can be skipped, not the file."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from pyteomics import mgf

from deepms.chem import parse_labelled_mgf
from deepms.io._records import RECORD_ERRORS, OnError, RecordErrors
from deepms.io.spectrum import Spectrum

#: MGF params turned into Spectrum fields (everything else lands in ``metadata``).
_KNOWN = {"title", "charge", "pepmass", "rtinseconds", "seq", "collision_energy", "nce"}


def _blocks(path: Path) -> Iterator[tuple[int, list[str], str | None]]:
    """Yield (index, lines, problem) per BEGIN/END IONS block; file-level params are prepended."""
    header: list[str] = []
    block: list[str] | None = None
    index = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            stripped = line.strip()
            if stripped == "BEGIN IONS":
                if block is not None:
                    yield index, block, "BEGIN IONS before END IONS (unterminated record)"
                    index += 1
                block = ["BEGIN IONS\n", *header]
            elif stripped == "END IONS":
                if block is None:
                    yield index, [], "END IONS without BEGIN IONS"
                else:
                    block.append("END IONS\n")
                    yield index, block, None
                    block = None
                index += 1
            elif block is not None:
                block.append(line)
            elif "=" in stripped and not stripped.startswith("#"):
                header.append(stripped + "\n")  # file-level default, e.g. CHARGE=2+
    if block is not None:
        yield index, block, "file ends inside a record (missing END IONS)"


def _title(lines: list[str]) -> str | None:
    for line in reversed(lines):  # record params come after the prepended defaults
        if line.upper().startswith("TITLE="):
            return line.split("=", 1)[1].strip()
    return None


def _precursor_charge(params: dict[str, Any], require_charge: bool) -> int | None:
    charges = params.get("charge")
    if charges is None or len(charges) == 0:
        if require_charge:
            raise ValueError("no CHARGE= line; the precursor charge is required")
        return None
    if len(charges) > 1:
        raise ValueError(f"ambiguous CHARGE={params['charge']} (several charges)")
    return int(charges[0])


def _to_spectrum(
    parsed: dict[str, Any], index: int, require_charge: bool, labels: bool = True
) -> Spectrum:
    params = parsed["params"]
    mz, intensity = parsed["m/z array"], parsed["intensity array"]
    if len(mz) == 0:
        raise ValueError("empty spectrum: no peaks")
    peptide = None
    if labels and params.get("seq"):
        peptide = parse_labelled_mgf(params["seq"])
    pepmass = params.get("pepmass")
    ce = params.get("collision_energy", params.get("nce"))
    return Spectrum(
        identifier=str(params.get("title", index)),
        mz=mz,
        intensity=intensity,
        precursor_mz=float(pepmass[0]) if pepmass and pepmass[0] is not None else None,
        precursor_charge=_precursor_charge(params, require_charge),
        retention_time=float(params["rtinseconds"]) if "rtinseconds" in params else None,
        peptide=peptide,
        collision_energy=float(ce) if ce is not None else None,
        metadata={k: v for k, v in params.items() if k not in _KNOWN},
    )


def read_mgf(
    path: str | PathLike[str],
    require_charge: bool = True,
    on_error: OnError = "raise",
    labels: bool = True,
) -> Iterator[Spectrum]:
    """Stream spectra from an MGF file (pyteomics parses each block).

    ``SEQ=`` becomes :attr:`Spectrum.peptide`: ProForma (Casanovo files), the flanked
    ``_.PEPTIDE._`` of the de novo benchmark suite, or mass deltas ``C+57.021``
    (:func:`~deepms.chem.parse_labelled_mgf`). ``labels=False`` leaves ``SEQ=`` unread:
    prediction needs no label, so a label it cannot parse must not cost a spectrum. Bad records
    raise :class:`~deepms.errors.DataFormatError` naming TITLE (or the 0-based block index), or
    go to ``on_error``.
    """
    path = Path(path)
    errors = RecordErrors(path, on_error)
    total = 0
    for index, lines, problem in _blocks(path):
        total += 1
        record: object = _title(lines) or index
        if problem is not None:
            errors.handle(record, problem)
            continue
        try:
            reader = mgf.MGF(io.StringIO("".join(lines)), convert_arrays=1, read_charges=False)
            with reader:
                parsed = next(iter(reader))
            spectrum = _to_spectrum(parsed, index, require_charge, labels)
        except RECORD_ERRORS as exc:
            errors.handle(record, exc)
            continue
        yield spectrum
    errors.finish(total)


def _format_float(value: float) -> str:
    return repr(float(value))  # shortest exact text: write -> read round-trips bit for bit


def write_mgf(spectra: Iterable[Spectrum], path: str | PathLike[str]) -> int:
    """Write spectra as MGF (TITLE, PEPMASS, CHARGE, RTINSECONDS, SEQ as ProForma); return count."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for spectrum in spectra:
            lines = ["BEGIN IONS", f"TITLE={spectrum.identifier}"]
            if spectrum.precursor_mz is not None:
                lines.append(f"PEPMASS={_format_float(spectrum.precursor_mz)}")
            if spectrum.precursor_charge is not None:
                sign = "+" if spectrum.precursor_charge > 0 else "-"
                lines.append(f"CHARGE={abs(spectrum.precursor_charge)}{sign}")
            if spectrum.retention_time is not None:
                lines.append(f"RTINSECONDS={_format_float(spectrum.retention_time)}")
            if spectrum.collision_energy is not None:
                lines.append(f"COLLISION_ENERGY={_format_float(spectrum.collision_energy)}")
            if spectrum.peptide is not None:
                lines.append(f"SEQ={spectrum.peptide.to_proforma()}")
            for key, value in spectrum.metadata.items():
                if isinstance(value, str | int | float) and key.lower() not in _KNOWN:
                    lines.append(f"{key.upper()}={value}")
            lines.extend(
                f"{_format_float(m)} {_format_float(i)}"
                for m, i in zip(spectrum.mz, spectrum.intensity, strict=True)
            )
            lines.append("END IONS\n")
            out.write("\n".join(lines) + "\n")
            count += 1
    return count
