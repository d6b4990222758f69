"""deepbind: experiments from the catalogue, shuffled backgrounds, strand symmetry, a tiny run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from deepms.io.fasta import SequenceRecord
from deepms.sequences import DNA, SequenceEncoder, dinucleotide_counts
from deepms.tasks.deepbind.data import experiments, get_experiment, shuffled_negatives


def test_experiments_cover_encode_and_clip() -> None:
    names = set(experiments())
    assert len(names) == 13 and {"encode_GABPA", "encode_MYC", "clip_PUM2"} <= names
    exp = get_experiment("encode_MYC")
    assert exp.train.endswith("_AC.seq.gz") and exp.test.endswith("_B.seq.gz")
    assert exp.shuffle_negatives and not get_experiment("clip_QKI").shuffle_negatives
    with pytest.raises(ValueError, match="known: clip_ELAVL1A"):
        get_experiment("encode_NOPE")


def test_shuffled_negatives_keep_dinucleotides() -> None:
    positives = [SequenceRecord("p1", "ACGTTGCAAGGCTTAACCGGTTTAAACCCGGGACGT", label=1)]
    negatives = shuffled_negatives(positives, per_positive=3, seed=0)
    assert [n.identifier for n in negatives] == ["p1_shuf0", "p1_shuf1", "p1_shuf2"]
    assert all(n.label == 0 for n in negatives)
    for n in negatives:
        assert dinucleotide_counts(n.sequence) == dinucleotide_counts(positives[0].sequence)


def test_dna_score_is_strand_symmetric_and_padding_free() -> None:
    from deepms.sequences.dataset import collate_sequences
    from deepms.tasks.deepbind.model import DeepBindModel

    encoder = SequenceEncoder("dna", "onehot")
    model = DeepBindModel(encoder.to_dict(), motifs=4, motif_length=6, hidden=4).eval()
    forward = "ACGTTGCAAGGCTTAACCGGTTTAAACC"
    batch = collate_sequences(
        [{"x": encoder.encode(s), "id": s} for s in (forward, DNA.reverse_complement(forward))]
    )
    longer = collate_sequences(
        [{"x": encoder.encode(s), "id": s} for s in (forward, "ACGTNNACGT" * 5)]
    )
    alone = collate_sequences([{"x": encoder.encode(forward), "id": "a"}])
    with torch.no_grad():
        scores = model(batch["x"], batch["mask"])
        next_to_longer = model(longer["x"], longer["mask"])[0]
        by_itself = model(alone["x"], alone["mask"])[0]
    assert scores[0].item() == pytest.approx(scores[1].item(), abs=1e-5)
    assert next_to_longer.item() == pytest.approx(by_itself.item(), abs=1e-5)


@pytest.mark.slow
def test_tiny_run_logs_auroc_auprc_and_logos(compose_config, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from deepms.tasks.deepbind.predict import DeepBindPredictor
    from deepms.training.runner import run

    cfg = compose_config("task=deepbind", "experiment=deepbind_tiny")
    result = run(cfg)
    assert 0.0 <= result.metrics["test_auroc"] <= 1.0
    assert math.isfinite(result.metrics["test_auprc"])
    lineage = result.lineage
    assert lineage["experiment"] == "encode_MYC" and lineage["n_samples"]["test"] == 300
    for part in ("train", "val"):  # one shuffled background per peak
        assert lineage["n_samples"][part] == 2 * lineage["n_positive"][part]
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("deepbind").experiment_id])
    assert {"test_auroc", "test_auprc", "val_auroc"} <= set(logged.data.metrics)
    plots = [a.path for a in client.list_artifacts(logged.info.run_id, "plots")]
    assert plots == ["plots/motifs_encode_MYC.png"]

    predictor = DeepBindPredictor.from_checkpoint(result.best_checkpoint)
    fasta = tmp_path / "sites.fa"
    fasta.write_text(">s1\nACGTGACCGGAAGTGCACGTNN\n>s2\nacgtacgtacgtacgt\n")
    out = tmp_path / "scores.csv"
    assert predictor.predict_file(fasta, out, progress=False) == {"inputs": 2, "sequences": 2}
    lines = out.read_text().splitlines()
    assert lines[0] == "id,length,logit,p_bound" and lines[1].startswith("s1,22,")


@pytest.mark.slow
def test_tiny_run_from_seq_tables_by_path(compose_config, mirror: Path, tmp_path: Path) -> None:
    """A lab's own peaks and held-out sites (DeepBind .seq), outside the catalogue."""
    import hashlib

    from deepms.io.fasta import read_seq_table
    from deepms.training.runner import run

    exp = get_experiment("encode_MYC")
    files = {}
    for role, name, keep in (("split", exp.train, 200), ("test", exp.test, 1000)):
        records = list(read_seq_table(mirror / name))[::5][:keep]
        rows = [f"A\t{r.identifier}\t{r.sequence}\t{r.label}" for r in records]
        files[role] = tmp_path / f"my_{role}.seq"
        files[role].write_text("FoldID\tEventID\tseq\tBound\n" + "\n".join(rows) + "\n")
    sources = f"{{path:'{files['split']}',format:deepbind_seq}}"
    sources += f",{{path:'{files['test']}',format:deepbind_seq,role:test}}"
    cfg = compose_config(
        "task=deepbind", "experiment=deepbind_tiny", "threads=1", f"data.sources=[{sources}]"
    )
    result = run(cfg)
    lineage = result.lineage
    for role, path in files.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert lineage.datasets[f"my_{role}"] == {str(path.resolve()): digest}
    assert lineage.split == "sequence_grouped_train90_val10_seed42+given_test"
    assert lineage["experiment"] == "encode_MYC" and lineage.n_samples["test"] == 200
    assert 0.0 <= result.metrics["test_auroc"] <= 1.0 and math.isfinite(
        result.metrics["test_auprc"]
    )
