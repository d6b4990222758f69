"""Extracted ion chromatograms (XICs) from OpenSWATH's ``.sqMass`` and chromatogram mzML files.

Why: a chromatogram model scores a peak group from its raw traces, not from OpenSWATH's
sub-scores; the traces are in the XIC files OpenSwathWorkflow writes (``-out_chrom``). Native
ids of fragment XICs are the library's TRANSITION ids (PQP/OSW ``TRANSITION.ID``); precursor
XICs are named ``<precursor>_Precursor_i<isotope>``. :func:`xics_by_precursor` groups both
under the OSW ``PRECURSOR.ID`` that :func:`deepms.io.openswath.read_peak_groups` reports.

sqMass arrays are zlib and/or MS-Numpress compressed (the DATA table's COMPRESSION code);
MS-Numpress is decoded with ``pynumpress`` (the MS-Numpress authors' Python binding).
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from itertools import groupby
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from deepms.errors import DataFormatError

XIC_SUFFIXES = (".sqmass", ".chrom.mzml", ".mzml")
_PRECURSOR_ID = re.compile(r"^(?P<ref>.*)_Precursor_i(?P<isotope>\d+)$")
# sqMass DATA.DATA_TYPE (OpenMS MzMLSqliteHandler): 0 = m/z, 1 = intensity, 2 = RT
_INTENSITY, _RT = 1, 2
Pathish = str | PathLike[str]


@dataclass(frozen=True, eq=False)
class Chromatogram:
    """One XIC: a trace of ``intensity`` over ``rt`` (seconds) for one precursor or fragment."""

    native_id: str
    precursor_mz: float
    product_mz: float  # NaN for precursor (MS1) traces and when unknown
    rt: np.ndarray = field(repr=False)
    intensity: np.ndarray = field(repr=False)
    kind: str  # "precursor", "fragment" or "unknown"
    peptide: str = ""
    charge: int = 0
    run: str = ""

    @property
    def precursor_ref(self) -> str:
        """For a precursor XIC, the precursor id in its native id (``2273_Precursor_i0`` ->
        ``2273``); "" for fragment XICs (map those with :func:`transition_precursors`)."""
        match = _PRECURSOR_ID.match(self.native_id)
        return match["ref"] if match else ""


def _numpress(name: str) -> Callable[[bytes], np.ndarray]:
    def decode(data: bytes) -> np.ndarray:
        try:
            import pynumpress
        except ImportError as exc:  # pragma: no cover - pynumpress is a dependency
            raise ValueError("MS-Numpress data needs the pynumpress package") from exc
        return np.asarray(getattr(pynumpress, name)(np.frombuffer(data, dtype=np.uint8)))

    return decode


def _raw(data: bytes) -> np.ndarray:
    if len(data) % 8:
        raise ValueError(f"uncompressed array of {len(data)} bytes is not float64 values")
    return np.frombuffer(data, dtype="<f8").copy()


def _zlib_then(decode: Callable[[bytes], np.ndarray]) -> Callable[[bytes], np.ndarray]:
    return lambda data: decode(zlib.decompress(data))


#: sqMass DATA.COMPRESSION codes (OpenMS MzMLSqliteHandler) -> decoder of the blob
SQMASS_DECODERS: dict[int, Callable[[bytes], np.ndarray]] = {
    0: _raw,
    1: _zlib_then(_raw),
    2: _numpress("decode_linear"),
    3: _numpress("decode_slof"),
    4: _numpress("decode_pic"),
    5: _zlib_then(_numpress("decode_linear")),
    6: _zlib_then(_numpress("decode_slof")),
    7: _zlib_then(_numpress("decode_pic")),
}


def _kind(native_id: str, product_mz: float) -> str:
    if _PRECURSOR_ID.match(native_id):
        return "precursor"
    return "fragment" if np.isfinite(product_mz) else "unknown"


def _mz(value: Any) -> float:
    """An isolation target as m/z; 0 or missing means none was recorded (NaN)."""
    try:
        mz = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return mz if mz > 0 else float("nan")


def _make(path: Path, native_id: str, rt: Any, intensity: Any, **fields: Any) -> Chromatogram:
    rt = np.asarray(rt, dtype=float)
    intensity = np.asarray(intensity, dtype=float)
    if rt.shape != intensity.shape or rt.ndim != 1:
        raise DataFormatError(
            path,
            f"chromatogram {native_id}",
            f"{rt.size} retention times but {intensity.size} intensities",
        )
    kind = _kind(native_id, fields["product_mz"])
    return Chromatogram(native_id=native_id, rt=rt, intensity=intensity, kind=kind, **fields)


def read_xics(path: Pathish) -> Iterator[Chromatogram]:
    """Every chromatogram of an ``.sqMass`` or chromatogram ``.mzML`` file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such chromatogram file")
    with open(path, "rb") as handle:
        sqlite = handle.read(16) == b"SQLite format 3\x00"
    if sqlite:
        yield from _read_sqmass(path)
    elif path.name.lower().endswith((".mzml", ".mzml.gz")):
        yield from _read_mzml(path)
    else:
        raise DataFormatError(path, "file", "not an .sqMass (SQLite) nor a chromatogram .mzML")


_SQMASS_META = """
SELECT c.ID, c.NATIVE_ID, r.FILENAME, pr.ISOLATION_TARGET, pr.CHARGE, pr.PEPTIDE_SEQUENCE,
       pd.ISOLATION_TARGET
FROM CHROMATOGRAM c
LEFT JOIN RUN r ON r.ID = c.RUN_ID
LEFT JOIN PRECURSOR pr ON pr.CHROMATOGRAM_ID = c.ID
LEFT JOIN PRODUCT pd ON pd.CHROMATOGRAM_ID = c.ID
ORDER BY c.ID
"""


def _read_sqmass(path: Path) -> Iterator[Chromatogram]:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        tables = {r[0].upper() for r in conn.execute("SELECT name FROM sqlite_master")}
        for table in ("CHROMATOGRAM", "DATA"):
            if table not in tables:
                raise DataFormatError(path, f"table {table}", "missing: not an sqMass XIC file")
        meta: dict[int, tuple] = {}
        for row in conn.execute(_SQMASS_META):
            meta.setdefault(row[0], row[1:])
        if not meta:
            raise DataFormatError(path, "table CHROMATOGRAM", "no chromatograms in the file")
        rows = conn.execute(
            "SELECT CHROMATOGRAM_ID, COMPRESSION, DATA_TYPE, DATA FROM DATA "
            "WHERE CHROMATOGRAM_ID IS NOT NULL ORDER BY CHROMATOGRAM_ID"
        )
        seen = set()
        for chrom_id, group in groupby(rows, key=lambda row: row[0]):
            if chrom_id not in meta:
                continue  # data of a chromatogram the file does not list
            seen.add(chrom_id)
            yield _sqmass_chromatogram(path, meta[chrom_id], group)
    missing = [meta[i][0] for i in meta if i not in seen]
    if missing:
        raise DataFormatError(
            path, f"chromatogram {missing[0]}", f"no data arrays ({len(missing)} such)"
        )


def _sqmass_chromatogram(path: Path, meta: tuple, rows: Iterable[tuple]) -> Chromatogram:
    native_id, run, prec_mz, charge, peptide, prod_mz = meta
    data: dict[int, np.ndarray] = {}
    for _, compression, data_type, blob in rows:
        decode = SQMASS_DECODERS.get(compression)
        if decode is None:
            raise DataFormatError(
                path,
                f"chromatogram {native_id}",
                f"unknown COMPRESSION code {compression!r} (known: {sorted(SQMASS_DECODERS)})",
            )
        try:
            data[data_type] = decode(bytes(blob))
        except (ValueError, TypeError, zlib.error, RuntimeError) as exc:
            raise DataFormatError(
                path, f"chromatogram {native_id}", f"cannot decode data: {exc}"
            ) from exc
    if _RT not in data or _INTENSITY not in data:
        raise DataFormatError(
            path, f"chromatogram {native_id}", "no retention-time or intensity array in DATA"
        )
    return _make(
        path,
        str(native_id),
        data[_RT],
        data[_INTENSITY],
        precursor_mz=_mz(prec_mz),
        product_mz=_mz(prod_mz),
        peptide=peptide or "",
        charge=int(charge or 0),
        run=Path(run).name if run else path.name,
    )


def _first(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return value[0] if value else {}
    return value if isinstance(value, dict) else {}


def _read_mzml(path: Path) -> Iterator[Chromatogram]:
    """Chromatogram mzML via pyteomics (times are OpenSWATH's seconds)."""
    from pyteomics import mzml

    count = 0
    with mzml.read(str(path), read_schema=False) as reader:
        iterator = reader.iterfind("chromatogram")
        while True:
            try:
                raw = next(iterator)
            except StopIteration:
                break
            except Exception as exc:  # pyteomics raises its own types for bad arrays
                raise DataFormatError(path, f"chromatogram #{count}", exc) from exc
            count += 1
            native_id = str(raw.get("id", f"#{count - 1}"))
            if "time array" not in raw or "intensity array" not in raw:
                raise DataFormatError(
                    path, f"chromatogram {native_id}", "no time or intensity array"
                )
            precursor = _first(raw.get("precursor"))
            ion = _first(precursor.get("selectedIonList", {}).get("selectedIon"))
            window = precursor.get("isolationWindow", {})
            product = _first(raw.get("product")).get("isolationWindow", {})
            yield _make(
                path,
                native_id,
                raw["time array"],
                raw["intensity array"],
                precursor_mz=_mz(
                    ion.get("selected ion m/z", window.get("isolation window target m/z"))
                ),
                product_mz=_mz(product.get("isolation window target m/z")),
                peptide=str(precursor.get("activation", {}).get("peptide_sequence", "")),
                charge=int(ion.get("charge state", 0) or 0),
                run=path.name,
            )
    if count == 0:
        raise DataFormatError(path, "chromatogramList", "no chromatograms in the file")


def xics_by_transition(path: Pathish) -> dict[str, Chromatogram]:
    """The file's chromatograms by native id (a TRANSITION id for fragment XICs)."""
    out: dict[str, Chromatogram] = {}
    for chrom in read_xics(path):
        if chrom.native_id in out:
            raise DataFormatError(path, f"chromatogram {chrom.native_id}", "native id repeated")
        out[chrom.native_id] = chrom
    return out


def transition_precursors(library: Pathish) -> dict[str, str]:
    """TRANSITION.ID -> PRECURSOR.ID (as str) of an OpenSWATH ``.pqp`` library or ``.osw``."""
    library = Path(library)
    uri = f"{library.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        try:
            rows = conn.execute(
                "SELECT CAST(TRANSITION_ID AS TEXT), CAST(PRECURSOR_ID AS TEXT) "
                "FROM TRANSITION_PRECURSOR_MAPPING"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise DataFormatError(
                library, "table TRANSITION_PRECURSOR_MAPPING", f"not a .pqp/.osw library: {exc}"
            ) from exc
    return dict(rows)


def xics_by_precursor(path: Pathish, library: Pathish) -> dict[str, list[Chromatogram]]:
    """XICs grouped by the library's PRECURSOR.ID: fragments through the library's
    TRANSITION_PRECURSOR_MAPPING, precursor traces by the id in their native id (PRECURSOR.ID
    or TRAML_ID). XICs the library does not know are left out."""
    transitions = transition_precursors(library)
    uri = f"{Path(library).resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = conn.execute("SELECT ID, TRAML_ID FROM PRECURSOR").fetchall()
    labels = {str(traml): str(pid) for pid, traml in rows if traml not in (None, "")}
    labels.update({str(pid): str(pid) for pid, _ in rows})  # a PRECURSOR.ID wins a clash
    out: dict[str, list[Chromatogram]] = defaultdict(list)
    for chrom in read_xics(path):
        precursor = transitions.get(chrom.native_id) or labels.get(chrom.precursor_ref)
        if precursor is not None:
            out[precursor].append(chrom)
    return dict(out)
