"""Trial pruning for the random and Bayesian searches: ``--prune {median,asha}``.

KerasTuner has no pruning (keras-team/keras-tuner#279); Optuna's ``MedianPruner``
and ``SuccessiveHalvingPruner`` and Ray Tune's ASHA are the models.  Each trial
reports its objective to the oracle after every epoch (``oracle.update_trial``
with ``step = epoch``, the call a worker already makes over gRPC), and the oracle
— the chief's, in a distributed search — decides from the reports of every
trial that reached the same epoch, whichever worker ran it:

``median``
    stop the trial when its objective at epoch ``e`` is strictly worse than the
    median of the other trials' objectives at epoch ``e``.
``asha``
    asynchronous successive halving with reduction factor :data:`ASHA_FACTOR`:
    rungs at epochs ``w, w·3, w·9, …`` (``w = warmup + 1``); at a rung the trial
    goes on only when its objective is among the best ``max(1, n // 3)`` of the
    ``n`` trials (itself included) that reached that rung; ties go on.

Both rules never stop a trial in its first ``warmup`` epochs, and decide only when
at least ``min_trials`` other trials reported the same epoch.  A stopped trial
keeps the epochs it trained; KerasTuner records it as ``STOPPED`` (its gRPC
protocol has no other status to spare), ``trials.csv`` as ``PRUNED`` with the
epoch it reached; it is never scored, so never the best, and never run again.

Example:
    >>> rule = Pruner("median", "max", warmup=1, min_trials=2)
    >>> rule.decide(2, 0.5, [0.6, 0.7])  # worse than the median 0.65: stop
    True
    >>> rule.decide(1, 0.1, [0.6, 0.7])  # the warm-up epoch: never
    False
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ASHA_FACTOR", "EPOCH", "PRUNERS", "Pruner", "epoch_values"]

PRUNERS = ("none", "median", "asha")
ASHA_FACTOR = 3  # ASHA's reduction factor (Li et al. 2020; Ray Tune's default)
DEFAULT_WARMUP = 1
DEFAULT_MIN_TRIALS = 3
_REPORTING = ("RUNNING", "COMPLETED", "STOPPED")  # KerasTuner's statuses; STOPPED: pruned
EPOCH = "epoch"  # the metric that marks a per-epoch report (1-based epoch)


@dataclass(frozen=True)
class Pruner:
    """One pruning rule: ``rule`` (``median`` or ``asha``) for an objective maximized
    or minimized (``direction``)."""

    rule: str
    direction: str
    warmup: int = DEFAULT_WARMUP
    min_trials: int = DEFAULT_MIN_TRIALS
    factor: int = ASHA_FACTOR

    def is_rung(self, epoch: int) -> bool:
        """Whether ASHA decides at ``epoch`` (1-based): ``w·factor**k``, ``w = warmup + 1``.

        Example:
            >>> [e for e in range(1, 20) if Pruner("asha", "max", warmup=1).is_rung(e)]
            [2, 6, 18]
        """
        rung = self.warmup + 1
        while rung < epoch:
            rung *= self.factor
        return rung == epoch

    def decide(self, epoch: int, value: float, others: Sequence[float]) -> bool:
        """``True``: stop the trial whose objective at ``epoch`` (1-based) is ``value``,
        given the objectives ``others`` of the other trials at the same epoch."""
        others = [v for v in others if not math.isnan(v)]
        if epoch <= self.warmup or len(others) < self.min_trials:
            return False
        if self.rule == "median":
            return self._worse(value, statistics.median(others))
        if not self.is_rung(epoch):
            return False
        ranked = sorted([*others, value], reverse=self.direction == "max")
        kept = max(1, len(ranked) // self.factor)
        return self._worse(value, ranked[kept - 1])

    def _worse(self, value: float, than: float) -> bool:
        if math.isnan(value):
            return True
        return value < than if self.direction == "max" else value > than


def epoch_values(trials: Any, name: str, epoch: int, skip: str) -> dict[str, float]:
    """The objective ``name`` each KerasTuner trial (but ``skip``) reported at ``epoch``
    (1-based; KerasTuner's step ``epoch - 1``), by trial id; failed trials left out
    (their recorded worst value is no report)."""
    values = {}
    for trial_id, trial in trials.items():
        if trial_id == skip or trial.status not in _REPORTING or not trial.metrics.exists(name):
            continue
        for observation in trial.metrics.get_history(name):
            if observation.step == epoch - 1:
                values[trial_id] = float(observation.mean())
    return values
