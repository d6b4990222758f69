"""Named data sets with pinned URLs and sha256 sums, so every run trains on the same bytes.

Lookup order for a file: the mirror folder (``$DEEPMS_DATA_MIRROR``), then the cache folder
(``$DEEPMS_CACHE`` or ``~/.cache/deepms``), then a download into the cache. Every copy is
checked against the catalogue's sha256; a mismatch is an error, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tomllib
import urllib.request
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from tqdm.auto import tqdm

from deepms.errors import ChecksumError, DatasetNotFoundError
from deepms.io.atomic import atomic_path

logger = logging.getLogger("deepms.datasets")
_CHUNK = 1 << 20
_sha_memo: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class DataFile:
    """One file: its path below the mirror/cache root, its origin URL and its sha256."""

    path: str
    url: str | None
    sha256: str
    note: str = ""  # e.g. why there is no URL (converted file)


@dataclass(frozen=True)
class Dataset:
    """A logical group of files used together (e.g. an MGF and its PEPREC labels)."""

    name: str
    files: tuple[DataFile, ...]
    description: str
    licence: str
    task: str = ""
    citation: str = ""

    def file(self, suffix: str) -> DataFile:
        """The only file whose path ends with ``suffix`` (e.g. ``".mgf"``)."""
        matches = [f for f in self.files if f.path.endswith(suffix)]
        if len(matches) != 1:
            raise KeyError(f"{self.name}: {len(matches)} files end with {suffix!r}")
        return matches[0]


@cache
def _catalog() -> dict[str, Dataset]:
    text = resources.files("deepms.datasets").joinpath("catalog.toml").read_text("utf-8")
    entries = tomllib.loads(text)["datasets"]
    return {
        name: Dataset(
            name=name,
            files=tuple(DataFile(**{"url": None, **f}) for f in entry["files"]),
            description=entry["description"],
            licence=entry["licence"],
            task=entry.get("task", ""),
            citation=entry.get("citation", ""),
        )
        for name, entry in entries.items()
    }


def list_datasets(task: str | None = None) -> list[str]:
    """Names of all catalogued data sets (optionally of one task, e.g. ``"pdeep"``)."""
    return sorted(n for n, d in _catalog().items() if task is None or d.task == task)


def get_dataset(name: str) -> Dataset:
    """The catalogue entry ``name``; unknown names list the known ones."""
    try:
        return _catalog()[name]
    except KeyError:
        known = ", ".join(list_datasets())
        raise DatasetNotFoundError(f"unknown data set {name!r}; known: {known}") from None


def default_mirror() -> Path | None:
    """``$DEEPMS_DATA_MIRROR`` as a path, or None."""
    value = os.environ.get("DEEPMS_DATA_MIRROR")
    return Path(value) if value else None


def default_cache_dir() -> Path:
    """``$DEEPMS_CACHE`` or ``~/.cache/deepms``."""
    value = os.environ.get("DEEPMS_CACHE")
    return Path(value) if value else Path.home() / ".cache" / "deepms"


def sha256_file(path: Path) -> str:
    """sha256 of a file, memoised per (path, size, mtime) so repeated resolves cost a stat."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _sha_memo:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        _sha_memo[key] = digest.hexdigest()
    return _sha_memo[key]


def verify(path: Path, expected: str) -> Path:
    """Return ``path`` if its sha256 is ``expected``, else raise :class:`ChecksumError`."""
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(path, expected, actual)
    return path


def download_url(url: str, dest: Path, sha256: str) -> Path:
    """Fetch ``url`` to ``dest``: verify while writing, then rename atomically (no half files)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with atomic_path(dest, per_process=True) as partial:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=None) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != sha256:
            raise ChecksumError(url, sha256, digest.hexdigest())
    return dest


def resolve_file(
    datafile: DataFile,
    mirror: Path | None = None,
    cache_dir: Path | None = None,
    download: bool = True,
) -> Path:
    """Local, checksum-verified path of ``datafile`` (mirror, then cache, then download)."""
    mirror = Path(mirror) if mirror is not None else default_mirror()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    looked = []
    if mirror is not None:
        candidate = mirror / datafile.path
        if candidate.is_file():
            return verify(candidate, datafile.sha256)
        looked.append(str(candidate))
    cached = cache_dir / datafile.path
    if cached.is_file():
        return verify(cached, datafile.sha256)
    looked.append(str(cached))
    if not download or not datafile.url:
        why = "downloads disabled" if datafile.url else f"no download URL ({datafile.note})"
        raise DatasetNotFoundError(
            f"{datafile.path}: not found (looked in {', '.join(looked)}; {why}); "
            "set DEEPMS_DATA_MIRROR to a folder holding the data"
        )
    logger.info("downloading %s from %s", datafile.path, datafile.url)
    try:
        return download_url(datafile.url, cached, datafile.sha256)
    except OSError as exc:
        raise DatasetNotFoundError(
            f"{datafile.path}: not found (looked in {', '.join(looked)}) and download of "
            f"{datafile.url} failed: {exc}"
        ) from exc


def resolve(
    name: str,
    mirror: Path | None = None,
    cache_dir: Path | None = None,
    download: bool = True,
) -> dict[str, Path]:
    """Resolve every file of data set ``name``; keys are the catalogue paths."""
    return {f.path: resolve_file(f, mirror, cache_dir, download) for f in get_dataset(name).files}
