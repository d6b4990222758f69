"""NIST MSP spectral libraries with per-peak annotations (read and write, round-trip safe).

Conventions: ``Name: SEQUENCE/charge``; ``Comment:`` holds ``key=value`` tokens (``Parent`` =
precursor m/z, ``Mods=n(pos,AA,Name)...`` with 0-based residue positions, -1 for the N-terminus
and ``len(sequence)`` for the C-terminus; ``RTINSECONDS``, ``NCE``, ``Fragmentation``,
``Analyzer``, ``Id`` as written by :func:`write_msp`); peaks ``mz<TAB>intensity<TAB>"annotation"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from deepms.chem import parse_peprec
from deepms.io._records import RECORD_ERRORS, OnError, RecordErrors
from deepms.io.spectrum import Spectrum

_TOKEN = re.compile(r'([^\s=]+)=("[^"]*"|\S*)')
_MOD = re.compile(r"\((-?\d+),([A-Za-z\[\]^]),([^()]+)\)")
_FIELDS = {"Parent": "precursor_mz", "RTINSECONDS": "retention_time", "NCE": "collision_energy"}
_TEXT = {"Fragmentation": "fragmentation", "Analyzer": "analyzer"}


def _mods_to_peprec(mods: str, length: int) -> str:
    """``2(0,M,Oxidation)(-1,A,Acetyl)`` -> PEPREC ``1|Oxidation|0|Acetyl``."""
    count, _, rest = mods.partition("(")
    found = _MOD.findall("(" + rest) if rest else []
    if not count.isdigit() or int(count) != len(found):
        raise ValueError(f"Mods={mods!r}: count does not match the listed modifications")
    parts = []
    for pos, _aa, name in found:
        p = int(pos)
        if not -1 <= p <= length:
            raise ValueError(f"Mods={mods!r}: position {p} outside the {length}-residue peptide")
        parts += [str(0 if p == -1 else -1 if p == length else p + 1), name]
    return "|".join(parts) if parts else "-"


def _parse_record(lines: list[str]) -> Spectrum:
    head: dict[str, str] = {}
    peaks: list[str] = []
    for line in lines:
        if head.get("Num peaks") is not None:
            peaks.append(line)
        else:
            key, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"expected 'Key: value' before the peaks, got {line!r}")
            key = "Num peaks" if key.strip().lower() == "num peaks" else key.strip()
            head[key] = value.strip()
    sequence, slash, charge = head.get("Name", "").rpartition("/")
    if not slash or not charge.isdigit():
        raise ValueError(f"Name {head.get('Name')!r} is not 'SEQUENCE/charge'")
    comment = {k: v.strip('"') for k, v in _TOKEN.findall(head.get("Comment", ""))}
    peptide = parse_peprec(sequence, _mods_to_peprec(comment.pop("Mods", "0"), len(sequence)))
    n_peaks = int(head["Num peaks"]) if "Num peaks" in head else 0
    if n_peaks == 0:
        raise ValueError("empty spectrum: no peaks")
    if len(peaks) != n_peaks:
        raise ValueError(f"Num peaks: {n_peaks} but {len(peaks)} peak lines")
    mz, intensity, annotations = [], [], []
    for peak in peaks:
        fields = peak.split(None, 2)
        if len(fields) < 2:
            raise ValueError(f"bad peak line {peak!r}")
        mz.append(float(fields[0]))
        intensity.append(float(fields[1]))
        annotations.append(fields[2].strip().strip('"') if len(fields) > 2 else "")
    values: dict[str, Any] = {f: float(comment.pop(k)) for k, f in _FIELDS.items() if k in comment}
    values.update({f: comment.pop(k) for k, f in _TEXT.items() if k in comment})
    extra = {k: v for k, v in head.items() if k not in ("Name", "Comment", "Num peaks", "MW")}
    return Spectrum(
        identifier=comment.pop("Id", head["Name"]),
        mz=mz,
        intensity=intensity,
        precursor_charge=int(charge),
        peptide=peptide,
        metadata={"annotations": annotations, "comment": comment, **extra},
        **values,
    )


def _records(path: Path) -> Iterator[list[str]]:
    """Split on ``Name:`` lines and on blank lines after the peak list has started."""
    block: list[str] = []
    in_peaks = False
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if (line.startswith("Name:") or (not line and in_peaks)) and block:
                yield block
                block, in_peaks = [], False
            if line and not line.startswith("#"):
                block.append(line)
                in_peaks = in_peaks or line.lower().startswith("num peaks")
    if block:
        yield block


def read_msp(path: str | PathLike[str], on_error: OnError = "raise") -> Iterator[Spectrum]:
    """Stream MSP records; ``metadata["annotations"]`` holds one annotation string per peak."""
    path = Path(path)
    errors = RecordErrors(path, on_error)
    total = 0
    for index, lines in enumerate(_records(path)):
        total += 1
        try:
            spectrum = _parse_record(lines)
        except RECORD_ERRORS as exc:
            name = next((li[5:].strip() for li in lines if li.startswith("Name:")), index)
            errors.handle(name, exc)
            continue
        yield spectrum
    errors.finish(total)


def _quote(value: object) -> str:
    text = str(value)
    return f'"{text}"' if any(c in text for c in ' "\t') else text


def _mods_text(spectrum: Spectrum) -> str:
    peptide = spectrum.peptide
    assert peptide is not None
    n = len(peptide.sequence)
    found = []
    for i, mod in enumerate(peptide.mods):
        if mod is not None:
            pos = -1 if i == 0 else n if i == n + 1 else i - 1
            aa = peptide.sequence[min(max(i - 1, 0), n - 1)]
            found.append(f"({pos},{aa},{mod.name})")
    return f"{len(found)}{''.join(found)}"


def write_msp(records: Iterable[Spectrum], path: str | PathLike[str]) -> int:
    """Write spectra with peptide and charge as MSP; ``metadata["annotations"]`` per peak."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for s in records:
            if s.peptide is None or s.precursor_charge is None:
                raise ValueError(f"spectrum {s.identifier}: MSP needs a peptide and a charge")
            tokens = [f"Id={_quote(s.identifier)}", f"Mods={_mods_text(s)}"]
            for key, name in _FIELDS.items():
                if (value := getattr(s, name)) is not None:
                    tokens.append(f"{key}={float(value)!r}")
            for key, name in _TEXT.items():
                if (value := getattr(s, name)) is not None:
                    tokens.append(f"{key}={_quote(value)}")
            tokens += [f"{k}={_quote(v)}" for k, v in s.metadata.get("comment", {}).items()]
            annotations = s.metadata.get("annotations") or [""] * s.n_peaks
            lines = [
                f"Name: {s.peptide.sequence}/{s.precursor_charge}",
                f"MW: {float(s.peptide.monoisotopic_mass)!r}",
                *(f"{k}: {v}" for k, v in s.metadata.items() if isinstance(v, str)),
                f"Comment: {' '.join(tokens)}",
                f"Num peaks: {s.n_peaks}",
                *(
                    f'{float(m)!r}\t{float(i)!r}\t"{a}"'
                    for m, i, a in zip(s.mz, s.intensity, annotations, strict=True)
                ),
            ]
            out.write("\n".join(lines) + "\n\n")
            count += 1
    return count
