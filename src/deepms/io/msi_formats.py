"""Mass-spectrometry imaging input formats, and the reader of labelled MALDI spectrum sets.

| format | files | records |
|---|---|---|
| ``imzml`` | ``.imzML`` (+ its ``.ibd``) | :class:`~deepms.io.imzml.PixelChunk` |
| ``fiedler_spectra`` | spectra ``.npz`` + metadata ``.csv`` | one :class:`SpectraSet` per npz |

``imzml`` options: ``axis`` (``{type: file}``, ``{type: ppm, lo, hi, ppm}`` or
``{type: da, lo, hi, width}``), ``normalize`` (tic, rms or null), ``chunk_size``,
``peak_picking`` (SNR or null), ``check_checksum``. Why chunks, not pixels: a chunk is one
[n, n_bins] array, so a loader batches without a Python object per pixel.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepms.errors import DataFormatError
from deepms.io._records import RecordErrors
from deepms.io.formats import register_format
from deepms.io.imzml import PixelChunk, iter_pixel_chunks

_NPZ_KEYS = ("intensities", "mass", "label", "patient")


@dataclass
class SpectraSet:
    """Spectra on one shared m/z axis: ``intensities`` [n, len(mass)], one metadata row each."""

    mass: np.ndarray
    intensities: np.ndarray
    metadata: pd.DataFrame  # at least label and patient (splits group by patient)
    source: str = ""


def read_spectra_npz(
    path: str | Path, metadata_csv: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(mass, intensities, metadata) of an npz spectrum set (e.g. MALDIquant fiedler2009subset).

    The npz holds ``intensities`` [n, m], ``mass`` [m], ``label`` and ``patient`` (``site``
    optional); the CSV, when given, must list the same spectra in the same order. Why check
    so much: a label or patient shifted by one row would silently leak replicates across splits.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _NPZ_KEYS if k not in z.files]
            if missing:
                raise DataFormatError(path, "keys", f"missing arrays {missing} (has {z.files})")
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(path, "file", f"not a readable npz: {exc}") from exc
    mass, intensities = arrays["mass"].astype(np.float64), arrays["intensities"]
    if mass.ndim != 1 or intensities.ndim != 2 or intensities.shape[1] != len(mass):
        raise DataFormatError(
            path, "shape", f"intensities {intensities.shape} do not match mass {mass.shape}"
        )
    if np.any(np.diff(mass) <= 0):
        raise DataFormatError(path, "mass", "mass axis is not strictly increasing")
    n = intensities.shape[0]
    columns = {k: arrays[k].astype(str) for k in ("label", "patient", "site") if k in arrays}
    for key, values in columns.items():
        if len(values) != n:
            raise DataFormatError(path, key, f"{len(values)} values for {n} spectra")
    if any(v == "" for v in columns["label"]) or any(v == "" for v in columns["patient"]):
        raise DataFormatError(path, "label", "empty label or patient")
    meta = pd.DataFrame(columns)
    if metadata_csv is not None:
        csv = pd.read_csv(metadata_csv)
        if len(csv) != n:
            raise DataFormatError(metadata_csv, "rows", f"{len(csv)} rows for {n} spectra")
        for key in ("label", "patient"):
            if key not in csv.columns:
                raise DataFormatError(metadata_csv, key, f"no {key!r} column")
            bad = np.flatnonzero(csv[key].astype(str).to_numpy() != meta[key].to_numpy())
            if len(bad):
                raise DataFormatError(
                    metadata_csv, f"row {bad[0]}", f"{key} differs from the npz's {key}"
                )
        extra = [c for c in csv.columns if c not in meta.columns]
        meta = pd.concat([meta, csv[extra].reset_index(drop=True)], axis=1)
    return mass, intensities.astype(np.float32, copy=False), meta


@register_format("imzml", (".imzml",), "PixelChunk", "imzML + ibd imaging, pixel chunks")
def _imzml(
    paths: Sequence[Path],
    on_error: str,
    axis: Mapping[str, Any] | None = None,
    normalize: str | None = None,
    chunk_size: int = 4096,
    peak_picking: float | None = None,
    check_checksum: bool = True,
) -> Iterator[PixelChunk]:
    for path in paths:
        errors = RecordErrors(path, on_error)  # type: ignore[arg-type]
        try:
            yield from iter_pixel_chunks(
                path, dict(axis) if axis else None, normalize,  # type: ignore[arg-type]
                chunk_size, peak_picking, check_checksum, on_error,  # type: ignore[arg-type]
            )  # fmt: skip
        except DataFormatError as exc:
            if on_error == "raise":
                raise
            errors.handle(exc.record, exc.cause)


@register_format("fiedler_spectra", (".npz", ".csv"), "SpectraSet", "npz spectra + metadata CSV")
def _fiedler(paths: Sequence[Path], on_error: str) -> Iterator[SpectraSet]:
    csvs = [p for p in paths if p.suffix.lower() == ".csv"]
    for path in (p for p in paths if p.suffix.lower() == ".npz"):
        # the metadata CSV of x.npz is x_metadata.csv, else the only CSV given
        own = [c for c in csvs if c.stem == f"{path.stem}_metadata"]
        csv = own[0] if own else csvs[0] if len(csvs) == 1 else None
        errors = RecordErrors(path, on_error)  # type: ignore[arg-type]
        try:
            mass, intensities, meta = read_spectra_npz(path, csv)
        except DataFormatError as exc:
            if on_error == "raise":
                raise
            errors.handle(exc.record, exc.cause)
            continue
        yield SpectraSet(mass, intensities, meta, source=path.name)
