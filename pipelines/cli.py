"""What every command line of the project shares: one-line argument errors (and
the backend check of :mod:`pipelines.backends`).  (``kerasdnn.cli`` re-exports
them; ``pipelines`` may not import ``kerasdnn``.)

Nothing here imports NumPy, TensorFlow or Keras: ``--help`` and bad flags answer
at once.

Example:
    >>> parser = ArgumentParser(prog="python -m pipelines")
    >>> _ = parser.add_argument("--batch-size", type=int, default=100)
    >>> parser.parse_args(["--batch-size", "32"]).batch_size
    32
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from pipelines.backends import BACKENDS, check_backend
from pipelines.errors import EXIT_USER_ERROR

__all__ = ["BACKENDS", "ArgumentParser", "check_backend"]


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose errors are one line and exit status 2.

    Defaults are shown in ``--help``.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)
