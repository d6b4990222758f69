"""Alignment-free sequence similarity and similarity-grouped splits (no near-duplicate leakage).

Similarity of two sequences is computed on their *sets* of k-mers (default k = 3 for proteins):

* ``jaccard``: |A & B| / |A | B|;
* ``containment``: |A & B| / min(|A|, |B|), the shared k-mer fraction of the shorter sequence
  (catches a fragment inside a longer homologue, which Jaccard dilutes).

Sequences are linked when their similarity is >= ``threshold`` and split as connected components
(single linkage), so every cross-split pair is strictly below the threshold. Pairs are found by a
blocked sparse product of binary k-mer matrices: exact, no sampling, O(n^2) only in the output.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from deepms.datasets.splits import SPLIT_NAMES, grouped_split

MEASURES = ("jaccard", "containment")


def _kmer_codes(sequence: str, k: int) -> np.ndarray:
    """Distinct k-mers of an upper-case letter sequence as int64 codes (base 27, A = 1)."""
    letters = np.frombuffer(sequence.upper().encode("ascii", "replace"), dtype=np.uint8)
    values = np.where((letters >= 65) & (letters <= 90), letters - 64, 0).astype(np.int64)
    if len(values) < k:
        return np.empty(0, dtype=np.int64)
    codes = np.zeros(len(values) - k + 1, dtype=np.int64)
    for j in range(k):
        codes = codes * 27 + values[j : len(values) - k + 1 + j]
    return np.unique(codes)


def kmer_matrix(sequences: Sequence[str], k: int = 3) -> sparse.csr_matrix:
    """Binary CSR [n, n_distinct_kmers]: row i marks the k-mers sequence i contains."""
    if not 1 <= k <= 13:
        raise ValueError(f"k must be in 1..13 (int64 codes), got {k}")
    per_row = [_kmer_codes(s, k) for s in sequences]
    counts = np.array([len(c) for c in per_row])
    flat = np.concatenate(per_row) if per_row else np.empty(0, dtype=np.int64)
    vocabulary, columns = np.unique(flat, return_inverse=True)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    data = np.ones(len(flat), dtype=np.float32)
    return sparse.csr_matrix((data, columns, indptr), shape=(len(sequences), len(vocabulary)))


def _pair_blocks(
    left: sparse.csr_matrix, right: sparse.csr_matrix, measure: str, block: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; use one of {MEASURES}")
    size_l = np.asarray(left.getnnz(axis=1), dtype=np.float64)
    size_r = np.asarray(right.getnnz(axis=1), dtype=np.float64)
    right_t = right.T.tocsc()
    for start in range(0, left.shape[0], block):
        shared = (left[start : start + block] @ right_t).tocoo()
        rows, cols, inter = shared.row + start, shared.col, shared.data.astype(np.float64)
        if measure == "jaccard":
            denominator = size_l[rows] + size_r[cols] - inter
        else:
            denominator = np.minimum(size_l[rows], size_r[cols])
        yield rows, cols, inter / np.maximum(denominator, 1.0)


def _shared_space(a: Sequence[str], b: Sequence[str], k: int):
    both = kmer_matrix([*a, *b], k)
    return both[: len(a)], both[len(a) :]


def similar_pairs(
    sequences: Sequence[str],
    threshold: float,
    k: int = 3,
    measure: str = "jaccard",
    block: int = 512,
) -> np.ndarray:
    """[m, 2] index pairs i < j with similarity >= ``threshold``."""
    matrix = kmer_matrix(sequences, k)
    found = []
    for rows, cols, sim in _pair_blocks(matrix, matrix, measure, block):
        keep = (sim >= threshold) & (rows < cols)
        found.append(np.stack([rows[keep], cols[keep]], axis=1))
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


def max_similarity(
    queries: Sequence[str],
    references: Sequence[str],
    k: int = 3,
    measure: str = "jaccard",
    block: int = 512,
) -> np.ndarray:
    """float [len(queries)]: each query's highest similarity to any reference (0 if none)."""
    best = np.zeros(len(queries), dtype=np.float64)
    if not len(queries) or not len(references):
        return best
    left, right = _shared_space(queries, references, k)
    for rows, _, sim in _pair_blocks(left, right, measure, block):
        np.maximum.at(best, rows, sim)
    return best


def similarity_clusters(
    sequences: Sequence[str], threshold: float, k: int = 3, measure: str = "jaccard"
) -> np.ndarray:
    """Cluster label per sequence: connected components of the ">= threshold" graph."""
    n = len(sequences)
    pairs = similar_pairs(sequences, threshold, k, measure)
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


@dataclass
class SimilaritySplit:
    """Split labels plus what a reader needs to trust them."""

    labels: np.ndarray  # split name per sequence
    clusters: np.ndarray  # cluster id per sequence
    threshold: float
    k: int
    measure: str

    def summary(self) -> dict[str, object]:
        sizes = np.bincount(self.clusters) if len(self.clusters) else np.zeros(1, int)
        names, counts = np.unique(self.labels, return_counts=True)
        return {
            "rule": f"{self.measure} of {self.k}-mer sets >= {self.threshold} links; "
            "connected components kept in one split",
            "n_clusters": len(sizes),
            "largest_cluster": int(sizes.max()),
            "sizes": {str(n): int(c) for n, c in zip(names, counts, strict=True)},
        }


def similarity_split(
    sequences: Sequence[str],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    threshold: float = 0.3,
    k: int = 3,
    measure: str = "jaccard",
    names: Sequence[str] = SPLIT_NAMES,
) -> SimilaritySplit:
    """Assign whole similarity clusters to splits (as :func:`grouped_split` assigns groups).

    A cluster is keyed by its lexicographically smallest member sequence, so its split depends on
    content, not on file order. Fractions hold in expectation over clusters.
    """
    clusters, keys = cluster_keys(sequences, threshold, k, measure)
    labels = grouped_split(keys, fractions, seed=seed, names=names)
    return SimilaritySplit(labels, clusters, threshold, k, measure)


def cluster_keys(
    sequences: Sequence[str], threshold: float, k: int = 3, measure: str = "jaccard"
) -> tuple[np.ndarray, list[str]]:
    """Cluster id per sequence and its key, the cluster's lexicographically smallest member: a
    split group that depends on content, not on file order (the groups of a similarity split)."""
    clusters = similarity_clusters(sequences, threshold, k, measure)
    key: dict[int, str] = {}
    for cluster, sequence in zip(clusters.tolist(), sequences, strict=True):
        if cluster not in key or sequence < key[cluster]:
            key[cluster] = sequence
    return clusters, [key[c] for c in clusters.tolist()]
