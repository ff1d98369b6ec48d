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
import sys
from collections.abc import Sequence
from pathlib import Path

from kerasdnn.cli import ArgumentParser, check_backend, non_negative_int, positive_int
from kerasdnn.core.config import TrainConfig
from kerasdnn.core.errors import exit_on_user_error
from kerasdnn.core.rundir import check_writable_dir, path_safe_name
from tuning.chief import CHIEF_TIMEOUT
from tuning.flags import chief_address, reduction_factor, search_seed, seconds, worker_id
from tuning.options import (
    DEFAULT_EPOCHS,
    DEFAULT_FACTOR,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MAX_TRIALS,
    OBJECTIVES,
    TUNERS,
    SearchOptions,
    check_options,
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
    search.add_argument("--factor", type=reduction_factor,
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
    search.add_argument("--prune-warmup", type=non_negative_int, metavar="EPOCHS",
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
    data.add_argument("--seed", type=search_seed, default=TrainConfig.seed,
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
    distributed.add_argument("--chief", type=chief_address, metavar="HOST:PORT",
                             help="alone: run the chief (the oracle) and serve on HOST:PORT; "
                             "with --worker: the chief to connect to")
    distributed.add_argument("--worker", type=worker_id, metavar="ID",
                             help="run trials for the chief given by --chief, as tuner ID "
                             "(e.g. tuner1)")
    distributed.add_argument("--chief-timeout", type=seconds, metavar="SECONDS",
                             help="a worker whose chief has not answered for SECONDS exits "
                             f"with one line (default: {CHIEF_TIMEOUT})")
    distributed.add_argument("--workers", type=positive_int, metavar="N",
                             help="start a chief on 127.0.0.1 and N workers on this host, "
                             "each on its own GPU or its share of the CPU cores")
    return parser


def options_from_args(args: argparse.Namespace) -> SearchOptions:
    """The checked options of parsed flags (the rules: :func:`tuning.options.check_options`).

    Example:
        >>> options = options_from_args(build_parser().parse_args(["--dataset", "digits"]))
        >>> options.max_trials, options.epochs, options.project_name
        (10, 10, 'digits-random')
    """
    options = SearchOptions(**vars(args))
    return check_options(options, f"{_slug(options.dataset)}-{options.tuner}")


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




def _slug(text: str) -> str:
    return path_safe_name(Path(text).name if ":" in text else text, "search")


if __name__ == "__main__":
    sys.exit(main())
