"""How good is an embedding of MSI pixels, measured on the same pixels for every method.

* trustworthiness (Venna & Kaski 2001; scikit-learn's): are the embedding's k nearest neighbours
  neighbours in the spectra too? Continuity: the same with the roles swapped (are the spectra's
  neighbours kept in the embedding?). Both are O(n^2): computed on a seeded subsample.
* spatial coherence of a segmentation: the share of 4-neighbour pixel pairs (both measured) that
  fall in the same segment. Tissue is locally homogeneous, so noisy segment maps score low; it is
  only comparable between methods at the same number of segments k.
* anchors: PCA (parametric, fitted on the training pixels), openTSNE (non-parametric t-SNE,
  refitted on the evaluated pixels) and UMAP (refitted likewise), all to the same dimension.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def trustworthiness(x: np.ndarray, embedding: np.ndarray, k: int) -> float:
    from sklearn.manifold import trustworthiness as sk_trust

    return float(sk_trust(x, embedding, n_neighbors=k))


def continuity(x: np.ndarray, embedding: np.ndarray, k: int) -> float:
    """Trustworthiness with the roles of the spaces swapped (Venna & Kaski's continuity)."""
    from sklearn.manifold import trustworthiness as sk_trust

    return float(sk_trust(embedding, x, n_neighbors=k))


def spatial_coherence(x: np.ndarray, y: np.ndarray, segments: np.ndarray) -> float:
    """Share of 4-neighbour pixel pairs (right and down, each pair once) in the same segment."""
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    width = int(x.max()) + 2
    key = {int(k): int(s) for k, s in zip(y * width + x, segments, strict=True)}
    same = total = 0
    for k, s in key.items():
        for step in (1, width):  # right neighbour, lower neighbour
            other = key.get(k + step)
            if other is not None:
                total += 1
                same += other == s
    return same / total if total else float("nan")


def kmeans(embedding: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=int(k), n_init=4, random_state=seed).fit_predict(embedding)


def subsample(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` items (all of them when n <= limit)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def opentsne(x: np.ndarray, dim: int, perplexity: float, seed: int) -> np.ndarray:
    from openTSNE import TSNE

    method = "fft" if dim <= 2 else "bh"  # openTSNE's FFT interpolation is for 1-2 dimensions
    model = TSNE(
        n_components=dim,
        perplexity=perplexity,
        random_state=seed,
        n_jobs=1,
        negative_gradient_method=method,
        verbose=False,
    )
    return np.asarray(model.fit(x))


def umap(x: np.ndarray, dim: int, seed: int) -> np.ndarray:
    import warnings

    from umap import UMAP

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return UMAP(n_components=dim, random_state=seed, n_jobs=1).fit_transform(x)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def evaluate(
    x_eval: np.ndarray,
    embed_eval: np.ndarray,
    coords: tuple[np.ndarray, np.ndarray],
    x_train: np.ndarray,
    embed_seconds: float,
    *,
    k_neighbors: int = 10,
    n_segments: int = 6,
    max_pixels: int = 5000,
    perplexity: float = 30.0,
    anchors: tuple[str, ...] = ("pca", "opentsne", "umap"),
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Metrics ``<method>_<metric>`` for deepms and each anchor on the evaluated pixels, and
    their embeddings and segments (for pictures). ``embed_seconds``: deepms's time for all of
    ``x_eval`` (pixels/s is n / seconds); an anchor's speed is its fit time on the subsample."""
    dim = embed_eval.shape[1]
    rows = subsample(len(x_eval), max_pixels, seed)
    xs = x_eval[rows]
    px, py = coords[0][rows], coords[1][rows]
    embeddings: dict[str, np.ndarray] = {"deepms": embed_eval[rows]}
    speeds = {"deepms": len(x_eval) / max(embed_seconds, 1e-9)}
    if "pca" in anchors:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=dim, random_state=seed).fit(x_train)
        embeddings["pca"], seconds = timed(lambda: pca.transform(xs))
        speeds["pca"] = len(xs) / max(seconds, 1e-9)
    if "opentsne" in anchors:
        embeddings["opentsne"], seconds = timed(lambda: opentsne(xs, dim, perplexity, seed))
        speeds["opentsne"] = len(xs) / seconds
    if "umap" in anchors:
        embeddings["umap"], seconds = timed(lambda: umap(xs, dim, seed))
        speeds["umap"] = len(xs) / seconds
    metrics: dict[str, float] = {"eval_pixels": float(len(xs)), "k_neighbors": float(k_neighbors)}
    segments: dict[str, np.ndarray] = {}
    for name, emb in embeddings.items():
        segments[name] = kmeans(emb, n_segments, seed)
        metrics[f"{name}_trustworthiness"] = trustworthiness(xs, emb, k_neighbors)
        metrics[f"{name}_continuity"] = continuity(xs, emb, k_neighbors)
        metrics[f"{name}_coherence"] = spatial_coherence(px, py, segments[name])
        metrics[f"{name}_pixels_per_s"] = float(speeds[name])
        log.info("msi eval %s: %s", name, {k: v for k, v in metrics.items() if k.startswith(name)})
    return metrics, {
        "rows": rows,
        **{f"emb_{k}": v for k, v in embeddings.items()},
        **{f"seg_{k}": v for k, v in segments.items()},
    }
