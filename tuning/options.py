"""The settings of a search, once: the tuners, the objectives and their direction,
the defaults, and :class:`SearchOptions` (what ``python -m tuning.search`` checked).

Imports nothing heavy: the command line, the hypermodel and the tuners read it.

Example:
    >>> objective_direction("val_loss"), objective_direction("val_accuracy")
    ('min', 'max')
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kerasdnn.config import TrainConfig

__all__ = ["OBJECTIVES", "TUNERS", "SearchOptions", "objective_direction"]

TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVES = ("val_accuracy", "val_loss", "val_auc")
DEFAULT_MAX_TRIALS = 10
DEFAULT_EPOCHS = TrainConfig.epochs
DEFAULT_MAX_EPOCHS = 10
DEFAULT_FACTOR = 3


def objective_direction(objective: str) -> str:
    """``"min"`` for a loss, ``"max"`` for anything else (an accuracy, an AUC)."""
    return "min" if objective.endswith("loss") else "max"


class SearchOptions(argparse.Namespace):
    """Checked options of a search (see :func:`tuning.search.options_from_args`).

    Example:
        >>> options = SearchOptions(tuner="random", epochs=3, max_epochs=None,
        ...                         dataset="digits", seed=7, early_stopping=None)
        >>> options.train_config(batch_size=32)
        TrainConfig(dataset='digits', epochs=3, batch_size=32, validation_split=0.1, \
scale='auto', seed=7, out=None, early_stopping=None, tensorboard=False, data_dir=None, \
manual_dir=None, data_parallel=False, devices=None)
    """

    tuner: str
    max_trials: int | None
    epochs: int | None
    max_epochs: int | None
    factor: int
    objective: str
    dataset: str
    seed: int
    directory: str
    project_name: str
    overwrite: bool
    executions_per_trial: int
    early_stopping: int | None
    space: str | None
    chief: tuple[str, int] | None
    worker: str | None
    workers: int | None
    prune: str = "none"
    prune_warmup: int | None = None
    prune_min_trials: int | None = None
    tensorboard: bool = False
    chief_timeout: float | None = None

    @property
    def project_dir(self) -> Path:
        return Path(self.directory) / self.project_name

    @property
    def direction(self) -> str:
        return objective_direction(self.objective)

    @property
    def role(self) -> str:
        """``"single"``, ``"chief"`` or ``"worker"``."""
        if self.worker is not None:
            return "worker"
        return "chief" if self.chief is not None else "single"

    def pruner(self) -> Any:
        """The :class:`tuning.pruning.Pruner` of ``--prune`` (``None``: no pruning)."""
        from tuning.pruning import DEFAULT_MIN_TRIALS, DEFAULT_WARMUP, Pruner

        if self.prune in (None, "none"):
            return None
        warmup = DEFAULT_WARMUP if self.prune_warmup is None else self.prune_warmup
        min_trials = DEFAULT_MIN_TRIALS if self.prune_min_trials is None \
            else self.prune_min_trials
        return Pruner(self.prune, self.direction, warmup=warmup, min_trials=min_trials)

    @property
    def train_epochs(self) -> int:
        """Epochs of a full trial (and of the final retraining)."""
        return self.max_epochs if self.tuner == "hyperband" else self.epochs

    def train_config(self, **changes: Any) -> TrainConfig:
        """The run settings a trial (and the retraining of the best one) trains with:
        ``kerasdnn.train``'s, for this search's dataset, seed, epochs and patience;
        ``changes`` set the rest (``batch_size``, ``out``)."""
        return TrainConfig(dataset=self.dataset, seed=self.seed, epochs=self.train_epochs,
                           early_stopping=self.early_stopping, **changes)
