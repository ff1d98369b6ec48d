"""User-facing errors of kerasdnn.

A :class:`KerasDNNError` is a user mistake or an environment problem that the
user can fix (a bad flag, a corrupt file, an unprepared dataset offline).  Its
message is one line that says what to do; the command-line tools print it to
stderr and exit with status 2, without a traceback.

Example:
    >>> from kerasdnn.errors import ConfigError
    >>> str(ConfigError("epochs must be >= 1, got 0"))
    'epochs must be >= 1, got 0'
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from pipelines.errors import PipelineError

__all__ = [
    "USER_ERRORS",
    "ConfigError",
    "KerasDNNError",
    "RunDirectoryError",
    "exit_on_user_error",
]


class KerasDNNError(Exception):
    """Base class of every user-facing kerasdnn error (one-line message)."""


class ConfigError(KerasDNNError, ValueError):
    """A configuration value (flag, config file entry, keyword) is invalid."""


class RunDirectoryError(KerasDNNError):
    """A run directory or saved model cannot be used as asked."""


# Errors that mean "the user can fix this": the CLIs print them without a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (KerasDNNError, PipelineError)

EXIT_USER_ERROR = 2


@contextlib.contextmanager
def exit_on_user_error(prog: str) -> Iterator[None]:
    """Turn a user error into ``prog: error: <message>`` on stderr and exit status 2.

    Example:
        >>> with exit_on_user_error("kerasdnn.train"):
        ...     pass
    """
    try:
        yield
    except USER_ERRORS as error:
        message = " ".join(str(error).split())  # one line, whatever the source
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
