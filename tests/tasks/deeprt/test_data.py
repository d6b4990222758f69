"""deeprt data: notations, units, de-duplication, bad rows and leakage-free splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from deepms.errors import DataFormatError
from deepms.tasks.deeprt.data import RTDataModule, collate, convert_rt, read_rt_table

DLOMIX = {"dataset": "deeprt_dlomix_proteometools_irt", "format": "rt_dlomix", "unit": "irt"}
DLOMIX_SOURCES = [
    {**DLOMIX, "files": ["deeprt/dlomix_proteometools_irt_train.csv"], "split": [1.0, 0.0, 0.0]},
    {**DLOMIX, "files": ["deeprt/dlomix_proteometools_irt_val.csv"], "split": [0.0, 0.5, 0.5]},
]
SEQS_EXP = [{"dataset": "deeprt_deeplc_seqs_exp", "format": "rt_deeplc", "unit": "min"}]


def test_units_seconds_become_minutes_and_irt_stays() -> None:
    assert convert_rt(90.0, "s") == (1.5, "min")
    assert convert_rt(1.5, "min") == (1.5, "min")
    assert convert_rt(-12.0, "irt") == (-12.0, "irt")
    with pytest.raises(ValueError, match="unknown RT unit"):
        convert_rt(1.0, "hours")


def test_deeprt_digits_and_duplicates_are_merged(tmp_path: Path) -> None:
    # A DeepRT digit replaces its residue: 2 = S[Phospho], 1 = M[Oxidation], 3 = T[Phospho].
    path = tmp_path / "mod.txt"
    path.write_text("sequence\tRT\nA2PEK\t600\nA2PEK\t720\n1PEP3K\t1200\nASPEK\t60\n")
    samples = read_rt_table(path, "deeprt", "s")
    by_peptide = {s.peptide.to_proforma(): s for s in samples}
    assert set(by_peptide) == {"AS[Phospho]PEK", "M[Oxidation]PEPT[Phospho]K", "ASPEK"}
    merged = by_peptide["AS[Phospho]PEK"]
    assert merged.rt == pytest.approx(11.0) and merged.n_rows == 2  # mean of 10 and 12 min
    assert by_peptide["ASPEK"].rt == pytest.approx(1.0)


def test_deeplc_notation_and_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text("seq,modifications,tr\nPEPMK,4|Oxidation,12.5\nPEPXK,,3.0\nACDK,,nan\n")
    dropped: Counter = Counter()
    samples = read_rt_table(path, "deeplc", "min", dropped=dropped)
    assert [s.peptide.to_proforma() for s in samples] == ["PEPM[Oxidation]K"]
    assert sum(dropped.values()) == 2
    with pytest.raises(DataFormatError, match=r"set\.csv: record line 3 \('PEPXK'\).*'X'"):
        read_rt_table(path, "deeplc", "min", on_error="raise")


def test_missing_column_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("sequence,rt_minutes\nPEPTIDEK,3\n")
    with pytest.raises(DataFormatError, match=r"odd\.csv.*missing column"):
        read_rt_table(path, "dlomix", "irt")


def test_known_rows_of_the_real_files(mirror: Path) -> None:
    mod = read_rt_table(mirror / "deeprt" / "deeprt_mod.txt", "deeprt", "s")
    first = mod[0]
    assert first.peptide.sequence == "DCDPTTGETDDEGYEDEYVLEDLEVTVADHIQK"
    assert first.rt == pytest.approx(6212.34 / 60)  # 103.539 min
    assert any(s.peptide.to_proforma() == "RSELS[Phospho]QDAEPAGSQETK" for s in mod)


def test_dlomix_split_train_file_trains_val_file_is_halved(mirror: Path) -> None:
    dm = RTDataModule(DLOMIX_SOURCES, mirror=str(mirror), split={"seed": 42})
    dm.setup()
    sizes = dm.lineage()["n_samples"]
    assert sizes["train"] == 27200 and sizes["val"] + sizes["test"] == 6800
    assert 0.4 < sizes["test"] / 6800 < 0.6
    seqs = {k: {s.peptide.sequence for s in v.samples} for k, v in dm.datasets.items()}
    assert not (seqs["train"] & seqs["val"] or seqs["train"] & seqs["test"])
    assert not seqs["val"] & seqs["test"]
    assert dm.lineage()["rt_unit"] == "irt" and dm.model_kwargs()["rt_unit"] == "irt"
    assert dm.split_name == "peptide_grouped_100_0_0+0_50_50_seed42"
    lineage = dm.lineage()  # one data set, named once, both of its files with their sha256
    assert lineage.name == "deeprt_dlomix_proteometools_irt"
    assert sorted(lineage.datasets[lineage.name]) == sorted(
        f for s in DLOMIX_SOURCES for f in s["files"]
    )


def test_modified_forms_stay_in_one_split_and_fraction_keeps_test(mirror: Path) -> None:
    full = RTDataModule(SEQS_EXP, mirror=str(mirror))
    full.setup()
    seqs = {k: {s.peptide.sequence for s in v.samples} for k, v in full.datasets.items()}
    assert not (seqs["train"] & seqs["test"] or seqs["train"] & seqs["val"])
    assert len(full.datasets["train"]) > sum(len(v) for v in seqs.values())  # modforms grouped
    small = RTDataModule(SEQS_EXP, mirror=str(mirror), fraction=0.1)
    small.setup()
    assert [s.peptide for s in small.datasets["test"].samples] == [
        s.peptide for s in full.datasets["test"].samples
    ]
    assert 0.05 < len(small.datasets["train"]) / len(full.datasets["train"]) < 0.15
    assert small.encoder.modifications == full.encoder.modifications
    batch = collate([small.datasets["train"][i] for i in range(3)])
    assert (
        batch["mods"].shape[-1]
        == full.encoder.n_mod_features
        == len(full.encoder.modifications) + 8
    )


def test_a_peptide_two_files_split_differently_stays_only_held_out() -> None:
    from deepms.datasets.splits import most_held_out, subset_groups

    groups = ["PEPA", "PEPA", "PEPB", "PEPC", "PEPC"]
    labels = ["train", "test", "val", "val", "train"]
    assert most_held_out(groups, labels).tolist() == [False, True, True, True, False]
    tenth, fifth = (subset_groups([f"P{i}" for i in range(2000)], f, seed=1) for f in (0.1, 0.2))
    assert 150 < tenth.sum() < 250 and not (tenth & ~fifth).any()  # nested, about 10 %
    assert subset_groups(["A", "B", "A", "C"], max_groups=1, seed=0).sum() in (1, 2)
