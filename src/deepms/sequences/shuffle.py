"""Dinucleotide-preserving shuffles: DeepBind's background sequences for ChIP-seq positives.

Altschul & Erickson (1985, Mol Biol Evol 2:526), as an Euler path (Kandel et al. 1996, Discrete
Appl Math 71:171): each sequence is a walk through a multigraph whose vertices are letters and whose
edges are its dinucleotides. A random Eulerian walk that starts at the first letter uses every edge
once, so it has exactly the same dinucleotide counts, first and last letter. It is drawn by

1. picking for every vertex but the last letter a random "last exit" edge, redrawn until these exits
   form a tree pointing at the last letter (then no walk can strand edges), and
2. shuffling each vertex's other exits, appending its last exit, and walking from the first letter.

Any letters work (N included); only letters are shuffled, nothing is encoded.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise

import numpy as np

MAX_TRIES = 10_000


def dinucleotide_counts(sequence: str) -> Counter[str]:
    """Counts of overlapping letter pairs."""
    return Counter(sequence[i : i + 2] for i in range(len(sequence) - 1))


def _exits_reach_last(last_exit: dict[str, str], last: str) -> bool:
    """True when following last exits from every vertex ends at ``last`` (a tree, no cycle)."""
    for start in last_exit:
        seen = {start}
        vertex = start
        while vertex != last:
            vertex = last_exit[vertex]
            if vertex in seen:
                return False
            seen.add(vertex)
    return True


def dinucleotide_shuffle(sequence: str, rng: np.random.Generator | None = None) -> str:
    """A random sequence with exactly the dinucleotide counts (and end letters) of ``sequence``."""
    rng = rng if rng is not None else np.random.default_rng()
    if len(sequence) <= 2:
        return sequence
    exits: dict[str, list[str]] = defaultdict(list)
    for a, b in pairwise(sequence):
        exits[a].append(b)
    first, last = sequence[0], sequence[-1]
    for _ in range(MAX_TRIES):
        choice = {v: int(rng.integers(len(e))) for v, e in exits.items() if v != last}
        last_exit = {v: exits[v][i] for v, i in choice.items()}
        if _exits_reach_last(last_exit, last):
            break
    else:  # pragma: no cover - a valid tree always exists; 10k misses is vanishingly unlikely
        raise RuntimeError(f"no Eulerian arborescence found for {sequence[:30]}...")
    order: dict[str, list[str]] = {}
    for vertex, targets in exits.items():
        rest = list(targets)
        tail = rest.pop(choice[vertex]) if vertex in choice else None
        rest = [rest[i] for i in rng.permutation(len(rest))]
        order[vertex] = [*rest, tail] if tail is not None else rest
    out = [first]
    position = dict.fromkeys(order, 0)
    vertex = first
    for _ in range(len(sequence) - 1):
        nxt = order[vertex][position[vertex]]
        position[vertex] += 1
        out.append(nxt)
        vertex = nxt
    return "".join(out)
