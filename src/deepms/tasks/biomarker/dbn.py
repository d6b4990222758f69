"""A deep belief network in An et al.'s sense (2017): stacked RBMs, pretrained greedily.

The first RBM has Gaussian visible units of unit variance (the inputs are standardised protein
intensities), the ones above Bernoulli visible units (the sigmoid activations of the layer below).
Each layer is pretrained in turn with contrastive divergence (CD-k) on the layer below's hidden
probabilities; the stack then serves as the sigmoid feature extractor a classifier head fine-tunes.
CD is written as the difference of free energies of data and k-step reconstructions, so autograd
gives exactly the CD gradient and any torch optimiser (with weight decay) can apply it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise

import torch
from torch import nn


class RBM(nn.Module):
    """Restricted Boltzmann machine; ``gaussian_visible`` for unit-variance real-valued inputs."""

    def __init__(self, n_visible: int, n_hidden: int, gaussian_visible: bool = False) -> None:
        super().__init__()
        self.gaussian_visible = gaussian_visible
        self.weight = nn.Parameter(torch.randn(n_visible, n_hidden) * 0.01)  # Hinton's guide
        self.visible_bias = nn.Parameter(torch.zeros(n_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))

    def hidden_probability(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v) = sigmoid(c + v W)."""
        return torch.sigmoid(v @ self.weight + self.hidden_bias)

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h]: b + h W^T (Gaussian) or sigmoid(b + h W^T) (Bernoulli)."""
        activation = h @ self.weight.T + self.visible_bias
        return activation if self.gaussian_visible else torch.sigmoid(activation)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) per row: the visible term minus sum_j softplus(c_j + v W_j)."""
        hidden_term = nn.functional.softplus(v @ self.weight + self.hidden_bias).sum(-1)
        if self.gaussian_visible:
            visible_term = 0.5 * ((v - self.visible_bias) ** 2).sum(-1)
        else:
            visible_term = -(v @ self.visible_bias)
        return visible_term - hidden_term

    def gibbs_chain(self, v: torch.Tensor, k: int, generator: torch.Generator | None = None):
        """v after k steps of block Gibbs sampling (sampled hiddens, mean-field visibles: the
        usual noise-free reconstruction of Hinton's practical guide)."""
        for _ in range(k):
            p_h = self.hidden_probability(v)
            h = torch.bernoulli(p_h, generator=generator)
            v = self.visible_mean(h)
        return v

    def contrastive_divergence_loss(
        self, v: torch.Tensor, k: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """mean F(data) - mean F(k-step reconstruction): its gradient is the CD-k update."""
        with torch.no_grad():
            negative = self.gibbs_chain(v, k, generator)
        return self.free_energy(v).mean() - self.free_energy(negative).mean()

    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the deterministic one-step reconstruction."""
        return ((v - self.visible_mean(self.hidden_probability(v))) ** 2).mean()


class DeepBeliefNetwork(nn.Module):
    """Stacked RBMs: Gaussian-Bernoulli at the bottom, Bernoulli-Bernoulli above."""

    def __init__(self, n_inputs: int, hidden_sizes: Sequence[int]) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("a deep belief network needs at least one hidden layer")
        sizes = [int(n_inputs), *(int(s) for s in hidden_sizes)]
        self.rbms = nn.ModuleList(
            RBM(a, b, gaussian_visible=i == 0) for i, (a, b) in enumerate(pairwise(sizes))
        )

    @property
    def out_features(self) -> int:
        return int(self.rbms[-1].hidden_bias.numel())

    def forward(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Hidden probabilities of layer ``upto`` (default: the top), bottom-up."""
        for rbm in self.rbms[: len(self.rbms) if upto is None else upto]:
            x = rbm.hidden_probability(x)
        return x

    def pretrain(
        self,
        batches: Callable[[], Iterable[torch.Tensor]],
        epochs: int,
        cd_steps: int = 1,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        seed: int = 0,
    ) -> list[list[float]]:
        """Greedy layer-wise CD-k; ``batches()`` yields input batches anew each epoch.

        Returns each layer's mean reconstruction error per epoch, measured batch by batch during
        that epoch's updates (so a falling curve shows the layer learning its input)."""
        generator = torch.Generator().manual_seed(seed)
        history: list[list[float]] = []
        for index, rbm in enumerate(self.rbms):
            optimizer = torch.optim.SGD(
                rbm.parameters(), lr=lr, momentum=0.5, weight_decay=weight_decay
            )
            errors: list[float] = []
            for _ in range(int(epochs)):
                total, rows = 0.0, 0
                for x in batches():
                    with torch.no_grad():
                        v = self(x, upto=index)
                    optimizer.zero_grad()
                    rbm.contrastive_divergence_loss(v, cd_steps, generator).backward()
                    optimizer.step()
                    with torch.no_grad():
                        total += float(rbm.reconstruction_error(v)) * len(v)
                    rows += len(v)
                errors.append(total / max(rows, 1))
            history.append(errors)
        return history


def weight_ranking(dbn: DeepBeliefNetwork, head_weight: torch.Tensor) -> torch.Tensor:
    """An et al.'s weight-based score per input: sum over all paths to the output of the product
    of absolute weights, |W1| |W2| ... |w_head| (one matrix product per layer)."""
    score = head_weight.detach().abs().reshape(-1, 1)
    for rbm in reversed(dbn.rbms):
        score = rbm.weight.detach().abs() @ score
    return score.squeeze(-1)


def dbn_feature_scores(
    x: torch.Tensor,
    y: torch.Tensor,
    hidden_sizes: Sequence[int] = (64, 16),
    pretrain_epochs: int = 10,
    finetune_epochs: int = 30,
    lr: float = 1e-2,
    weight_decay: float = 1e-2,
    batch_size: int = 32,
    seed: int = 0,
) -> torch.Tensor:
    """An et al.'s ranking as a feature selector: pretrain a DBN on ``x`` [N, F], fine-tune it with
    a sigmoid head on ``y`` [N] (BCE, Adam), and return :func:`weight_ranking` per feature.

    Preprocessing calls this on a fold's training rows only, so the kept features say nothing
    about the fold's validation or test samples."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y = x.float(), y.float().reshape(-1)
    dbn = DeepBeliefNetwork(x.shape[1], hidden_sizes)
    head = nn.Linear(dbn.out_features, 1)

    def batches() -> Iterable[torch.Tensor]:
        order = torch.randperm(len(x), generator=generator)
        return (order[i : i + batch_size] for i in range(0, len(x), batch_size))

    dbn.pretrain(lambda: (x[rows] for rows in batches()), pretrain_epochs, seed=seed)
    parameters = [*dbn.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    for _ in range(int(finetune_epochs)):
        for rows in batches():
            optimizer.zero_grad()
            logits = head(dbn(x[rows])).squeeze(-1)
            nn.functional.binary_cross_entropy_with_logits(logits, y[rows]).backward()
            optimizer.step()
    return weight_ranking(dbn, head.weight)
