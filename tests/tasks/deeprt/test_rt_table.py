"""deeprt RT tables as registered formats, and sources given by path: rows, units, bad rows."""

from __future__ import annotations

import pickle
import sys
from collections import Counter
from pathlib import Path

import pytest

from deepms.datasets.lineage import Lineage
from deepms.datasets.sources import open_source
from deepms.errors import DataFormatError
from deepms.io.formats import get_format
from deepms.tasks.deeprt import stacking
from deepms.tasks.deeprt.data import RTDataModule

DEEPLC = (
    "seq,modifications,tr\nPEPMK,4|Oxidation,120\nPEPXK,,3.0\nPEPMK,4|Oxidation,180\nACDK,,nan\n"
)


def _table(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_rt_formats_yield_one_row_per_line_as_written(tmp_path: Path) -> None:
    path = _table(tmp_path, "set.csv", DEEPLC)
    assert get_format("rt_deeplc").record == "RTRow"
    assert get_format("rt_deeprt").takes("x.txt") and not get_format("rt_proforma").takes("x.txt")
    dropped: Counter = Counter()
    opened = open_source({"path": str(path), "format": "rt_deeplc", "unit": "s"})
    rows = list(opened.records("skip", dropped=dropped))
    # duplicates are not merged and seconds stay seconds: both are the task's choice
    assert [(r.peptide.to_proforma(), r.rt, r.line) for r in rows] == [
        ("PEPM[Oxidation]K", 120.0, 2),
        ("PEPM[Oxidation]K", 180.0, 4),
    ]
    assert sum(dropped.values()) == 2 and all(k.startswith("set.csv: ") for k in dropped)
    with pytest.raises(DataFormatError, match=r"set\.csv: record line 3 \('PEPXK'\)"):
        list(opened.records("raise"))
    proforma = _table(tmp_path, "own.csv", "peptide,rt\nAC[Carbamidomethyl]DK,3.5\n")
    (row,) = get_format("rt_proforma").open([proforma])
    assert (row.peptide.to_proforma(), row.rt, row.line) == ("AC[Carbamidomethyl]DK", 3.5, 2)


def test_a_table_by_path_merges_converts_and_counts_dropped_rows(tmp_path: Path) -> None:
    path = _table(tmp_path, "set.csv", DEEPLC)
    source = {"path": str(path), "format": "rt_deeplc", "unit": "s", "role": "train"}
    dm = RTDataModule([source], split={"seed": 1})
    dm.setup()
    lineage = dm.lineage()
    assert isinstance(lineage, Lineage)
    (sample,) = dm.datasets["train"].samples
    assert sample.rt == pytest.approx(2.5) and sample.n_rows == 2  # mean of 2 and 3 min
    assert lineage.dropped == {"set.csv: InvalidResidueError": 1, "set.csv: ValueError": 1}
    assert lineage.extras["n_rows_merged"] == 1 and lineage.extras["rt_unit"] == "min"
    assert lineage.name == "set" and dm.model_kwargs()["data_name"] == "set"
    assert str(path) in lineage.datasets["set"]
    assert dm.split_name == "peptide_grouped_seed1+train_only_sources"
    with pytest.raises(DataFormatError, match=r"set\.csv: record line 3"):
        RTDataModule([source], on_error="raise").setup()


def test_sources_must_share_one_model_unit_and_name_theirs(tmp_path: Path) -> None:
    path = str(_table(tmp_path, "a.csv", "peptide,rt\nPEPTIDEK,3\n"))
    both = [{"path": path, "format": "rt_proforma", "unit": u} for u in ("s", "min")]
    assert RTDataModule(both).rt_unit == "min"  # seconds and minutes both train in minutes
    with pytest.raises(ValueError, match="one RT unit"):
        RTDataModule([{"path": path, "format": "rt_proforma", "unit": u} for u in ("s", "irt")])
    with pytest.raises(ValueError, match="give the file's RT unit"):
        RTDataModule([{"path": path, "format": "rt_proforma"}])
    with pytest.raises(ValueError, match="RT table format"):
        RTDataModule([{"path": path, "format": "fasta", "unit": "min"}])


def test_stacks_pickled_under_the_old_core_module_still_load(monkeypatch) -> None:
    stack = stacking.FeatureStack(pca_components=2)
    old = "deepms.training.stacking"
    monkeypatch.setitem(sys.modules, old, stacking)
    monkeypatch.setattr(stacking.FeatureStack, "__module__", old)
    data = pickle.dumps(stack)
    monkeypatch.undo()
    assert old.encode() in data and old not in sys.modules
    loaded = stacking.load_stack(data)
    assert type(loaded) is stacking.FeatureStack and loaded.pca_components == 2
