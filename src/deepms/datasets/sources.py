"""Data sources: a catalogued data set or a user's own file, read the same way by every task.

One spelling for all tasks (``data.sources`` in a data config)::

    sources:
      - {dataset: pdeep_massivekb, format: peprec_mgf}             # catalogued: by name
      - {dataset: deeploc_deeploc1, files: [deeploc/setHARD.fasta], format: fasta, role: hard}
      - {path: /abs/my_column.csv, format: rt_proforma, unit: min}  # a user's file, by path
      - {path: /abs/synthetic.mgf, format: mgf_seq, role: train}    # all of it to training

``role`` decides where a source's samples go: ``split`` (default: cut by the split rule, or by
the source's own ``split`` fractions), ``train``, ``val`` or ``test`` (all of it there), or
another name that the task serves as an extra test set (e.g. deeploc's ``hard``). Keys other
than the ones :class:`SourceSpec` names are options for the task or the reader (``unit``,
``nce``...). :func:`open_source` resolves the files (mirror, cache, download; sha256 checked
for catalogued files, computed for files given by path) and hands the records to the format's
reader; the checksums go into the run's lineage either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepms.datasets.registry import get_dataset, resolve_file, sha256_file
from deepms.errors import DatasetNotFoundError, DeepMSError
from deepms.io.formats import Format, get_format

#: roles every task understands; a task may serve others as extra test sets
ROLES = ("split", "train", "val", "test")
_SPEC_KEYS = {"dataset", "path", "format", "files", "role", "name", "split"}


class SourceError(DeepMSError, ValueError):
    """A source entry is incomplete or contradicts itself."""


@dataclass(frozen=True)
class SourceSpec:
    """One entry of ``data.sources``: where the records are, how to read them, where they go."""

    format: str
    dataset: str | None = None
    path: tuple[str, ...] = ()  # a user's file(s); several for multi-file formats (peprec_mgf)
    files: tuple[str, ...] = ()  # a subset of a catalogued data set's files (catalogue paths)
    role: str = "split"
    name: str | None = None
    split: tuple[float, ...] | None = None  # this source's own fractions (train, val, test)
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, entry: Mapping[str, Any] | SourceSpec) -> SourceSpec:
        """From a config mapping; keys beyond the spec's own become ``options``."""
        if isinstance(entry, SourceSpec):
            return entry
        entry = dict(entry)
        paths = entry.get("path")
        paths = (paths,) if isinstance(paths, str | Path) else tuple(paths or ())
        files = entry.get("files")
        files = (files,) if isinstance(files, str) else tuple(files or ())
        split = entry.get("split")
        spec = cls(
            format=str(entry.get("format") or ""),
            dataset=entry.get("dataset") or None,
            path=tuple(str(p) for p in paths),
            files=tuple(str(f) for f in files),
            role=str(entry.get("role") or "split"),
            name=entry.get("name") or None,
            split=tuple(float(f) for f in split) if split is not None else None,
            options={k: v for k, v in entry.items() if k not in _SPEC_KEYS},
        )
        spec.check()
        return spec

    def check(self) -> None:
        """Exactly one of dataset/path, a known format, a sensible split."""
        if bool(self.dataset) == bool(self.path):
            raise SourceError(f"source {self.describe()}: give exactly one of dataset: or path:")
        if not self.format:
            raise SourceError(f"source {self.describe()}: no format (e.g. format: mgf_seq)")
        get_format(self.format)  # unknown format: a clear error listing the known ones
        if self.path and self.files:
            raise SourceError(f"source {self.describe()}: files: selects catalogued files only")
        if self.split is not None and (
            len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1) > 1e-6
        ):
            raise SourceError(f"source {self.describe()}: split must be 3 fractions summing to 1")

    @property
    def label(self) -> str:
        """The source's name in lineages and logs: ``name``, the data set, or the file stem."""
        if self.name:
            return str(self.name)
        if self.dataset:
            return str(self.dataset)
        return Path(self.path[0]).name.split(".")[0]

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def describe(self) -> str:
        where = f"dataset={self.dataset}" if self.dataset else f"path={', '.join(self.path)}"
        return f"[{where} format={self.format or '?'} role={self.role}]"


@dataclass
class OpenedSource:
    """A source whose files are local and checked: its records come from :meth:`records`."""

    spec: SourceSpec
    format: Format
    paths: list[Path]
    checksums: dict[str, str]  # catalogue path (or absolute path) -> sha256

    @property
    def name(self) -> str:
        return self.spec.label

    def records(self, on_error: str = "raise", **options: Any) -> Iterator[Any]:
        """The format's records; ``options`` (e.g. a FASTA label parser) go to the reader."""
        return self.format.open(self.paths, on_error, **options)


def open_source(
    spec: SourceSpec | Mapping[str, Any],
    mirror: Path | str | None = None,
    cache_dir: Path | str | None = None,
) -> OpenedSource:
    """Resolve a source's files (checking or computing sha256) for its format's reader."""
    spec = SourceSpec.from_config(spec)
    fmt = get_format(spec.format)
    if spec.dataset:
        datafiles = list(get_dataset(spec.dataset).files)
        if spec.files:
            known = {f.path: f for f in datafiles}
            missing = [f for f in spec.files if f not in known]
            if missing:
                raise SourceError(
                    f"source {spec.describe()}: {missing} not in the data set; it has "
                    f"{sorted(known)}"
                )
            datafiles = [known[f] for f in spec.files]
        else:
            datafiles = [f for f in datafiles if fmt.takes(f.path)]
        mirror = Path(mirror) if mirror else None
        cache = Path(cache_dir) if cache_dir else None
        paths = [resolve_file(f, mirror, cache) for f in datafiles]
        checksums = {f.path: f.sha256 for f in datafiles}
    else:
        paths = [Path(p).expanduser().resolve() for p in spec.path]
        for path in paths:
            if not path.is_file():
                raise DatasetNotFoundError(f"source {spec.describe()}: no such file {path}")
        checksums = {str(p): sha256_file(p) for p in paths}
    return OpenedSource(spec, fmt, paths, checksums)


def source_specs(entries: Sequence[Mapping[str, Any] | SourceSpec] | None) -> list[SourceSpec]:
    """Specs of a ``data.sources`` list (each checked)."""
    return [SourceSpec.from_config(e) for e in entries or ()]
