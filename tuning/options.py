"""The settings of a search, once: the tuners, the objectives and their direction,
the defaults, the rules of the search's own flags (beside the run's rules in
:mod:`kerasdnn.core.config`, which a search's dataset, seed and patience also meet), and
:class:`SearchOptions` (what ``python -m tuning.search`` checked).

The seed of a search: the one seed rule (:func:`pipelines.constants.is_seed`,
0 .. 2**32 - 1), except 0, which is refused (:func:`tuning.flags.search_seed`): KerasTuner's
oracle replaces a seed of 0 by a random one, which would make the search
unrepeatable, and any other value standing in for 0 would repeat another seed's search.
Each execution of a trial adds its index to the seed of the weights, so the last
execution's seed must still meet the rule (:func:`check_options`).

Imports nothing heavy: the command line, the hypermodel and the tuners read it.

Example:
    >>> objective_direction("val_loss"), objective_direction("val_accuracy")
    ('min', 'max')
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kerasdnn.core.config import TrainConfig
from kerasdnn.core.errors import ConfigError
from pipelines.constants import SEED_MAX

__all__ = [
    "OBJECTIVES",
    "TUNERS",
    "SearchOptions",
    "check_options",
    "objective_direction",
]

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
        >>> config = options.train_config(batch_size=32)
        >>> config.dataset, config.epochs, config.batch_size, config.seed
        ('digits', 3, 32, 7)
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


# --------------------------------------------------------------------------- the rules










def check_options(options: SearchOptions, default_project: str) -> SearchOptions:
    """Check the combination of flags and fill in the defaults that depend on
    ``--tuner``; ``default_project`` is the project name when none is given.

    Example:
        >>> options = SearchOptions(tuner="random", max_trials=None, epochs=None,
        ...     max_epochs=None, factor=None, dataset="digits", seed=7, early_stopping=None,
        ...     executions_per_trial=1, workers=None, chief=None, worker=None,
        ...     overwrite=False, project_name=None)
        >>> check_options(options, "digits-random").max_trials
        10
    """
    if options.tuner == "hyperband":
        given = [flag for flag, value in (("--max-trials", options.max_trials),
                                          ("--epochs", options.epochs)) if value is not None]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} do not apply to --tuner hyperband: "
                "it sets the trials and their epochs from --max-epochs and --factor"
            )
        options.max_epochs = options.max_epochs or DEFAULT_MAX_EPOCHS
        options.factor = options.factor or DEFAULT_FACTOR
    else:
        given = [flag for flag, value in (("--max-epochs", options.max_epochs),
                                          ("--factor", options.factor)) if value is not None]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} apply to --tuner hyperband only; "
                f"--tuner {options.tuner} uses --max-trials and --epochs"
            )
        options.max_trials = options.max_trials or DEFAULT_MAX_TRIALS
        options.epochs = options.epochs or DEFAULT_EPOCHS
        options.factor = DEFAULT_FACTOR
    _check_pruning(options)
    if options.seed + options.executions_per_trial - 1 > SEED_MAX:
        raise ConfigError(
            f"--seed {options.seed} with --executions-per-trial {options.executions_per_trial} "
            f"gives weight seeds beyond {SEED_MAX} (each execution adds 1); "
            f"give a seed <= {SEED_MAX - options.executions_per_trial + 1}"
        )
    if options.workers is not None and (options.chief is not None or options.worker is not None):
        raise ConfigError("--workers starts its own chief and workers on this host; "
                          "drop --chief and --worker, or drop --workers")
    if options.worker is not None and options.chief is None:
        raise ConfigError("--worker needs --chief HOST:PORT: the chief to take trials from")
    if options.worker is not None and options.overwrite:
        raise ConfigError("--overwrite is for the chief only; start workers without it")
    if options.project_name is None:
        options.project_name = default_project
    elif not options.project_name.strip() or "/" in options.project_name:
        raise ConfigError(f"--project-name must be a folder name, got {options.project_name!r}")
    options.train_config()  # the dataset name, the seed and the patience are checked here
    return options


def _check_pruning(options: SearchOptions) -> None:
    if options.prune == "none":
        given = [flag for flag, value in (("--prune-warmup", options.prune_warmup),
                                          ("--prune-min-trials", options.prune_min_trials))
                 if value is not None]
        if given:
            raise ConfigError(f"{' and '.join(given)} need --prune median or --prune asha")
        return
    if options.tuner == "hyperband":
        raise ConfigError("--prune applies to --tuner random and bayesian; hyperband stops "
                          "trials early by its own brackets: drop --prune")
    if options.executions_per_trial != 1:
        raise ConfigError("--prune compares one training per trial epoch by epoch; "
                          "use --executions-per-trial 1 with it")
