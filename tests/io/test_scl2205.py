"""The SCL2205 reader on a hand-made miniature: official parts by name, labels decoded through
labels.json's index_to_label, bad records named with their line, and the real set's part sizes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deepms.errors import DataFormatError
from deepms.io.scl2205 import read_scl2205


def _mini(tmp_path: Path, bad_row: str = "") -> list[Path]:
    table = tmp_path / "scl2205.csv"
    table.write_text("entry,seq,scl\nP1,MKVLA,0\nP2,MSTNE,4\nP3,MQQRK,2\nP4,MAAAA,1\n" + bad_row)
    splits = tmp_path / "scl2205_splits.json"
    splits.write_text(json.dumps({"trn": [0, 2], "vld": [3], "tst": [1, 4], "cv": {}}))
    entries = tmp_path / "scl2205_entries.json"
    entries.write_text(json.dumps({"0": "P1", "1": "P2", "2": "P3", "3": "P4", "4": "P5"}))
    labels = tmp_path / "scl2205_labels.json"
    labels.write_text(
        json.dumps(
            {
                "index_to_label": {"0": "Cytoplasm", "1": "ER", "2": "Membrane", "4": "Nucleus"},
                "label_to_index_multi": {"Cytoplasm": 3},  # inconsistent upstream: never read
            }
        )
    )
    return [table, splits, entries, labels]


def test_parts_are_read_by_name_with_decoded_labels(tmp_path: Path) -> None:
    paths = _mini(tmp_path)
    train = list(read_scl2205(paths, "trn"))
    assert [(r.identifier, r.sequence, r.label) for r in train] == [
        ("P1", "MKVLA", ("Cytoplasm", -1)),
        ("P3", "MQQRK", ("Membrane", -1)),
    ]
    assert [r.identifier for r in read_scl2205(paths, "vld")] == ["P4"]
    assert [r.label for r in read_scl2205(paths, "tst")] == [("Nucleus", -1)]  # P5 has no row


def test_bad_records_are_named_and_a_wrong_part_is_refused(tmp_path: Path) -> None:
    paths = _mini(tmp_path, bad_row="P5,MK*&1,2\n")
    with pytest.raises(DataFormatError, match=r"scl2205\.csv: record line 6 \(P5\)"):
        list(read_scl2205(paths, "tst"))
    assert [r.identifier for r in read_scl2205(paths, "tst", on_error="skip")] == ["P2"]
    with pytest.raises(ValueError, match="part 'train'"):
        list(read_scl2205(paths, "train"))
    with pytest.raises(ValueError, match=r"exactly one \*splits.json"):
        list(read_scl2205(paths[:1] + paths[2:], "trn"))


def test_real_parts_have_the_documented_sizes() -> None:
    mirror = Path(os.environ.get("DEEPMS_DATA_MIRROR", "/work/shared/data")) / "deeploc"
    if not (mirror / "scl2205.csv").is_file():
        pytest.skip("no SCL2205 in the data mirror")
    paths = [
        mirror / f"scl2205{s}" for s in (".csv", "_splits.json", "_entries.json", "_labels.json")
    ]
    sizes = {
        part: sum(1 for _ in read_scl2205(paths, part, on_error="skip"))
        for part in ("trn", "vld", "tst")
    }
    assert sizes == {"trn": 15183, "vld": 1260, "tst": 2631}
