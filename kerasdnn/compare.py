"""One configuration on every backend, side by side: ``python -m kerasdnn.compare``.

The command line over :func:`kerasdnn.training.crossbackend.compare` (what
``kerasdnn.compare(...)`` runs): every flag of ``python -m kerasdnn.train``
(:mod:`kerasdnn.cli.flags`) plus ``--backends`` and ``--check``.  Exit status 0 done,
1 ``--check`` failed, 2 bad input or no backend finished.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from kerasdnn.cli import ArgumentParser, non_negative_float
from kerasdnn.cli.flags import configs_from_args, training_parser
from kerasdnn.core.errors import EXIT_USER_ERROR, ConfigError, exit_on_user_error
from kerasdnn.core.rundir import COMPARE_MD
from kerasdnn.training.crossbackend import checked_backends, compare
from pipelines.backends import BACKENDS

__all__ = ["build_parser", "compare", "main"]

PROG = "python -m kerasdnn.compare"  # in --help and in every error line
EXIT_CHECK_FAILED = 1


def build_parser() -> ArgumentParser:
    """``python -m kerasdnn.train``'s parser plus ``--backends`` and ``--check``.

    Example:
        >>> args = build_parser().parse_args(["--backends", "jax,torch", "--epochs", "2"])
        >>> args.backends, args.epochs
        (['jax', 'torch'], 2)
    """
    parser = training_parser(
        PROG,
        description=(
            "Train one configuration on each Keras backend (a subprocess each, a run\n"
            "directory each in <out>/<backend>/) and write compare.json, compare.md and\n"
            "compare.png: accuracy, F1, ROC AUC, losses, seconds per epoch, wall time,\n"
            "peak memory, and the largest differences between backends."
        ),
        epilog=(
            "examples:\n"
            "  python -m kerasdnn.compare --dataset digits --epochs 3 --out cmp\n"
            "  python -m kerasdnn.compare --backends jax,torch --check 1e-4 --out cmp\n"
            "exit status: 0 done; 1 --check failed; 2 bad input or no backend finished"
        ),
    )
    group = parser.add_argument_group("comparison")
    group.add_argument("--backends", type=_backend_list, metavar="NAMES",
                       help=f"comma-separated backends (default: {','.join(BACKENDS)})")
    group.add_argument("--check", type=non_negative_float, metavar="TOL",
                       help="exit 1 when a backend does not finish or two backends' test "
                       "probabilities differ by more than TOL (default: off)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kerasdnn.compare``; returns the exit status."""
    args = build_parser().parse_args(argv)
    given = vars(args)
    quiet = given.get("quiet", False)
    with exit_on_user_error(PROG):
        if given.get("resume"):
            raise ConfigError("--resume is not supported: a comparison starts new runs")
        train_values, model_values = configs_from_args(args)
        summary = compare(train_values, model_values, backends=given.get("backends", BACKENDS),
                          check=given.get("check"), quiet=quiet)
    rows = summary["backends"].values()
    if not any(row["status"] == "finished" for row in rows):
        reasons = "; ".join(f"{name}: {row['reason']}" for name, row in summary["backends"].items())
        print(f"{PROG}: error: no backend finished ({reasons})", file=sys.stderr)
        return EXIT_USER_ERROR
    if not quiet:
        print((Path(summary["out_dir"]) / COMPARE_MD).read_text(encoding="utf-8"))
    print(f"wrote {summary['out_dir']}")
    check = summary["check"]
    if check and not check["passed"]:
        from kerasdnn.evaluation.reports.comparison import check_failure

        print(f"{PROG}: check failed: {check_failure(check)}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return 0


def _backend_list(text: str) -> list[str]:
    try:
        return checked_backends([part.strip() for part in text.split(",") if part.strip()])
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


if __name__ == "__main__":
    sys.exit(main())
