"""What data a run saw: data sets with file sha256, the split, samples per part, dropped records.

Every task's datamodule builds one :class:`Lineage` in ``setup``; the runner logs it to MLflow
(``data/lineage.json`` and MLflow datasets), benchmarks read sample counts from it, and a
cross-validated run names the fold in it. Task-specific facts (units, vocabularies, per-source
counts) go into ``extras``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Lineage:
    """The data behind a run, in one typed record (``to_dict`` for JSON and logs)."""

    name: str = ""
    split: str = ""
    seed: int = 0
    datasets: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {file: sha256}
    n_samples: dict[str, int] = field(default_factory=dict)  # part -> samples
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> records dropped
    extras: dict[str, Any] = field(default_factory=dict)

    def add_files(self, source: str, checksums: Mapping[str, str]) -> None:
        """Record the files (and their sha256) one source read."""
        self.datasets.setdefault(source, {}).update(checksums)

    def count_dropped(self, reasons: Mapping[str, int] | Counter) -> None:
        for reason, count in reasons.items():
            if count:
                self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready form: the fixed fields first, then the extras."""
        return {
            "name": self.name,
            "datasets": self.datasets,
            "split": self.split,
            "seed": self.seed,
            "n_samples": dict(self.n_samples),
            "dropped": dict(self.dropped),
            **self.extras,
        }

    def __getitem__(self, key: str) -> Any:
        """Dict-style reads (``lineage["split"]``) for code that only reads a lineage."""
        data = self.to_dict()
        if key not in data:
            raise KeyError(key)
        return data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)
