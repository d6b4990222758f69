"""Which masses a set of residues can fill: the knapsack table behind the beam's pruning.

A table of the fewest residues reaching each mass (0.001 Da bins for the last 1000 Da, 0.01 Da
above; built once per residue-mass set and cached) says whether a remaining mass can be filled
within tolerance by the residue slots left. Each residue's rounding error is added to the query
window, so the table may keep a hopeless prefix but never prunes one that can finish.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

FINE_RESOLUTION, COARSE_RESOLUTION = 0.001, 0.01  # Da per knapsack bin
FINE_LIMIT = 1000.0  # Da of remaining mass decided on fine bins
UNREACHABLE = 127  # int8: "no combination of at most 126 residues"
_CACHE: dict[tuple[int, ...], CompletionTable] = {}
_CACHE_SIZE = 8


class MassKnapsack:
    """Fewest residues whose summed mass falls in each mass bin, with O(1) range minima."""

    def __init__(self, masses: Sequence[float], max_mass: float, resolution: float):
        m = np.asarray(masses, dtype=np.float64)
        if m.size == 0 or np.any(m <= 0):
            raise ValueError(f"knapsack residue masses must be positive, got {masses!r}")
        self.resolution = resolution
        self.min_mass = float(m.min())
        self.bins = np.unique(np.rint(m / resolution).astype(np.int64))
        if self.bins[0] < 1:
            raise ValueError(f"residue mass {m.min()} is below the resolution {resolution}")
        # Largest gap between a residue's true mass and its bin, plus float slack.
        self.error = float(np.abs(m - np.rint(m / resolution) * resolution).max()) + 1e-9
        n = math.ceil(max_mass / resolution) + 1
        minc = np.full(n, UNREACHABLE, dtype=np.int8)
        minc[0] = 0
        width = int(self.bins[0])  # a chunk this wide depends only on bins before it
        for start in range(1, n, width):
            end = min(start + width, n)
            for b in self.bins:
                lo = max(start, int(b))
                if lo < end:
                    step = np.minimum(minc[lo - b : end - b], UNREACHABLE - 1) + 1
                    np.minimum(minc[lo:end], step, out=minc[lo:end])
        self.max_mass = (n - 1) * resolution
        self._table = torch.from_numpy(minc[None])  # row j: minimum over 2**j bins from i

    def _ensure_width(self, width: int) -> None:
        """Sparse-table rows so that a window of up to ``width`` bins takes two lookups."""
        while (1 << self._table.shape[0]) <= width:
            old = self._table.numpy()
            rows, half = old.shape[0], 1 << (old.shape[0] - 1)
            table = np.full((rows + 1, old.shape[1]), UNREACHABLE, dtype=np.int8)
            table[:rows] = old
            np.minimum(old[-1, :-half], old[-1, half:], out=table[rows, :-half])
            self._table = torch.from_numpy(table)

    def feasible(
        self, remaining: torch.Tensor, tolerance: torch.Tensor, max_residues: int
    ) -> torch.Tensor:
        """Whether ``remaining`` Da (any shape) can be filled within ``tolerance`` Da by at most
        ``max_residues`` residues (0 residues when |remaining| <= tolerance)."""
        # A completion has at most this many residues: the slots left, and what the mass allows.
        n_max = torch.floor((remaining + tolerance) / self.min_mass).clamp(0, max_residues)
        slack = tolerance + n_max * self.error + 1e-6
        lo = torch.ceil((remaining - slack) / self.resolution).long().clamp_(min=0)
        hi = torch.floor((remaining + slack) / self.resolution).long()
        n = self._table.shape[1]
        if bool((hi >= n).any()):
            raise ValueError(
                f"remaining mass {float(remaining.max()):.3f} Da beyond the knapsack table "
                f"({self.max_mass:.1f} Da)"
            )
        ok = hi >= lo
        width = (hi - lo + 1).clamp_(min=1)
        self._ensure_width(int(width.max()) if width.numel() else 1)
        level = torch.floor(torch.log2(width.double())).long()
        # log2 of an exact power of two can round below it: correct the level by one where so.
        level += ((1 << (level + 1)) <= width).long()
        lo_c, hi_c = lo.clamp(max=n - 1), hi.clamp(min=0)
        right = (hi_c - (1 << level) + 1).clamp(min=0)
        flat = self._table.reshape(-1)
        best = torch.minimum(flat[level * n + lo_c], flat[level * n + right])
        return ok & (best.long() <= max_residues)


class CompletionTable:
    """Fine bins for the last ``FINE_LIMIT`` Da, where a peptide's end is decided; coarse above,
    where residue combinations are dense anyway (int8 tables, ~15 MB for 6 kDa)."""

    def __init__(self, masses: Sequence[float], max_mass: float) -> None:
        self.max_mass = max_mass
        self.fine = MassKnapsack(masses, min(max_mass, FINE_LIMIT), FINE_RESOLUTION)
        self.coarse = (
            MassKnapsack(masses, max_mass, COARSE_RESOLUTION) if max_mass > FINE_LIMIT else None
        )

    def feasible(
        self, remaining: torch.Tensor, tolerance: torch.Tensor, max_residues: int
    ) -> torch.Tensor:
        """See :meth:`MassKnapsack.feasible`; each query goes to the finest table covering it."""
        reach = remaining + tolerance + max_residues * self.fine.error + 2 * FINE_RESOLUTION
        fine = reach < self.fine.max_mass
        if self.coarse is None or bool(fine.all()):
            return self.fine.feasible(remaining, tolerance, max_residues)
        out = torch.zeros_like(fine)
        out[fine] = self.fine.feasible(remaining[fine], tolerance[fine], max_residues)
        out[~fine] = self.coarse.feasible(remaining[~fine], tolerance[~fine], max_residues)
        return out


def completion_table(masses: Sequence[float], max_mass: float) -> CompletionTable:
    """The cached :class:`CompletionTable` of this residue-mass set, covering ``max_mass`` Da."""
    key = tuple(sorted(np.rint(np.asarray(masses, dtype=np.float64) * 1e6).astype(int).tolist()))
    table = _CACHE.get(key)
    if table is None or table.max_mass < max_mass:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        size = 1000.0 * math.ceil((max_mass + 1.0) / 1000.0)  # grow in 1 kDa steps
        table = _CACHE[key] = CompletionTable(masses, size)
    return table
