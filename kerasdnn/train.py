"""Train a dense classifier and write a run directory: ``python -m kerasdnn.train``.

The command line over :func:`kerasdnn.training.run.train`: every flag
(:mod:`kerasdnn.cli.flags`) is a field of :class:`~kerasdnn.core.config.TrainConfig` or
:class:`~kerasdnn.core.config.ModelConfig` (its ``dest``), checked by that field's own
rule.  ``kerasdnn.train(...)`` is :func:`~kerasdnn.training.run.train` itself; ``train``,
``RunResult`` and ``steps_per_execution_for`` are importable from here too.

Example:
    >>> args = build_parser().parse_args(["--lr", "0.1", "--seed", "7"])
    >>> configs_from_args(args)
    ({'seed': 7}, {'learning_rate': 0.1, 'seed': 7})
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from kerasdnn.cli import ArgumentParser
from kerasdnn.cli.flags import configs_from_args, training_parser
from kerasdnn.core.errors import exit_on_user_error
from kerasdnn.training.fitting import steps_per_execution_for
from kerasdnn.training.run import RunResult, train

__all__ = [
    "RunResult",
    "build_parser",
    "configs_from_args",
    "main",
    "steps_per_execution_for",
    "train",
]

PROG = "python -m kerasdnn.train"  # in --help and in every error line


def build_parser() -> ArgumentParser:
    """The ``python -m kerasdnn.train`` argument parser (imports nothing heavy).
    Each flag's ``dest`` is its config field; only the flags given are set.

    Example:
        >>> args = build_parser().parse_args(["--epochs", "3", "--hidden", "64,32"])
        >>> vars(args)
        {'epochs': 3, 'hidden_units': (64, 32)}
    """
    return training_parser(
        PROG,
        description=(
            "Train a dense classifier (default: the classic MNIST network 784-500-250-10)\n"
            "on the Keras backend named by KERAS_BACKEND and write a run directory with the\n"
            "model, its config, the history and a scikit-learn report."
        ),
        epilog=(
            "examples:\n"
            "  KERAS_BACKEND=jax python -m kerasdnn.train\n"
            "  python -m kerasdnn.train --dataset digits --epochs 5 --out runs/digits\n"
            "  python -m kerasdnn.train --out runs/digits --resume\n"
            "  python -m kerasdnn.train --dataset csv:data.csv --target label\n"
            "datasets: `python -m pipelines --list`"
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kerasdnn.train``; returns the exit status."""
    args = build_parser().parse_args(argv)
    with exit_on_user_error(PROG):
        train_values, model_values = configs_from_args(args)
        train(
            train_values,
            model_values,
            resume=getattr(args, "resume", False),
            verbose=0 if getattr(args, "quiet", False) else "auto",
            coordinator=getattr(args, "coordinator", None),
            num_processes=getattr(args, "num_processes", None),
            process_id=getattr(args, "process_id", None),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
