"""k-mer similarity on hand-made sequences, and splits that never put similar pairs apart."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from deepms.sequences import (
    kmer_matrix,
    max_similarity,
    similar_pairs,
    similarity_clusters,
    similarity_split,
)


def kmers(sequence: str, k: int) -> set[str]:
    return {sequence[i : i + k] for i in range(len(sequence) - k + 1)}


def reference(a: str, b: str, k: int, measure: str) -> float:
    """Brute force, independent of the sparse implementation under test."""
    x, y = kmers(a, k), kmers(b, k)
    shared = len(x & y)
    return shared / len(x | y) if measure == "jaccard" else shared / min(len(x), len(y))


def test_kmer_matrix_counts_distinct_kmers() -> None:
    matrix = kmer_matrix(["AAAA", "ACAC", "AC"], k=2)
    assert matrix.getnnz(axis=1).tolist() == [1, 2, 1]  # {AA}, {AC, CA}, {AC}


def test_hand_made_similarities() -> None:
    # ACDEF: {ACD, CDE, DEF}; CDEFG: {CDE, DEF, EFG} -> shared 2, union 4
    assert max_similarity(["ACDEF"], ["CDEFG"], k=3).tolist() == [0.5]
    assert max_similarity(["ACDEF"], ["CDEFG"], 3, "containment").tolist() == [pytest.approx(2 / 3)]
    # a fragment inside a longer protein: containment 1, Jaccard diluted
    assert max_similarity(["CDEF"], ["ACDEFGHIKL"], 3, "containment").tolist() == [1.0]
    assert max_similarity(["CDEF"], ["ACDEFGHIKL"], 3, "jaccard").tolist() == [0.25]
    assert max_similarity(["MMMM"], ["ACDEF"], k=3).tolist() == [0.0]
    pairs = similar_pairs(["ACDEFG", "WWWWW", "ACDEFH"], threshold=0.5, k=3)
    assert pairs.tolist() == [[0, 2]]  # shared {ACD, CDE, DEF} of 4 each: Jaccard 3/5


def _families(rng: np.random.Generator, n_families: int, members: int) -> list[str]:
    """Random protein families: point mutants of a root, unrelated across families."""
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    sequences = []
    for _ in range(n_families):
        root = rng.choice(letters, size=int(rng.integers(40, 120)))
        for _ in range(members):
            child = root.copy()
            hits = rng.random(len(child)) < 0.1
            child[hits] = rng.choice(letters, size=int(hits.sum()))
            sequences.append("".join(child))
    return sequences


@pytest.mark.parametrize("measure", ["jaccard", "containment"])
def test_split_puts_no_pair_at_or_above_threshold_across_splits(measure: str) -> None:
    sequences = _families(np.random.default_rng(3), n_families=40, members=4)
    threshold, k = 0.2, 3
    split = similarity_split(
        sequences, (0.6, 0.2, 0.2), seed=5, threshold=threshold, k=k, measure=measure
    )
    assert set(split.labels) == {"train", "val", "test"}
    crossing = [
        (i, j)
        for i, j in itertools.combinations(range(len(sequences)), 2)
        if split.labels[i] != split.labels[j]
        and reference(sequences[i], sequences[j], k, measure) >= threshold
    ]
    assert crossing == []
    # families really are linked: the rule is doing work, not splitting singletons
    assert split.summary()["n_clusters"] < len(sequences) / 2


def test_clusters_are_connected_components() -> None:
    # Jaccard of 3-mers: 0~1 4/6, 1~2 3/7, 0~2 2/8 < 0.4: single linkage joins all three
    labels = similarity_clusters(["ACDEFGH", "CDEFGHI", "EFGHIKL", "WWWWWWW"], 0.4, k=3)
    assert labels[0] == labels[1] == labels[2] != labels[3]


def test_real_proteins_split_without_cross_pairs(mirror) -> None:
    from deepms.io.fasta import read_fasta

    path = mirror / "nucleic_binding" / "rbppred_RBP2780.fasta"
    sequences = [r.sequence for r in itertools.islice(read_fasta(path), 400)]
    split = similarity_split(
        sequences, (0.8, 0.1, 0.1), seed=1, threshold=0.1, k=5, measure="containment"
    )
    train = [s for s, part in zip(sequences, split.labels, strict=True) if part == "train"]
    test = [s for s, part in zip(sequences, split.labels, strict=True) if part != "train"]
    best = max_similarity(test, train, k=5, measure="containment")
    assert best.max() < 0.1
    assert split.summary()["largest_cluster"] > 1  # homologues exist and were kept together
