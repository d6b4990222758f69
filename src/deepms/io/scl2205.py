"""SCL2205 (UniProt 2022_05 subcellular localisation, the ``p-scldata`` package): a CSV of
``entry, seq, scl`` plus ``splits.json`` (official ``trn``/``vld``/``tst`` and CV folds as
indices), ``entries.json`` (index -> accession) and ``labels.json`` (``index_to_label``).

Why a reader of its own: the split is part of the data set (homology-reduced within and across
splits upstream), so a part is read by name (``part: trn|vld|tst``) rather than re-cut here. The
package's ``label_to_index_multi`` is inconsistent (see the data's SOURCE.md) and never read.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from deepms.chem.alphabets import get_alphabet
from deepms.io._records import OnError, RecordErrors
from deepms.io.fasta import SequenceRecord, _check

PARTS = ("trn", "vld", "tst")


def _named(paths: Sequence[Path], ending: str) -> Path:
    found = [p for p in paths if p.name.lower().endswith(ending)]
    if len(found) != 1:
        names = ", ".join(p.name for p in paths)
        raise ValueError(f"scl2205 needs exactly one *{ending} file; given: {names}")
    return found[0]


def read_scl2205(
    paths: Sequence[Path],
    part: str,
    alphabet: str | None = "protein",
    on_error: OnError = "raise",
) -> Iterator[SequenceRecord]:
    """Records of one official part; ``label`` is ``(class name, -1)`` (no membrane flag)."""
    if part not in PARTS:
        raise ValueError(f"scl2205 part {part!r}: use one of {PARTS}")
    table = _named(paths, ".csv")
    splits = json.loads(_named(paths, "splits.json").read_text())
    entries = json.loads(_named(paths, "entries.json").read_text())
    names = json.loads(_named(paths, "labels.json").read_text())["index_to_label"]
    wanted = {entries[str(i)] for i in splits[part]}
    alpha = get_alphabet(alphabet) if alphabet else None
    errors = RecordErrors(table, on_error)
    total = 0
    with open(table, newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            if row.get("entry") not in wanted:
                continue
            total += 1
            try:
                label = names.get(str(row.get("scl", "")).strip())
                if label is None:
                    raise ValueError(f"no label: scl {row.get('scl')!r} is not in labels.json")
                sequence = _check(row.get("seq") or "", alpha)
            except ValueError as exc:
                errors.handle(f"line {line} ({row.get('entry')})", exc)
                continue
            yield SequenceRecord(row["entry"], sequence, f"{row['entry']} {label}", (label, -1))
    errors.finish(total)
