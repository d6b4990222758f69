"""LC-MS1 maps: MS1 spectra of one run held as concatenated arrays, windowed without a dense grid.

Why this shape: a feature detector scans small m/z x RT windows of a run that can hold millions of
peaks. A dense grid of a whole run (RT x m/z bins) would be gigabytes for a high-resolution run,
while the peaks themselves are sparse. :class:`Ms1Map` keeps the peaks as CSR-like arrays (all
m/z and intensities concatenated, one offset per spectrum), so a window is a binary search per
spectrum and a dense grid is only ever built for a window (:meth:`Ms1Map.grid`).

Bad input policy (each error names the file and the spectrum, via :class:`DataFormatError`):

- a file without MS1 spectra raises (there is nothing to detect on);
- a spectrum without a scan start time is a malformed record: ``on_error`` ('raise' | 'skip');
- m/z not ascending within a spectrum: ``unsorted`` ('sort' by default: sorts and counts the
  spectra it sorted in :attr:`Ms1Map.n_sorted` and in a logged warning; or 'raise'). Sorting is
  the default because real files need it: OpenMS's MapAlignmentAlgorithmPoseClustering_in1/in2
  test runs store peaks out of m/z order, and the order carries no information for a detector;
- a spectrum without peaks: ``empty`` ('raise' by default, 'skip', or 'keep' as an empty row,
  which keeps the RT sampling of the run intact for a detector);
- RT going backwards between spectra raises (a detector relies on RT order).
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from pyteomics import mzml

from deepms.errors import DataFormatError
from deepms.io._records import RECORD_ERRORS, OnError, RecordErrors
from deepms.io.atomic import atomic_path
from deepms.io.formats import register_format
from deepms.io.mzml import _retention_time_seconds

logger = logging.getLogger("deepms.io")

EmptyPolicy = Literal["raise", "skip", "keep"]
UnsortedPolicy = Literal["raise", "sort"]


@dataclass(frozen=True)
class Ms1Spectrum:
    """One MS1 scan: its native id, RT in seconds and peaks (m/z ascending)."""

    identifier: str
    retention_time: float
    mz: np.ndarray
    intensity: np.ndarray
    centroided: bool | None = None


@dataclass
class Ms1Map:
    """The MS1 spectra of one run as concatenated arrays (``offsets[i]:offsets[i+1]`` = scan i).

    ``rt`` is in seconds and non-decreasing; m/z is ascending within each spectrum.
    """

    rt: np.ndarray
    offsets: np.ndarray
    mz: np.ndarray
    intensity: np.ndarray
    spectrum_ids: list[str] = field(default_factory=list)
    source: str = ""
    centroided: bool | None = None
    n_sorted: int = 0

    def __post_init__(self) -> None:
        self.rt = np.asarray(self.rt, dtype=np.float64)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.mz = np.asarray(self.mz, dtype=np.float64)
        self.intensity = np.asarray(self.intensity, dtype=np.float32)
        if len(self.offsets) != len(self.rt) + 1 or self.offsets[-1] != len(self.mz):
            raise ValueError("offsets must have one entry per spectrum plus one, ending at n_peaks")
        if len(self.mz) != len(self.intensity):
            raise ValueError("mz and intensity differ in length")
        if not self.spectrum_ids:
            self.spectrum_ids = [f"index={i}" for i in range(len(self.rt))]

    @classmethod
    def from_spectra(
        cls, spectra: Sequence[Ms1Spectrum], source: str = "", n_sorted: int = 0
    ) -> Ms1Map:
        """Concatenate spectra (already validated and in RT order) into one map."""
        lengths = np.fromiter((len(s.mz) for s in spectra), dtype=np.int64, count=len(spectra))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        flags = {s.centroided for s in spectra}
        empty = np.empty(0)
        return cls(
            rt=np.array([s.retention_time for s in spectra], dtype=np.float64),
            offsets=offsets,
            mz=np.concatenate([s.mz for s in spectra]) if spectra else empty,
            intensity=np.concatenate([s.intensity for s in spectra]) if spectra else empty,
            spectrum_ids=[s.identifier for s in spectra],
            source=source,
            centroided=flags.pop() if len(flags) == 1 else None,
            n_sorted=n_sorted,
        )

    def __len__(self) -> int:
        return len(self.rt)

    @property
    def n_peaks(self) -> int:
        """Number of peaks in the whole map."""
        return len(self.mz)

    def spectrum(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(m/z, intensity) views of one scan."""
        lo, hi = self.offsets[index], self.offsets[index + 1]
        return self.mz[lo:hi], self.intensity[lo:hi]

    def spectrum_index(self) -> np.ndarray:
        """The scan index of every peak (length ``n_peaks``), for vectorised per-peak work."""
        return np.repeat(np.arange(len(self.rt)), np.diff(self.offsets))

    def window(self, rt_lo: float, rt_hi: float, mz_lo: float, mz_hi: float) -> Ms1Map:
        """The sub-map with ``rt_lo <= rt <= rt_hi`` and ``mz_lo <= mz < mz_hi``.

        Scans inside the RT range are kept even if they have no peak in the m/z range, so the
        RT sampling of a window is the run's (a detector sees gaps as gaps, not as missing scans).
        """
        first = int(np.searchsorted(self.rt, rt_lo, side="left"))
        last = int(np.searchsorted(self.rt, rt_hi, side="right"))
        starts, stops = self.offsets[first:last], self.offsets[first + 1 : last + 1]
        lo = np.empty(last - first, dtype=np.int64)
        hi = np.empty(last - first, dtype=np.int64)
        for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
            segment = self.mz[a:b]
            lo[i] = a + np.searchsorted(segment, mz_lo, side="left")
            hi[i] = a + np.searchsorted(segment, mz_hi, side="left")
        take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)] or [[]])
        take = take.astype(np.int64)
        return Ms1Map(
            rt=self.rt[first:last],
            offsets=np.concatenate([[0], np.cumsum(hi - lo)]),
            mz=self.mz[take],
            intensity=self.intensity[take],
            spectrum_ids=self.spectrum_ids[first:last],
            source=self.source,
            centroided=self.centroided,
        )

    def grid(self, mz_lo: float, mz_hi: float, mz_step: float) -> np.ndarray:
        """A dense (scans x m/z bins) intensity grid of this map (call on a window, not a run).

        Peaks falling in the same bin are summed; bins are ``[mz_lo + k*step, mz_lo + (k+1)*step)``.
        """
        n_bins = int(np.ceil((mz_hi - mz_lo) / mz_step))
        out = np.zeros((len(self.rt), n_bins), dtype=np.float32)
        bins = np.floor((self.mz - mz_lo) / mz_step).astype(np.int64)
        keep = (bins >= 0) & (bins < n_bins)
        np.add.at(out, (self.spectrum_index()[keep], bins[keep]), self.intensity[keep])
        return out


def _open(path: Path) -> IO[bytes]:
    """Binary handle, gunzipped when the file starts with the gzip magic (not by suffix alone)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


def _is_ms1(raw: dict[str, Any]) -> bool:
    level = raw.get("ms level")
    if level is None:  # some converters omit it: a scan without precursor is a survey scan
        return not raw.get("precursorList")
    return int(level) == 1


def _centroided(raw: dict[str, Any]) -> bool | None:
    if "centroid spectrum" in raw:
        return True
    if "profile spectrum" in raw:
        return False
    return None


def _to_ms1(
    raw: dict[str, Any], empty: EmptyPolicy, unsorted: UnsortedPolicy, drop_zeros: bool
) -> tuple[Ms1Spectrum | None, bool]:
    """Validate one raw scan; returns (spectrum or None when skipped as empty, was_sorted)."""
    scan = (raw.get("scanList", {}).get("scan") or [{}])[0]
    rt = _retention_time_seconds(scan)
    if rt is None or not np.isfinite(rt):
        raise ValueError("no scan start time (RT); cannot place the spectrum in the map")
    mz = np.asarray(raw.get("m/z array", ()), dtype=np.float64)
    intensity = np.asarray(raw.get("intensity array", ()), dtype=np.float32)
    if len(mz) != len(intensity):
        raise ValueError(f"m/z array has {len(mz)} values, intensity array {len(intensity)}")
    if drop_zeros and len(mz):  # profile data: zero-intensity points carry no signal
        keep = intensity > 0
        mz, intensity = mz[keep], intensity[keep]
    if len(mz) == 0:
        if empty == "raise":
            raise ValueError("empty spectrum: no peaks (use empty='skip' or 'keep')")
        if empty == "skip":
            return None, False
    if not (np.isfinite(mz).all() and np.isfinite(intensity).all()):
        raise ValueError("non-finite m/z or intensity values")
    was_sorted = False
    if len(mz) > 1 and np.any(np.diff(mz) < 0):
        if unsorted == "raise":
            first = int(np.argmax(np.diff(mz) < 0))
            raise ValueError(
                f"m/z not ascending at peak {first + 1} ({mz[first]:.6f} > {mz[first + 1]:.6f});"
                " use unsorted='sort' to sort"
            )
        order = np.argsort(mz, kind="stable")
        mz, intensity, was_sorted = mz[order], intensity[order], True
    spectrum = Ms1Spectrum(
        str(raw.get("id", raw.get("index"))), rt, mz, intensity, _centroided(raw)
    )
    return spectrum, was_sorted


def iter_ms1_spectra(
    path: str | PathLike[str],
    on_error: OnError = "raise",
    empty: EmptyPolicy = "raise",
    unsorted: UnsortedPolicy = "sort",
    drop_zeros: bool = True,
) -> Iterator[Ms1Spectrum]:
    """Stream validated MS1 spectra of an mzML (``.mzML`` or gzipped) in file order.

    Streaming keeps memory flat for whole runs (``deepms predict``); see the module docstring for
    the policies. Raises :class:`DataFormatError` when the file holds no MS1 spectrum at all.
    ``drop_zeros`` removes zero-intensity points (profile data pads every scan with them).
    """
    return _iter_ms1(Path(path), on_error, empty, unsorted, drop_zeros, {})


def _iter_ms1(
    path: Path,
    on_error: OnError,
    empty: EmptyPolicy,
    unsorted: UnsortedPolicy,
    drop_zeros: bool,
    counts: dict[str, int],
) -> Iterator[Ms1Spectrum]:
    errors = RecordErrors(path, on_error)
    total = n_ms1 = n_sorted = 0
    levels: set[object] = set()
    previous_rt = -np.inf
    try:
        with (
            _open(path) as handle,
            mzml.MzML(handle, use_index=False, decode_binary=True) as reader,
        ):
            for raw in reader:
                total += 1
                if not _is_ms1(raw):
                    levels.add(raw.get("ms level"))
                    continue
                n_ms1 += 1
                record = raw.get("id", raw.get("index"))
                try:
                    spectrum, was_sorted = _to_ms1(raw, empty, unsorted, drop_zeros)
                except RECORD_ERRORS as exc:
                    errors.handle(record, exc)
                    continue
                if spectrum is None:
                    continue
                if spectrum.retention_time < previous_rt:
                    raise DataFormatError(
                        path,
                        record,
                        f"RT {spectrum.retention_time} s goes back from "
                        f"{previous_rt} s; MS1 spectra must be in RT order",
                    )
                previous_rt = spectrum.retention_time
                n_sorted += was_sorted
                counts["sorted"] = n_sorted
                yield spectrum
    except (OSError, SyntaxError, *RECORD_ERRORS) as exc:  # lxml syntax errors are SyntaxError
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(path, "file", f"not a readable mzML: {exc}") from exc
    errors.finish(n_ms1)
    if n_sorted:
        logger.warning("%s: sorted m/z in %d of %d MS1 spectra", path, n_sorted, n_ms1)
    if n_ms1 == 0:
        raise DataFormatError(
            path, "file", f"no MS1 spectra ({total} spectra, MS levels {sorted(map(str, levels))})"
        )


def read_ms1_map(
    path: str | PathLike[str],
    on_error: OnError = "raise",
    empty: EmptyPolicy = "raise",
    unsorted: UnsortedPolicy = "sort",
    drop_zeros: bool = True,
) -> Ms1Map:
    """All MS1 spectra of an mzML run as one :class:`Ms1Map` (policies as in the module doc)."""
    counts: dict[str, int] = {}
    spectra = list(_iter_ms1(Path(path), on_error, empty, unsorted, drop_zeros, counts))
    return Ms1Map.from_spectra(spectra, source=str(path), n_sorted=counts.get("sorted", 0))


def write_ms1_mzml(ms1: Ms1Map, path: str | PathLike[str], centroided: bool = True) -> Path:
    """Write an :class:`Ms1Map` as an indexed mzML (psims), atomically.

    Why psims: it writes valid, indexed mzML with controlled-vocabulary terms that pyteomics,
    pyopenms and the peers (OpenMS, Biosaur2) read; deepms already depends on it.
    """
    from psims.mzml.writer import MzMLWriter

    path = Path(path)
    kind = "centroid spectrum" if centroided else "profile spectrum"
    with atomic_path(path) as partial, MzMLWriter(str(partial), close=True) as writer:
        writer.controlled_vocabularies()
        writer.file_description([kind, "MS1 spectrum"])
        writer.software_list(
            [{"id": "deepms", "version": "0", "params": ["custom unreleased software tool"]}]
        )
        writer.instrument_configuration_list(
            [writer.InstrumentConfiguration(id="IC1", component_list=[])]
        )
        writer.data_processing_list(
            [
                writer.DataProcessing(
                    [
                        writer.ProcessingMethod(
                            order=0, software_reference="deepms", params=["data processing action"]
                        )
                    ],
                    id="dp",
                )
            ]
        )
        with (
            writer.run(id="run", instrument_configuration="IC1"),
            writer.spectrum_list(count=len(ms1)),
        ):
            for i in range(len(ms1)):
                mz, intensity = ms1.spectrum(i)
                writer.write_spectrum(
                    mz,
                    intensity,
                    id=ms1.spectrum_ids[i],
                    centroided=centroided,
                    scan_start_time={
                        "name": "scan start time",
                        "value": float(ms1.rt[i]),
                        "unitName": "second",
                    },
                    params=[{"ms level": 1}, "MS1 spectrum"],
                )
    return path


@register_format(
    "mzml_ms1", (".mzml", ".mzml.gz"), "Ms1Spectrum", "MS1 scans of LC-MS runs (deepiso)"
)
def _read_ms1_format(
    paths: Sequence[Path],
    on_error: OnError,
    empty: EmptyPolicy = "raise",
    unsorted: UnsortedPolicy = "sort",
) -> Iterator[Ms1Spectrum]:
    """Format-registry reader: the MS1 spectra of each run in turn (a data source's runs)."""
    for path in paths:
        yield from iter_ms1_spectra(path, on_error, empty, unsorted)
