"""De novo sequencing metrics with Casanovo's definitions (Yilmaz et al. 2022, ``evaluate.py``).

* A predicted residue **matches** when a walk over both peptides pairs it with a true residue
  whose cumulative mass (prefix, or suffix in the backward walk) agrees within ``cum_mass_tol``
  (0.5 Da) and whose own mass agrees within ``ind_mass_tol`` (0.1 Da); both bounds are strict
  (``<``), as in Casanovo. The walk runs forward from the N-terminus; where that leaves residues
  unmatched, a second walk runs backward from the C-terminus over the rest, so a prefix error does
  not hide a correct suffix. Matching is by mass, so K/Q (0.036 Da) match, as in Casanovo.
* I/L: with ``equate_il=True`` (default) I and L are one residue (the vocabulary has only L);
  with ``equate_il=False`` an I paired with an L does not match, even though their masses agree.
* Amino-acid precision = matched / predicted residues; recall = matched / true residues.
* A **peptide matches** when it has the true length and every residue matches.
  Peptide recall divides by all spectra; peptide precision by the sequenced ones.
* Precision-coverage: spectra ranked by peptide score, best first; an unsequenced spectrum has
  score ``-inf`` and counts as wrong, so the curve ends at (1, peptide recall).

Deviation from Casanovo, stated: matches are indexed by the *predicted* residue (Casanovo indexes
``max(i_true, i_pred)``) and the backward walk can only add matches, never undo a forward one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from deepms.errors import InvalidResidueError

CUM_MASS_TOL = 0.5
IND_MASS_TOL = 0.1


def _il(token: str) -> str:
    """Token with a leading I written as L (keeps any modification suffix)."""
    return "L" + token[1:] if token.startswith("I") else token


def _masses(
    tokens: Sequence[str], aa_masses: Mapping[str, float], equate_il: bool
) -> tuple[list[str], list[float]]:
    keys = [_il(t) if equate_il else t for t in tokens]
    out = []
    for token, key in zip(tokens, keys, strict=True):
        mass = aa_masses.get(key)
        if mass is None and key.startswith("I"):  # I has L's composition
            mass = aa_masses.get(_il(key))
        if mass is None:
            raise InvalidResidueError(
                f"residue token {token!r} has no mass in aa_masses "
                f"(known: {', '.join(sorted(aa_masses))})"
            )
        out.append(float(mass))
    return keys, out


def _walk(
    pred_m: list[float],
    true_m: list[float],
    same: list[list[bool]] | None,
    pred_idx: range,
    true_idx: range,
    cum_tol: float,
    ind_tol: float,
    matched: np.ndarray,
) -> tuple[int, int]:
    """Pair residues along ``pred_idx``/``true_idx`` by cumulative mass; mark matches.

    Returns how many (pred, true) residues the leading run of consecutive matches covers.
    """
    ip = it = 0
    cum_p = cum_t = 0.0
    run, run_open = (0, 0), True
    while ip < len(pred_idx) and it < len(true_idx):
        p, t = pred_idx[ip], true_idx[it]
        next_p, next_t = cum_p + pred_m[p], cum_t + true_m[t]
        if abs(next_p - next_t) < cum_tol:
            ok = abs(pred_m[p] - true_m[t]) < ind_tol and (same is None or same[p][t])
            matched[p] |= ok
            ip, it, cum_p, cum_t = ip + 1, it + 1, next_p, next_t
            if ok and run_open:
                run = (ip, it)
            else:
                run_open = False
        elif next_t > next_p:
            ip, cum_p, run_open = ip + 1, next_p, False
        else:
            it, cum_t, run_open = it + 1, next_t, False
    return run


def aa_match(
    pred: Sequence[str],
    true: Sequence[str],
    aa_masses: Mapping[str, float],
    *,
    cum_mass_tol: float = CUM_MASS_TOL,
    ind_mass_tol: float = IND_MASS_TOL,
    equate_il: bool = True,
) -> tuple[np.ndarray, bool]:
    """Per predicted residue whether it matches the true peptide, and whether the peptide does.

    Residues are token strings ("A", "C[UNIMOD:4]"); a plain string is read one letter a token.
    """
    _, pred_m = _masses(pred, aa_masses, equate_il)
    _, true_m = _masses(true, aa_masses, equate_il)
    same = None
    if not equate_il:
        il = {"I", "L"}
        same = [[not (a[:1] in il and b[:1] in il and a[:1] != b[:1]) for b in true] for a in pred]
    matched = np.zeros(len(pred), dtype=bool)
    n_p, n_t = _walk(
        pred_m,
        true_m,
        same,
        range(len(pred)),
        range(len(true)),
        cum_mass_tol,
        ind_mass_tol,
        matched,
    )
    if not (n_p == len(pred) and n_t == len(true)):
        _walk(
            pred_m,
            true_m,
            same,
            range(len(pred) - 1, n_p - 1, -1),
            range(len(true) - 1, n_t - 1, -1),
            cum_mass_tol,
            ind_mass_tol,
            matched,
        )
    peptide = len(pred) == len(true) and len(pred) > 0 and bool(matched.all())
    return matched, peptide


@dataclass
class BatchMatch:
    """Residue counts and per-spectrum peptide matches of one batch."""

    n_aa_match: int
    n_aa_pred: int
    n_aa_true: int
    peptide_match: np.ndarray  # bool per spectrum


def aa_match_batch(
    preds: Sequence[Sequence[str] | None],
    trues: Sequence[Sequence[str]],
    aa_masses: Mapping[str, float],
    **tols: float | bool,
) -> BatchMatch:
    """Counts over a batch; ``None`` or empty pred = unsequenced (0 residues, not matched)."""
    if len(preds) != len(trues):
        raise ValueError(f"{len(preds)} predictions but {len(trues)} true peptides")
    n_match = n_pred = n_true = 0
    peptide = np.zeros(len(preds), dtype=bool)
    for i, (pred, true) in enumerate(zip(preds, trues, strict=True)):
        n_true += len(true)
        if not pred:
            continue
        matched, peptide[i] = aa_match(pred, true, aa_masses, **tols)
        n_match += int(matched.sum())
        n_pred += len(pred)
    return BatchMatch(n_match, n_pred, n_true, peptide)


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def _ranked(scores: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(correct, dtype=bool)
    if s.shape != c.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and correct {c.shape} must be 1-D of equal length")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; give unsequenced spectra -inf")
    order = np.argsort(-s, kind="stable")
    return s[order], c[order]


def precision_coverage(
    scores: Sequence[float], correct: Sequence[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, precision) with spectra ranked by score, best first.

    Point k covers the k best-scored spectra: coverage k / n, precision = correct among them / k.
    Tied scores form one threshold, so only the last point of a tie is kept (order-independent).
    Unsequenced spectra (score -inf, correct False) rank last.
    """
    s, c = _ranked(scores, correct)
    if s.size == 0:
        return np.zeros(0), np.zeros(0)
    k = np.arange(1, s.size + 1)
    precision = np.cumsum(c) / k
    last_of_tie = np.append(s[1:] != s[:-1], True)
    return (k / s.size)[last_of_tie], precision[last_of_tie]


def precision_coverage_auc(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """Trapezoid area under precision-coverage, anchored at (0, precision of the first point).

    The anchor makes an all-correct ranking score exactly 1 (``sklearn.metrics.auc`` convention
    otherwise); NaN for no spectra.
    """
    from sklearn.metrics import auc

    coverage, precision = precision_coverage(scores, correct)
    if coverage.size == 0:
        return float("nan")
    return float(auc(np.r_[0.0, coverage], np.r_[precision[0], precision]))


def denovo_metrics(
    preds: Sequence[Sequence[str] | None],
    trues: Sequence[Sequence[str]],
    scores: Sequence[float],
    aa_masses: Mapping[str, float],
    **tols: float | bool,
) -> dict[str, float]:
    """aa_precision, aa_recall, peptide_recall, peptide_precision, pc_auc, coverage.

    Scores of unsequenced spectra are ignored (set to -inf).
    """
    batch = aa_match_batch(preds, trues, aa_masses, **tols)
    return _summary(batch, [bool(p) for p in preds], scores)


def _summary(
    batch: BatchMatch, sequenced: Sequence[bool], scores: Sequence[float]
) -> dict[str, float]:
    seq = np.asarray(sequenced, dtype=bool)
    raw = np.asarray(scores, dtype=np.float64)
    if raw.shape != seq.shape:
        raise ValueError(f"{raw.size} scores for {seq.size} spectra")
    s = np.where(seq, raw, -np.inf)
    n, n_seq, n_pep = seq.size, int(seq.sum()), int(batch.peptide_match.sum())
    return {
        "aa_precision": _ratio(batch.n_aa_match, batch.n_aa_pred),
        "aa_recall": _ratio(batch.n_aa_match, batch.n_aa_true),
        "peptide_recall": _ratio(n_pep, n),
        "peptide_precision": _ratio(n_pep, n_seq),
        "pc_auc": precision_coverage_auc(s, batch.peptide_match),
        "coverage": _ratio(n_seq, n),
    }


class DeNovoMetricAccumulator:
    """Accumulates counts and per-spectrum (score, sequenced, correct) over batches.

    State is plain Python lists/ints (``state()`` / ``merge()``), so ranks can all_gather it.
    """

    def __init__(self, aa_masses: Mapping[str, float], **tols: float | bool) -> None:
        self.aa_masses = dict(aa_masses)
        self.tols = tols
        self.reset()

    def reset(self) -> None:
        self.n_aa_match = self.n_aa_pred = self.n_aa_true = 0
        self.scores: list[float] = []
        self.sequenced: list[bool] = []
        self.correct: list[bool] = []

    def update(
        self,
        preds: Sequence[Sequence[str] | None],
        trues: Sequence[Sequence[str]],
        scores: Sequence[float],
    ) -> None:
        if len(scores) != len(preds):
            raise ValueError(f"{len(scores)} scores for {len(preds)} predictions")
        batch = aa_match_batch(preds, trues, self.aa_masses, **self.tols)
        self.n_aa_match += batch.n_aa_match
        self.n_aa_pred += batch.n_aa_pred
        self.n_aa_true += batch.n_aa_true
        self.sequenced.extend(bool(p) for p in preds)
        self.scores.extend(float(s) if p else -np.inf for s, p in zip(scores, preds, strict=True))
        self.correct.extend(bool(x) for x in batch.peptide_match)

    def state(self) -> dict[str, list]:
        """Gather-friendly state: counts as one-element lists, per-spectrum lists."""
        return {
            "counts": [self.n_aa_match, self.n_aa_pred, self.n_aa_true],
            "scores": list(self.scores),
            "sequenced": list(self.sequenced),
            "correct": list(self.correct),
        }

    def merge(self, state: Mapping[str, list]) -> None:
        """Add another accumulator's ``state()`` (e.g. from another rank)."""
        m, p, t = state["counts"]
        self.n_aa_match += m
        self.n_aa_pred += p
        self.n_aa_true += t
        self.scores.extend(state["scores"])
        self.sequenced.extend(state["sequenced"])
        self.correct.extend(state["correct"])

    def compute(self) -> dict[str, float]:
        batch = BatchMatch(
            self.n_aa_match, self.n_aa_pred, self.n_aa_true, np.asarray(self.correct, dtype=bool)
        )
        return _summary(batch, self.sequenced, self.scores)
