"""Rebuild the report of a saved model, on any backend: ``python -m kerasdnn.evaluate``.

The command line over :func:`kerasdnn.evaluation.saved_run.evaluate` (what
``kerasdnn.evaluate(...)`` runs): a model trained on JAX evaluates on TensorFlow
or PyTorch; the report goes to a new folder, never over the training report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kerasdnn.cli import ArgumentParser, positive_int
from kerasdnn.core.config import TrainConfig
from kerasdnn.core.errors import exit_on_user_error
from kerasdnn.evaluation.saved_run import evaluate

__all__ = ["build_parser", "evaluate", "main"]

PROG = "python -m kerasdnn.evaluate"  # in --help and in every error line


# --------------------------------------------------------------------------- CLI


def build_parser() -> ArgumentParser:
    """The ``python -m kerasdnn.evaluate`` argument parser (imports nothing heavy).

    Example:
        >>> build_parser().parse_args(["runs/digits", "--batch-size", "50"]).batch_size
        50
    """
    parser = ArgumentParser(
        prog=PROG,
        description=(
            "Rebuild the scikit-learn report of a saved model on the test split, on the\n"
            "Keras backend named by KERAS_BACKEND (a model trained on one backend evaluates\n"
            "on any other). Writes report.json, report.md, roc.png, confusion_matrix.png and\n"
            "predictions.npz to a new folder; the training report is never overwritten."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  KERAS_BACKEND=torch python -m kerasdnn.evaluate runs/digits-jax-20250101-120000\n"
            "  python -m kerasdnn.evaluate model.keras --dataset digits --out eval/"
        ),
    )
    parser.add_argument(
        "source", metavar="RUN_DIR_OR_MODEL",
        help="a run directory of `python -m kerasdnn.train`, or a .keras model file",
    )
    parser.add_argument(
        "--dataset", metavar="NAME",
        help="dataset to test on (default: the run's, from its config.json, with the same "
        "seed and validation split; required for a .keras file without a config.json)",
    )
    parser.add_argument(
        "--out", metavar="DIR",
        help="folder for the report (default: <run_dir>/eval-<backend>-<timestamp>)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, metavar="N",
        help=f"prediction batch size (default: the run's, else {TrainConfig.batch_size})",
    )
    parser.add_argument("--quiet", action="store_true",
                        help="print only the output folder (default: off)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kerasdnn.evaluate``; returns the exit status."""
    args = build_parser().parse_args(argv)  # before any heavy import: --help stays fast
    with exit_on_user_error(PROG):
        report = evaluate(args.source, dataset=args.dataset, out=args.out,
                          batch_size=args.batch_size)
    meta = report["metadata"]
    if not args.quiet:
        from kerasdnn.evaluation.reports import format_table

        data = meta["dataset"]
        trained = f" (trained on {meta['trained_on']})" if meta["trained_on"] else ""
        if data.get("note"):
            print(data["note"])
        print(f"model {meta['model']}{trained} · backend {meta['backend']}")
        print(f"dataset {data['source']} · {data['split']} split · "
              f"{data['num_examples']:,} examples")
        print(format_table(report))
    print(f"wrote {meta['out_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
