"""deeploc: header labels, the similarity split on real data, a tiny tracked run, prediction."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from deepms.tasks.deeploc.data import LOCATIONS, DeepLocDataModule, deeploc_label


def test_header_labels() -> None:
    assert deeploc_label("Q9H400 Cell.membrane-M test") == ("Cell.membrane", 1)
    assert deeploc_label("Q8R0A6 Lysosome/Vacuole-S") == ("Lysosome/Vacuole", 0)
    assert deeploc_label("Q12981 Endoplasmic.reticulum-U new_test_set") == (
        "Endoplasmic.reticulum",
        -1,
    )
    with pytest.raises(ValueError, match="no label"):
        deeploc_label("P12345")
    with pytest.raises(ValueError, match="membrane flag"):
        deeploc_label("P12345 Nucleus-Q")


def test_real_split_keeps_similar_proteins_together(mirror: Path) -> None:
    from deepms.sequences import max_similarity

    dm = DeepLocDataModule(mirror=str(mirror), limit_per_source=400, split={"seed": 3})
    dm.setup()
    train, val = dm.datasets["train"].sequences, dm.datasets["val"].sequences
    assert len(train) > len(val) > 0 and len(dm.datasets["hard"]) == 400
    assert max_similarity(val, train, k=5, measure="containment").max() < 0.1
    lineage = dm.lineage()
    assert set(lineage["test_with_train_neighbour"]) == {"test", "hard"}
    assert lineage["split"].startswith("similarity_containment5_0.1_train90_val10_seed3")
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape[-1] == 20 and batch["x"].shape[1] <= 1000
    assert set(batch["location"].tolist()) <= set(range(len(LOCATIONS)))


def test_model_ignores_padding() -> None:
    from deepms.sequences import SequenceEncoder
    from deepms.sequences.dataset import collate_sequences
    from deepms.tasks.deeploc.model import DeepLocModel

    encoder = SequenceEncoder("protein", "onehot")
    sizes = {"conv_filters": 4, "conv2_filters": 8, "lstm_hidden": 8, "attention_hidden": 8}
    model = DeepLocModel(encoder.to_dict(), list(LOCATIONS), conv_widths=(1, 3), pool=2, **sizes)
    model.eval()
    short, long = "MKTAYIAKQRQISFVK", "MSDNGPQNQRNAPRITFGGPSDSTGSNQNGERSGARSKQRRPQGLPNNTASWFT"
    alone = collate_sequences([{"x": encoder.encode(short), "id": "a"}])
    pair = collate_sequences([{"x": encoder.encode(s), "id": s} for s in (short, long)])
    with torch.no_grad():
        a = model(alone["x"], alone["mask"])["location"][0]
        b = model(pair["x"], pair["mask"])["location"][0]
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_tiny_run_logs_test_metrics_and_predicts(compose_config, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from deepms.cli import main
    from deepms.training.runner import run

    cfg = compose_config("task=deeploc", "experiment=deeploc_tiny", "run_name=deeploc-tiny")
    result = run(cfg)
    assert math.isfinite(result.metrics["test_acc"])
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("deeploc").experiment_id])
    metrics = logged.data.metrics
    for key in ("test_acc", "test_mcc", "test_mcc_Nucleus", "test_membrane_mcc", "test_hard_acc"):
        assert key in metrics
    assert "test_hard_membrane_acc" not in metrics  # setHARD has no membrane labels
    plots = {a.path for a in client.list_artifacts(logged.info.run_id, "plots")}
    assert plots == {"plots/confusion_test.png", "plots/confusion_hard.png"}

    fasta = tmp_path / "query.fasta"
    fasta.write_text(">p1\nMKTAYIAKQRQISFVKSHFSRQ\n>p2 with a description\nMSDNGPQNQRNAPRITFGGPX\n")
    out = tmp_path / "pred.csv"
    predictor = "deepms.tasks.deeploc.predict.DeepLocPredictor"
    args = ["predict", result.best_checkpoint, "--input", str(fasta), "--output", str(out)]
    assert main([*args, "--predictor", predictor, "--no-progress"]) == 0
    import pandas as pd

    table = pd.read_csv(out)
    assert table["id"].tolist() == ["p1", "p2"] and table["length"].tolist() == [22, 21]
    probabilities = table[[c for c in table.columns if c.startswith("p_") and c != "p_location"]]
    assert np.allclose(probabilities.drop(columns="p_membrane").sum(1), 1.0, atol=1e-5)
    assert set(table["location"]) <= set(LOCATIONS)


@pytest.mark.slow
def test_tiny_run_from_a_users_fasta_by_path(compose_config, mirror: Path, tmp_path: Path) -> None:
    """A lab's own DeepLoc-style FASTA, outside the catalogue, cut train/val/test by similarity."""
    import hashlib
    import itertools

    from deepms.io.fasta import read_fasta, write_fasta
    from deepms.training.runner import run

    records = read_fasta(mirror / "deeploc" / "deeploc1_test_set.fasta", deeploc_label, "protein")
    mine = write_fasta(list(itertools.islice(records, 150)), tmp_path / "my_proteins.fasta")
    cfg = compose_config(
        "task=deeploc",
        "experiment=deeploc_tiny",
        "threads=1",
        f"data.sources=[{{path:'{mine}',format:fasta}}]",
    )
    result = run(cfg)
    lineage = result.lineage
    digest = hashlib.sha256(mine.read_bytes()).hexdigest()
    assert lineage.datasets == {"my_proteins": {str(mine.resolve()): digest}}
    assert lineage.split == "similarity_containment5_0.1_80_10_10_seed42"
    assert sum(lineage.n_samples.values()) == 120  # limit_per_source of the tiny experiment
    assert math.isfinite(result.metrics["test_acc"]) and "test_hard_acc" not in result.metrics


def test_extra_training_data_is_renamed_and_loses_the_test_proteins_homologues(
    tmp_path: Path,
) -> None:
    """An extra training source (``exclude_similar_to: [test]``) loses the proteins similar to
    a test protein, keeps the others, maps its class names (``rename``) and drops classes that
    have no DeepLoc counterpart, each counted."""
    rng = np.random.default_rng(0)
    aa = np.array(list("ACDEFGHIKLMNPQRSTVWY"))

    def protein() -> str:
        return "M" + "".join(rng.choice(aa, 120))

    test_protein, pool = protein(), [protein() for _ in range(12)]
    unrelated = [protein() for _ in range(3)]
    (tmp_path / "pool.fasta").write_text(
        "".join(f">P{i} Nucleus-S\n{s}\n" for i, s in enumerate(pool))
    )
    (tmp_path / "test.fasta").write_text(f">T1 Cytoplasm-S test\n{test_protein}\n")
    (tmp_path / "extra.fasta").write_text(
        f">X0 Secreted-U\n{test_protein[:100]}\n"  # a test protein's fragment: excluded
        + "".join(f">X{i + 1} Secreted-U\n{s}\n" for i, s in enumerate(unrelated[:2]))
        + f">X9 Membrane-U\n{unrelated[2]}\n"  # no DeepLoc class: dropped
    )
    extra = {
        "path": str(tmp_path / "extra.fasta"),
        "format": "fasta",
        "role": "train",
        "rename": {"Secreted": "Extracellular"},
        "exclude_similar_to": ["test"],
    }
    dm = DeepLocDataModule(
        sources=[
            {"path": str(tmp_path / "pool.fasta"), "format": "fasta"},
            {"path": str(tmp_path / "test.fasta"), "format": "fasta", "role": "test"},
            extra,
        ],
        split={"seed": 1},
    )
    dm.setup()
    train = dm.datasets["train"]
    extracellular = LOCATIONS.index("Extracellular")
    kept = [
        s
        for s, y in zip(train.sequences, train.targets["location"], strict=True)
        if y == extracellular
    ]
    assert sorted(kept) == sorted(unrelated[:2])
    lineage = dm.lineage()
    assert list(lineage["excluded_similar"].values()) == [1]
    assert any("'Membrane' not one of the 10 classes" in reason for reason in lineage["dropped"])
