"""Search hyperparameters with KerasTuner: ``python -m tuning.search``.

The command line of :func:`tuning.run.search`: a random, Bayesian or Hyperband
search of :class:`tuning.DNNHyperModel` on the same data path as
``kerasdnn.train``, one line per trial, a ranked table of the best trials,
``trials.csv`` and ``search.png`` in ``<directory>/<project-name>``, and the
best configuration retrained on train + validation into
``<directory>/<project-name>/best`` (a normal run directory: model, config,
report and plots).

Rerunning the same command continues the search (completed trials are kept;
``--overwrite`` starts over).  ``--chief HOST:PORT`` serves the search to
workers started with ``--worker ID --chief HOST:PORT`` (KerasTuner's own
distributed mode, :mod:`tuning.chief`); ``--workers N`` starts such a chief and
N workers on this host (:mod:`tuning.workers`).

Flags are parsed and checked before Keras, TensorFlow or KerasTuner is
imported, so ``--help`` and bad flags answer at once.

Example:
    $ python -m tuning.search --tuner random --max-trials 6 --epochs 3 --dataset digits
    $ python -m tuning.search --tuner hyperband --max-epochs 4 --dataset digits
    $ python -m tuning.search --max-trials 8 --epochs 3 --dataset digits --workers 2
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from kerasdnn.cli import ArgumentParser, check_backend, positive_int
from kerasdnn.config import TrainConfig
from kerasdnn.errors import ConfigError, exit_on_user_error
from kerasdnn.rundir import check_writable_dir, path_safe_name
from tuning.chief import CHIEF_TIMEOUT
from tuning.options import (
    DEFAULT_EPOCHS,
    DEFAULT_FACTOR,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MAX_TRIALS,
    OBJECTIVES,
    TUNERS,
    SearchOptions,
)
from tuning.pruning import ASHA_FACTOR, DEFAULT_MIN_TRIALS, DEFAULT_WARMUP, PRUNERS
from tuning.run import check_resume, search
from tuning.space import load_space
from tuning.workers import adopt_launch_settings, run_local_search

__all__ = ["SearchOptions", "build_parser", "main", "options_from_args", "search"]

PROG = "python -m tuning.search"


def build_parser() -> ArgumentParser:
    """The ``python -m tuning.search`` argument parser (imports nothing heavy).

    Example:
        >>> args = build_parser().parse_args(["--tuner", "hyperband", "--max-epochs", "4"])
        >>> args.tuner, args.max_epochs
        ('hyperband', 4)
    """
    parser = ArgumentParser(
        prog=PROG,
        description=(
            "Search the hyperparameters of a kerasdnn dense classifier with KerasTuner,\n"
            "then retrain the best configuration on train + validation.\n"
            "Writes <directory>/<project-name>/{trials.csv,search.png,best/}."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  python -m tuning.search --tuner random --max-trials 6 --epochs 3 --dataset digits\n"
            "  python -m tuning.search --tuner hyperband --max-epochs 4 --dataset digits\n"
            "  python -m tuning.search --space space.json   # narrow the search space\n"
            "distributed (one chief, N workers; same command plus):\n"
            "  python -m tuning.search ... --chief 0.0.0.0:8000\n"
            "  python -m tuning.search ... --chief CHIEF_HOST:8000 --worker tuner1\n"
            "  python -m tuning.search ... --workers 2   # both on this host\n"
            "rerun the same command to continue an interrupted search"
        ),
    )
    search = parser.add_argument_group("search")
    search.add_argument("--tuner", choices=TUNERS, default="random",
                        help="search algorithm (default: random)")
    search.add_argument("--max-trials", type=positive_int,
                        help=f"trials in all, resumed ones included; random and bayesian "
                        f"(default: {DEFAULT_MAX_TRIALS})")
    search.add_argument("--epochs", type=positive_int,
                        help=f"epochs per trial; random and bayesian (default: {DEFAULT_EPOCHS})")
    search.add_argument("--max-epochs", type=positive_int,
                        help=f"epochs of the longest trial; hyperband "
                        f"(default: {DEFAULT_MAX_EPOCHS})")
    search.add_argument("--factor", type=_factor,
                        help=f"reduction factor between brackets; hyperband "
                        f"(default: {DEFAULT_FACTOR})")
    search.add_argument("--objective", choices=OBJECTIVES, default="val_accuracy",
                        help="what the search optimizes: maximized, or minimized for "
                        "val_loss (default: val_accuracy)")
    search.add_argument("--executions-per-trial", type=positive_int, default=1,
                        help="trainings per trial from different initial weights, "
                        "scores averaged (default: 1)")
    search.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE",
                        help="stop a trial after PATIENCE epochs without a better objective "
                        "(default: off)")
    search.add_argument("--prune", choices=PRUNERS, default="none",
                        help="stop hopeless trials early; random and bayesian: median (worse "
                        "than the median of the trials at the same epoch) or asha "
                        f"(asynchronous successive halving, reduction factor {ASHA_FACTOR}) "
                        "(default: none)")
    search.add_argument("--prune-warmup", type=_non_negative_int, metavar="EPOCHS",
                        help=f"epochs no trial is pruned in (default: {DEFAULT_WARMUP})")
    search.add_argument("--prune-min-trials", type=positive_int, metavar="N",
                        help="other trials that must have reached an epoch before a "
                        f"trial is pruned there (default: {DEFAULT_MIN_TRIALS})")
    search.add_argument("--space", metavar="FILE.json",
                        help="narrow the search space: {\"name\": value | [values] | "
                        "{\"min\": …, \"max\": …}} (default: the full space)")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=TrainConfig.dataset,
                      help="dataset name: mnist, fashion_mnist, digits, tfds:NAME, idx:DIR, "
                      "npz:PATH, or auto (default: auto)")
    data.add_argument("--seed", type=_seed, default=TrainConfig.seed,
                      help=f"non-zero seed of the search, the weights, the shuffling and the "
                      f"split (default: {TrainConfig.seed})")
    output = parser.add_argument_group("output")
    output.add_argument("--directory", default="runs/tuning", metavar="DIR",
                        help="where search projects live (default: runs/tuning)")
    output.add_argument("--project-name", metavar="NAME",
                        help="the search's folder in DIR (default: <dataset>-<tuner>)")
    output.add_argument("--tensorboard", action="store_true",
                        help="write each trial's curves and TensorBoard's HParams view to "
                        "<directory>/<project-name>/tensorboard, on every backend "
                        "(default: off)")
    output.add_argument("--overwrite", action="store_true",
                        help="start the search over instead of continuing it")
    distributed = parser.add_argument_group("distributed (KerasTuner chief/worker mode)")
    distributed.add_argument("--chief", type=_address, metavar="HOST:PORT",
                             help="alone: run the chief (the oracle) and serve on HOST:PORT; "
                             "with --worker: the chief to connect to")
    distributed.add_argument("--worker", type=_worker_id, metavar="ID",
                             help="run trials for the chief given by --chief, as tuner ID "
                             "(e.g. tuner1)")
    distributed.add_argument("--chief-timeout", type=_seconds, metavar="SECONDS",
                             help="a worker whose chief has not answered for SECONDS exits "
                             f"with one line (default: {CHIEF_TIMEOUT})")
    distributed.add_argument("--workers", type=positive_int, metavar="N",
                             help="start a chief on 127.0.0.1 and N workers on this host, "
                             "each on its own GPU or its share of the CPU cores")
    return parser


def options_from_args(args: argparse.Namespace) -> SearchOptions:
    """Check the combination of flags and fill in the defaults that depend on ``--tuner``.

    Example:
        >>> options = options_from_args(build_parser().parse_args(["--dataset", "digits"]))
        >>> options.max_trials, options.epochs, options.project_name
        (10, 10, 'digits-random')
    """
    options = SearchOptions(**vars(args))
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
    if options.workers is not None and (options.chief is not None or options.worker is not None):
        raise ConfigError("--workers starts its own chief and workers on this host; "
                          "drop --chief and --worker, or drop --workers")
    if options.worker is not None and options.chief is None:
        raise ConfigError("--worker needs --chief HOST:PORT: the chief to take trials from")
    if options.worker is not None and options.overwrite:
        raise ConfigError("--overwrite is for the chief only; start workers without it")
    if options.project_name is None:
        options.project_name = f"{_slug(options.dataset)}-{options.tuner}"
    elif not options.project_name.strip() or "/" in options.project_name:
        raise ConfigError(f"--project-name must be a folder name, got {options.project_name!r}")
    options.train_config()  # the dataset name, the seed and the patience are checked here
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tuning.search``; returns the exit status."""
    adopt_launch_settings()  # a child of a local search (--workers): its cores, its parent
    parser = build_parser()
    args = parser.parse_args(argv)
    with exit_on_user_error(PROG):
        options = options_from_args(args)
        space = load_space(options.space)
        if options.workers is not None:
            check_backend()  # what the chief checks first, answered here before it starts
            check_writable_dir(options.project_dir, "--directory")
            check_resume(options, space)
            flags = [flag for action in parser._actions for flag in action.option_strings]
            return run_local_search(list(sys.argv[1:] if argv is None else argv),
                                    options.workers, flags)
        search(options, space)
    return 0


# --------------------------------------------------------------------------- helpers


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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}") \
            from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def _slug(text: str) -> str:
    return path_safe_name(Path(text).name if ":" in text else text, "search")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-zero integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError(
            "must be non-zero: KerasTuner replaces seed 0 by a random seed, which would make "
            "the search unrepeatable"
        )
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _factor(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2, got {text}")
    return value


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"must be HOST:PORT, e.g. 127.0.0.1:8000 or 0.0.0.0:8000, got {text!r}"
        )
    return host, int(port)


def _worker_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text) or "chief" in text:
        raise argparse.ArgumentTypeError(
            f"must be a name such as tuner1 (letters, digits, _ . -; not 'chief'), got {text!r}"
        )
    return text


if __name__ == "__main__":
    sys.exit(main())
