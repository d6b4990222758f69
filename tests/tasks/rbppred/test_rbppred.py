"""rbppred: a similarity split of real proteins without leakage, and a tiny tracked run."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd
import pytest

from tests.sequences.test_similarity import reference


def test_real_split_has_no_similar_pair_across_train_and_test(mirror: Path) -> None:
    from deepms.tasks.rbppred.data import RBPPredDataModule

    dm = RBPPredDataModule(mirror=str(mirror), limit_per_source=150, split={"seed": 2})
    dm.setup()
    sizes = dm.lineage()["n_samples"]
    assert sum(sizes.values()) == 300 and sizes["train"] > sizes["test"] > 0
    train, test = dm.datasets["train"].sequences, dm.datasets["test"].sequences
    worst = max(
        reference(a, b, 5, "containment") for a, b in itertools.product(train, test)
    )  # brute force over every train-test pair
    assert worst < 0.1
    assert set(dm.datasets["train"].targets["label"].tolist()) == {0.0, 1.0}
    assert dm.model_kwargs()["positive_fraction"] == pytest.approx(
        dm.datasets["train"].targets["label"].mean()
    )


@pytest.mark.slow
def test_tiny_run_logs_test_metrics_and_predicts(compose_config, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from deepms.tasks.rbppred.predict import RBPPredPredictor
    from deepms.training.runner import run

    cfg = compose_config("task=rbppred", "experiment=rbppred_tiny")
    result = run(cfg)
    for key in ("test_mcc", "test_acc", "test_sensitivity", "test_specificity", "test_auroc"):
        assert math.isfinite(result.metrics[key])
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("rbppred").experiment_id])
    assert logged.data.tags["split"] == "similarity_containment5_0.1_80_10_10_seed42"
    assert "test_mcc" in logged.data.metrics
    predictor = RBPPredPredictor.from_checkpoint(result.best_checkpoint)
    table = predictor.predict(predictor.input_example())
    assert list(table.columns) == ["id", "length", "p_rbp", "is_rbp"] and len(table) == 2
    assert ((table["p_rbp"] >= 0) & (table["p_rbp"] <= 1)).all()
    with pytest.raises(ValueError, match=r"row 0 \(bad\).*\['1'\]"):
        predictor.predict(
            predictor.input_example().assign(sequence=["MK1", "MKV"], id=["bad", "ok"])
        )
    # a FASTA record the alphabet refuses is set aside by name; the others are predicted
    fasta = tmp_path / "proteins.fasta"
    fasta.write_text(">ok1\nMKTAYIAKQRQISFVKS\n>bad\nMK*&^%123EK\n>ok2\nMSDNGPQNQRNAPRITFGG\n")
    out = tmp_path / "p.csv"
    counts = predictor.predict_file(fasta, out, progress=False)
    assert counts["rejected"] == 1
    assert pd.read_csv(out)["id"].tolist() == ["ok1", "ok2"]
    report = Path(f"{out}.rejected.tsv").read_text().splitlines()
    assert report[1].startswith(f"{fasta}\trecord #2 (bad)\t")


def test_model_scores_a_protein_the_same_alone_and_in_a_batch() -> None:
    import torch

    from deepms.sequences import SequenceEncoder
    from deepms.sequences.dataset import collate_sequences
    from deepms.tasks.rbppred.model import RBPPredModel

    encoder = SequenceEncoder("protein", "properties")
    model = RBPPredModel(encoder.to_dict(), channels=(8, 8), dense=8).eval()
    short, long = "MKTAYIAKQRQISFVKS", "MSDNGPQNQRNAPRITFGGPSDSTGSNQNGERSGARSKQRRPQGLPNNTASWFT"
    alone = collate_sequences([{"x": encoder.encode(short), "id": "a"}])
    pair = collate_sequences([{"x": encoder.encode(s), "id": s} for s in (short, long)])
    with torch.no_grad():
        assert torch.allclose(
            model(alone["x"], alone["mask"])[0], model(pair["x"], pair["mask"])[0], atol=1e-6
        )


@pytest.mark.slow
def test_tiny_run_from_labelled_fasta_files_by_path(
    compose_config, mirror: Path, tmp_path: Path
) -> None:
    """A lab's own positives and negatives, outside the catalogue, labelled by ``label:``."""
    import hashlib

    from deepms.io.fasta import read_fasta, write_fasta
    from deepms.training.runner import run

    files = {}
    for label, name in ((1, "rbppred_RBP2780"), (0, "rbppred_nonRBP7093")):
        records = list(read_fasta(mirror / "nucleic_binding" / f"{name}.fasta"))[:100]
        files[label] = write_fasta(records, tmp_path / f"mine_{label}.fasta")
    sources = ",".join(f"{{path:'{path}',format:fasta,label:{y}}}" for y, path in files.items())
    cfg = compose_config(
        "task=rbppred", "experiment=rbppred_tiny", "threads=1", f"data.sources=[{sources}]"
    )
    result = run(cfg)
    lineage = result.lineage
    for path in files.values():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert lineage.datasets[path.stem] == {str(path.resolve()): digest}
    assert sum(lineage.n_samples.values()) == 200
    assert 0 < lineage["n_positive"]["test"] < lineage.n_samples["test"]
    for key in ("test_mcc", "test_acc", "test_auroc"):
        assert math.isfinite(result.metrics[key])
