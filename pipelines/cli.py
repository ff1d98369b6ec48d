"""What every command line of the project shares: one-line argument errors and
the backend check.  (``kerasdnn.cli`` re-exports them; ``pipelines`` may not
import ``kerasdnn``.)

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
import os
import sys
from typing import NoReturn

from pipelines.backends import BACKENDS
from pipelines.errors import EXIT_USER_ERROR, InvalidArgumentError

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


def check_backend() -> str:
    """Return the Keras backend that will be used; refuse an unknown ``KERAS_BACKEND``.

    Reads the environment only (Keras is not imported).

    Example:
        >>> os.environ["KERAS_BACKEND"] = "jax"
        >>> check_backend()
        'jax'
    """
    name = os.environ.get("KERAS_BACKEND")
    if name is None:
        return "tensorflow"  # Keras's own default, unless ~/.keras/keras.json says otherwise
    if name not in BACKENDS:
        raise InvalidArgumentError(
            f"unknown KERAS_BACKEND {name!r}; set it to one of {', '.join(BACKENDS)}"
        )
    return name
