"""The sequence tasks' datamodules on the core contract: sources by path, the similarity split of
the pool, sources with a role kept whole, split names, lineage checksums, the base's loaders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from deepms.datasets.lineage import Lineage
from deepms.training.datamodule import TaskDataModule

LETTERS = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def proteins(n: int, seed: int, length: int = 60) -> list[str]:
    """Random proteins: no two share a 5-mer by chance, so each is its own similarity cluster."""
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(LETTERS, length)) for _ in range(n)]


def write_fasta(path: Path, sequences: list[str], headers: list[str] | None = None) -> Path:
    headers = headers or [f"{path.stem}_{i}" for i in range(len(sequences))]
    path.write_text("".join(f">{h}\n{s}\n" for h, s in zip(headers, sequences, strict=True)))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rbppred_from_labelled_files_by_path(tmp_path: Path) -> None:
    from deepms.tasks.rbppred.data import RBPPredDataModule

    rbps = proteins(60, seed=1)
    others = proteins(60, seed=2)
    others[0] = rbps[0][:40] + others[0][40:]  # shares 36 5-mers with an RBP: one cluster
    pos = write_fasta(tmp_path / "rbps.fasta", rbps)
    neg = write_fasta(tmp_path / "others.fasta", others)
    sources = [
        {"path": str(pos), "format": "fasta", "label": 1},
        {"path": str(neg), "format": "fasta", "label": 0},
    ]
    dm = RBPPredDataModule(sources=sources, split={"fractions": [0.6, 0.2, 0.2], "seed": 7})
    assert isinstance(dm, TaskDataModule)
    dm.setup()
    lineage = dm.lineage()
    assert isinstance(lineage, Lineage)
    assert lineage.datasets == {
        "rbps": {str(pos.resolve()): sha256(pos)},
        "others": {str(neg.resolve()): sha256(neg)},
    }
    assert lineage.split == dm.split_name == "similarity_containment5_0.1_60_20_20_seed7"
    assert sum(lineage.n_samples.values()) == 120 and set(lineage.n_samples) == {
        "train",
        "val",
        "test",
    }
    part_of = {s: p for p, ds in dm.datasets.items() for s in ds.sequences}
    assert part_of[rbps[0]] == part_of[others[0]]  # similar proteins never straddle parts
    labels = {
        s: y
        for ds in dm.datasets.values()
        for s, y in zip(ds.sequences, ds.targets["label"], strict=True)
    }
    assert labels[rbps[5]] == 1.0 and labels[others[5]] == 0.0
    assert lineage["n_positive"] == {
        p: int(ds.targets["label"].sum()) for p, ds in dm.datasets.items()
    }
    loader = dm.train_dataloader()
    assert loader.generator is not None and loader.collate_fn is dm.collate_fn
    batch = next(iter(loader))
    assert batch["x"].shape[-1] == 4 and set(batch["label"].tolist()) <= {0.0, 1.0}


def test_rbppred_source_needs_a_label() -> None:
    from deepms.tasks.rbppred.data import RBPPredDataModule

    with pytest.raises(ValueError, match="label: 1 or label: 0"):
        RBPPredDataModule(sources=[{"path": "/x.fasta", "format": "fasta"}])


def test_deeploc_test_source_kept_whole_and_pool_cut_train_val(tmp_path: Path) -> None:
    from deepms.tasks.deeploc.data import DeepLocDataModule

    pool = proteins(80, seed=3)
    heads = [f"P{i} Nucleus-S" if i % 2 else f"P{i} Cytoplasm-U" for i in range(80)]
    heads[1] = "P1 Cytoplasm-Nucleus-S"  # not one of the 10 classes: dropped and counted
    test = [pool[2], *proteins(9, seed=4)]  # a test protein identical to a pool one stays
    train_file = write_fasta(tmp_path / "mine.fasta", pool, heads)
    test_file = write_fasta(tmp_path / "held.fasta", test, [f"T{i} Plastid-M" for i in range(10)])
    dm = DeepLocDataModule(
        sources=[
            {"path": str(train_file), "format": "fasta"},
            {"path": str(test_file), "format": "fasta", "role": "test"},
        ],
        split={"val_fraction": 0.25, "seed": 5},
        max_length=50,
    )
    dm.setup()
    assert dm.split_name == "similarity_containment5_0.1_train75_val25_seed5+given_test"
    sizes = dm.lineage().n_samples
    assert sizes["test"] == 10 and sizes["train"] + sizes["val"] == 79
    assert dm.lineage().dropped == {
        f"{train_file.resolve()}: location 'Cytoplasm-Nucleus' not one of the 10 classes": 1
    }
    assert pool[2] in dm.datasets["test"].sequences
    assert pool[2] in dm.datasets["train"].sequences + dm.datasets["val"].sequences
    assert dm.lineage()["test_with_train_neighbour"]["test"] <= 1
    assert dm.model_kwargs()["test_names"] == ["test"] and "hard" not in dm.datasets
    assert dm.datasets["test"].targets["membrane"].tolist() == [1] * 10


def test_deeploc_single_file_is_split_three_ways(tmp_path: Path) -> None:
    from deepms.tasks.deeploc.data import DeepLocDataModule

    path = write_fasta(
        tmp_path / "x.fasta", proteins(50, 6), [f"Q{i} Nucleus-M" for i in range(50)]
    )
    dm = DeepLocDataModule(sources=[{"path": str(path), "format": "fasta"}], split={"seed": 1})
    dm.setup()
    assert dm.split_name == "similarity_containment5_0.1_80_10_10_seed1"
    assert set(dm.datasets) == {"train", "val", "test"} and sum(dm.sizes().values()) == 50


def test_deepbind_experiment_fills_sources_and_own_seq_table_keeps_its_rules(
    tmp_path: Path,
) -> None:
    from deepms.tasks.deepbind.data import DeepBindDataModule, get_experiment

    default = DeepBindDataModule()  # resolved from data.experiment, no data read yet
    exp = get_experiment("encode_GABPA")
    assert [(s.files, s.role, s.format) for s in default.sources] == [
        ((exp.train,), "split", "deepbind_seq"),
        ((exp.test,), "test", "deepbind_seq"),
    ]
    clip = DeepBindDataModule(experiment="clip_PUM2")
    assert {s.format for s in clip.sources} == {"fasta"}

    rng = np.random.default_rng(0)
    rows = ["FoldID\tEventID\tseq\tBound"]
    rows += [f"A\tpeak{i}\t{''.join(rng.choice(list('ACGT'), 30))}\t1" for i in range(40)]
    table = tmp_path / "peaks.seq"
    table.write_text("\n".join(rows) + "\n")
    dm = DeepBindDataModule(
        experiment="encode_MYC",
        sources=[{"path": str(table), "format": "deepbind_seq"}],
        split={"seed": 3, "fractions": [0.5, 0.25, 0.25]},
    )
    dm.setup()
    lineage = dm.lineage()
    assert lineage.name == "peaks" and lineage.datasets == {
        "peaks": {str(table.resolve()): sha256(table)}
    }
    assert dm.split_name == "sequence_grouped_50_25_25_seed3"
    for part in ("train", "val"):  # one dinucleotide-shuffled background per peak
        assert lineage.n_samples[part] == 2 * lineage["n_positive"][part]
    assert lineage.n_samples["test"] == lineage["n_positive"]["test"]  # no backgrounds in test
