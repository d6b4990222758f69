"""Labelled spectra from every source format as one record type, for the deepnovo data module.

Peak lists come from MGF files (Casanovo's ``SEQ=`` MGF, or synthetic MGFs in the same style given
by path; MS2PIP's MassIVE-KB MGF labelled by its PEPREC). Sources that store annotated ions, not
peaks (pDeep2 ``.plabel``, DLOmix/Prosit parquet), get a peak list rebuilt from the annotation at
theoretical m/z (:func:`rebuild_peaks`) and the precursor m/z of their peptide and charge.
Readers are the shared ones in :mod:`deepms.io`; bad records follow ``on_error``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepms.chem import Peptide
from deepms.datasets.registry import get_dataset, resolve, sha256_file
from deepms.io import read_mgf, read_peprec_mgf, read_plabel, read_prosit_parquet
from deepms.tasks.deepnovo.preprocess import rebuild_peaks

ROLES = ("split", "train", "test")


@dataclass
class LabelledSpectrum:
    """A peak list with its precursor and the peptide that produced it."""

    identifier: str
    peptide: Peptide | None  # None: no label, or no precursor (the data module counts these)
    charge: int
    precursor_mz: float
    mz: np.ndarray
    intensity: np.ndarray


def _from_spectra(spectra: Any) -> Iterator[LabelledSpectrum]:
    for s in spectra:
        complete = s.precursor_charge is not None and s.precursor_mz is not None
        yield LabelledSpectrum(
            s.identifier,
            s.peptide if complete else None,
            int(s.precursor_charge or 0),
            float(s.precursor_mz or 0.0),
            s.mz,
            s.intensity,
        )


def _from_annotated(records: Any) -> Iterator[LabelledSpectrum]:
    for r in records:
        mz, intensity = rebuild_peaks(r)
        precursor = r.peptide.precursor_mz(int(r.precursor_charge))
        charge = int(r.precursor_charge)
        yield LabelledSpectrum(r.identifier, r.peptide, charge, precursor, mz, intensity)


def load_mgf_seq(files: list[Path], on_error: str) -> Iterator[LabelledSpectrum]:
    """Casanovo-style MGF: ``SEQ=`` ProForma label, PEPMASS, CHARGE, peaks."""
    for path in files:
        if path.suffix.lower() == ".mgf":
            yield from _from_spectra(read_mgf(path, on_error=on_error))


def load_peprec_mgf(files: list[Path], on_error: str) -> Iterator[LabelledSpectrum]:
    """MS2PIP pairs: peaks in the MGF, labels in the PEPREC (TITLE = spec_id)."""
    peprec = next(p for p in files if p.suffix == ".peprec")
    mgf = next(p for p in files if p.suffix == ".mgf")
    yield from _from_spectra(read_peprec_mgf(peprec, mgf, on_error=on_error))


def load_plabel(files: list[Path], on_error: str) -> Iterator[LabelledSpectrum]:
    for path in files:
        if path.suffix == ".plabel":
            yield from _from_annotated(read_plabel(path, on_error=on_error))


def load_prosit(files: list[Path], on_error: str) -> Iterator[LabelledSpectrum]:
    for path in files:
        if path.suffix == ".parquet":
            yield from _from_annotated(read_prosit_parquet(path, on_error=on_error))


LOADERS: dict[str, Callable[[list[Path], str], Iterator[LabelledSpectrum]]] = {
    "mgf_seq": load_mgf_seq,
    "peprec_mgf": load_peprec_mgf,
    "plabel": load_plabel,
    "prosit_parquet": load_prosit,
}


def source_name(source: dict[str, Any]) -> str:
    """The catalogue name, or the file's stem for a source given by path (``name:`` overrides)."""
    if source.get("name"):
        return str(source["name"])
    if source.get("dataset"):
        return str(source["dataset"])
    return Path(str(source["path"])).stem


def check_source(source: dict[str, Any]) -> None:
    """A source entry needs ``dataset`` or ``path``, a known ``format`` and a known ``role``."""
    if bool(source.get("dataset")) == bool(source.get("path")):
        raise ValueError(f"source {source}: give exactly one of dataset: NAME or path: FILE")
    if source.get("format") not in LOADERS:
        raise ValueError(f"source {source}: unknown format; known: {sorted(LOADERS)}")
    if source.get("role", "split") not in ROLES:
        raise ValueError(f"source {source}: role must be one of {ROLES}")


def open_source(
    source: dict[str, Any], mirror: Path | None, cache_dir: Path | None, on_error: str
) -> tuple[Iterator[LabelledSpectrum], dict[str, str]]:
    """Records of one source and the sha256 of each file read (for the run's lineage)."""
    check_source(source)
    if source.get("dataset"):
        name = source["dataset"]
        files = list(resolve(name, mirror=mirror, cache_dir=cache_dir).values())
        checksums = {f.path: f.sha256 for f in get_dataset(name).files}
    else:
        path = Path(str(source["path"])).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"source {source}: no such file {path}")
        files, checksums = [path], {str(path): sha256_file(path)}
    return LOADERS[source["format"]](files, on_error), checksums
