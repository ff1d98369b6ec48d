"""``python -m pipelines``: list the data sources, or load one and describe it.

Example:
    $ python -m pipelines --list
    $ python -m pipelines digits --batch-size 100
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pipelines.cli import ArgumentParser, check_backend
from pipelines.constants import BATCH_SIZE, SEED, VALIDATION_SPLIT
from pipelines.errors import exit_on_error

PROG = "python -m pipelines"


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default=None, help="a source (see --list)")
    parser.add_argument("--list", action="store_true", help="list the sources and exit")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--validation-split", type=float, default=VALIDATION_SPLIT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scale", default="unit", choices=("unit", "standardize"))
    parser.add_argument("--data-dir", default=None, help="TFDS data dir")
    parser.add_argument("--manual-dir", default=None, help="original archive files for TFDS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 on a user error).

    Example:
        >>> main(["--list"])  # doctest: +ELLIPSIS
        auto ...
        0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        from pipelines.sources import describe

        rows = describe()
        width = max(len(name) for name, _ in rows)
        for name, description in rows:
            print(f"{name:<{width}}  {description}")
        return 0
    with exit_on_error(PROG):
        check_backend()  # TensorFlow asks Keras which backend runs, to keep off the GPU
        from pipelines.builder import load

        info = load(
            args.name,
            batch_size=args.batch_size,
            validation_split=args.validation_split,
            seed=args.seed,
            scale=args.scale,
            data_dir=args.data_dir,
            manual_dir=args.manual_dir,
        ).info
    if info.note:
        print(f"note: {info.note}")
    for key, value in info.to_dict().items():
        if key != "note":
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
