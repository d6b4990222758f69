"""Parametric t-SNE pieces against known values on hand-made sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepms.tasks.msi.tsne import (
    Encoder,
    conditional_affinities,
    joint_affinities,
    perplexity_of,
    squared_distances,
    tsne_kl,
)


def _blobs(n_per: int = 20, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [6, 0, 0, 0], [0, 9, 0, 3]], dtype=float)
    points = np.concatenate([c + rng.normal(size=(n_per, 4)) for c in centres])
    return torch.tensor(points)


@pytest.mark.parametrize("perplexity", [2.0, 5.0, 15.0, 40.0])
def test_affinities_reach_the_requested_perplexity(perplexity: float) -> None:
    p, beta = conditional_affinities(squared_distances(_blobs()), perplexity)
    assert torch.allclose(p.sum(1), torch.ones(60, dtype=p.dtype))
    assert torch.all(p.diagonal() == 0)
    assert torch.all(beta > 0)
    assert torch.allclose(perplexity_of(p), torch.full((60,), perplexity, dtype=p.dtype), rtol=1e-4)


def test_affinities_on_a_line_by_hand() -> None:
    """Five points at 0, 1, 2, 3, 4: each row's perplexity is met and the nearest neighbour of
    an end point gets the most affinity; as perplexity -> n - 1 rows approach uniform."""
    x = torch.arange(5, dtype=torch.float64)[:, None]
    p, _ = conditional_affinities(squared_distances(x), 2.0)
    assert torch.allclose(perplexity_of(p), torch.full((5,), 2.0, dtype=p.dtype), rtol=1e-4)
    assert p[0].argmax() == 1 and p[4].argmax() == 3
    assert p[0, 1] > p[0, 2] > p[0, 3] > p[0, 4]
    wide, _ = conditional_affinities(squared_distances(x), 3.99)
    assert float(wide[2, 0]) == pytest.approx(0.25, abs=0.02)


def test_perplexity_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="perplexity"):
        conditional_affinities(squared_distances(_blobs(2)), 6.0)


def test_joint_affinities_symmetric_and_normalised() -> None:
    p = joint_affinities(_blobs(), 10.0)
    assert torch.allclose(p, p.T)
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-6)


def test_kl_is_zero_when_q_equals_p_and_positive_otherwise() -> None:
    y = torch.randn(12, 2, dtype=torch.float64)
    eye = torch.eye(12, dtype=torch.bool)
    kernel = (1 + squared_distances(y)).reciprocal().masked_fill(eye, 0)
    q = kernel / kernel.sum()
    assert float(tsne_kl(q, y)) == pytest.approx(0.0, abs=1e-9)
    assert float(tsne_kl(joint_affinities(_blobs(4), 3.0), y)) > 0


def test_encoder_learns_the_clusters() -> None:
    """A few hundred steps of the t-SNE loss separate three blobs in 2-D."""
    torch.manual_seed(0)
    x = _blobs(30).float()
    p = joint_affinities(x, 10.0)
    encoder = Encoder(4, [16], 2)
    optimiser = torch.optim.Adam(encoder.parameters(), lr=1e-2)
    first = None
    for _ in range(300):
        loss = tsne_kl(p, encoder(x))
        first = float(loss) if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(loss) < 0.5 * first
    encoder.eval()
    y = encoder(x).detach()
    centroids = torch.stack([y[i * 30 : (i + 1) * 30].mean(0) for i in range(3)])
    within = max(
        float((y[i * 30 : (i + 1) * 30] - centroids[i]).norm(dim=1).mean()) for i in range(3)
    )
    between = min(
        float((centroids[i] - centroids[j]).norm()) for i in range(3) for j in range(i + 1, 3)
    )
    assert between > 2 * within
    assert not math.isnan(within)
