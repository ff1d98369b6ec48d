"""Export a run for serving, preprocessing inside: ``python -m kerasdnn.export``.

The command line over :func:`kerasdnn.serving.artifact.export` (what
``kerasdnn.export(...)`` runs): the artifact takes the run's raw examples and is
checked in its own runtime against the run's predictions.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from kerasdnn.cli import ArgumentParser
from kerasdnn.core.errors import exit_on_user_error
from kerasdnn.core.rundir import EXPORT_NAMES
from kerasdnn.serving.artifact import FORMATS, INPUT_NAME, OUTPUT_NAME, export

__all__ = ["build_parser", "export", "main"]

PROG = "python -m kerasdnn.export"  # in --help and in every error line


# --------------------------------------------------------------------------- CLI


def build_parser() -> ArgumentParser:
    """The ``python -m kerasdnn.export`` argument parser (imports nothing heavy).

    Example:
        >>> build_parser().parse_args(["runs/x", "--format", "onnx"]).format
        'onnx'
    """
    parser = ArgumentParser(
        prog=PROG,
        description=(
            "Export a run's model, with the run's preprocessing inside, for serving: it takes "
            "the data source's raw examples and returns class probabilities. The artifact is "
            "checked in its own runtime against the run's predictions.npz (within 1e-5)."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory")
    parser.add_argument("--format", choices=FORMATS, required=True,
                        help="tf_saved_model (a folder) or onnx (a file)")
    parser.add_argument("--out", metavar="PATH", default=None,
                        help="where to write it (default: " + " or ".join(
                            f"RUN_DIR/{name}" for name in EXPORT_NAMES.values()) + ")")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kerasdnn.export``; returns the exit status."""
    args = build_parser().parse_args(argv)
    with exit_on_user_error(PROG):
        path = export(args.run_dir, format=args.format, out=args.out)
    print(f"wrote {path} ({args.format}; input {INPUT_NAME!r}, output {OUTPUT_NAME!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
