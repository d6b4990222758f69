"""How much of a study's trial budget is spent, claimed and free.

Spent = COMPLETE + PRUNED + FAIL, except a FAIL whose worker died (heartbeat stale) and that was
re-queued: its retry takes its place, so a killed worker costs no budget. RUNNING trials are
claimed: counting them keeps parallel workers from overshooting the budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RETRY_HISTORY = "retry_history"  # system attr written by optuna's RetryHeartbeatStaleTrialCallback


@dataclass(frozen=True)
class Budget:
    """A snapshot of one study's trials against its budget."""

    n_trials: int
    spent: int
    running: int
    waiting: int
    retried: frozenset[int]

    @property
    def done(self) -> bool:
        return self.spent >= self.n_trials

    @property
    def free(self) -> int:
        """Trials a worker may still claim now (0 while the rest are running elsewhere)."""
        return max(0, self.n_trials - self.spent - self.running)


def retried_numbers(trials: Iterable[Any]) -> frozenset[int]:
    """Numbers of trials that were re-queued after their worker died."""
    numbers: set[int] = set()
    for trial in trials:
        numbers.update(int(n) for n in trial.system_attrs.get(RETRY_HISTORY, []))
    return frozenset(numbers)


def budget_of(trials: list[Any], n_trials: int) -> Budget:
    """Count ``FrozenTrial``s (any objects with ``number``, ``state``, ``system_attrs``)."""
    from optuna.trial import TrialState

    retried = retried_numbers(trials)
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    spent = sum(
        1
        for t in trials
        if t.state in finished or (t.state == TrialState.FAIL and t.number not in retried)
    )
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
    return Budget(n_trials, spent, running, waiting, retried)
