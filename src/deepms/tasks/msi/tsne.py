"""Parametric t-SNE (van der Maaten 2009; Inglese et al. 2017 for MSI): the t-SNE loss on an MLP.

A non-parametric t-SNE places the points it was given and nothing else; an encoder trained with
the same loss maps any spectrum, so the pixels of a new section are embedded by one forward pass
instead of a refit. Per batch: Gaussian input affinities whose bandwidths are found by binary
search on each point's precision ``beta`` until the row's perplexity is the requested one,
symmetrised; a Student-t kernel on the embedding; KL(P || Q) as the loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """[B, B] squared Euclidean distances (clamped at 0 against round-off)."""
    norms = (x * x).sum(-1)
    return (norms[:, None] + norms[None, :] - 2.0 * (x @ x.T)).clamp_min(0.0)


def conditional_affinities(
    distances: torch.Tensor, perplexity: float, tol: float = 1e-5, max_iter: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows p_{j|i} of a Gaussian kernel whose entropy is log(perplexity), and each row's beta.

    Vectorised bisection over all rows at once (t-SNE's own ``x2p``): beta doubles until the
    entropy falls below the target, then halves the bracket; a row stops moving once its entropy
    is within ``tol`` nats. Distances are shifted by each row's smallest off-diagonal distance,
    which leaves p unchanged and keeps exp() from underflowing for far-apart spectra.
    """
    n = distances.shape[0]
    if not 1.0 <= perplexity < n:
        raise ValueError(f"perplexity {perplexity} must be in [1, {n}) for a batch of {n}")
    d = distances.double().clone()
    eye = torch.eye(n, dtype=torch.bool, device=d.device)
    d = d.masked_fill(eye, float("inf"))
    d = d - d.min(dim=1, keepdim=True).values
    target = math.log(perplexity)
    beta = torch.ones(n, dtype=d.dtype, device=d.device) / d[~eye].view(n, n - 1).mean(1).clamp_min(
        1e-12
    )
    lo = torch.zeros_like(beta)
    hi = torch.full_like(beta, float("inf"))
    for _ in range(max_iter):
        p, entropy = _row_entropy(d, beta)
        diff = entropy - target
        if bool((diff.abs() < tol).all()):
            break
        too_flat = diff > 0  # entropy too high: sharpen (raise beta)
        lo = torch.where(too_flat, beta, lo)
        hi = torch.where(too_flat, hi, beta)
        beta = torch.where(torch.isinf(hi), beta * 2.0, (lo + hi) / 2.0)
    p, _ = _row_entropy(d, beta)
    return p, beta


def _row_entropy(d: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-normalised exp(-beta d) and its Shannon entropy in nats (diagonal d = inf -> p = 0)."""
    logits = -d * beta[:, None]
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    p = log_p.exp()
    entropy = -(p * torch.where(p > 0, log_p, torch.zeros_like(log_p))).sum(1)
    return p, entropy


def perplexity_of(p: torch.Tensor) -> torch.Tensor:
    """2^H of each row of a conditional affinity matrix (exp of the entropy in nats)."""
    logs = torch.where(p > 0, p.log(), torch.zeros_like(p))
    return torch.exp(-(p * logs).sum(1))


def joint_affinities(x: torch.Tensor, perplexity: float) -> torch.Tensor:
    """Symmetric P = (P_cond + P_cond^T) / 2B of a batch, floored at 1e-12 for the log."""
    p, _ = conditional_affinities(squared_distances(x.double()), perplexity)
    joint = (p + p.T) / (2.0 * p.shape[0])
    return joint.clamp_min(1e-12).to(x.dtype)


def tsne_kl(p: torch.Tensor, y: torch.Tensor, dof: float = 1.0) -> torch.Tensor:
    """KL(P || Q) with Q the Student-t kernel (``dof`` degrees of freedom) on embeddings ``y``."""
    n = y.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=y.device)
    kernel = (1.0 + squared_distances(y) / dof).pow(-(dof + 1.0) / 2.0).masked_fill(eye, 0.0)
    q = (kernel / kernel.sum()).clamp_min(1e-12)
    p = p.masked_fill(eye, 0.0)
    return (p * (p.clamp_min(1e-12).log() - q.log())).sum()


class Encoder(nn.Module):
    """MLP spectrum -> embedding (ReLU hidden layers, batch norm, linear output)."""

    def __init__(self, n_features: int, hidden_sizes: Sequence[int], n_components: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden_sizes:
            layers += [nn.Linear(width, int(size)), nn.BatchNorm1d(int(size)), nn.ReLU()]
            width = int(size)
        layers.append(nn.Linear(width, n_components))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
