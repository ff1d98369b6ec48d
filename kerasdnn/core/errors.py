"""User-facing errors of kerasdnn.

A :class:`KerasDNNError` is a user mistake or an environment problem that the
user can fix (a bad flag, a corrupt file, an unprepared dataset offline).  Its
message is one line that says what to do; the command-line tools print it to
stderr and exit with status 2, without a traceback.

Example:
    >>> from kerasdnn.core.errors import ConfigError
    >>> str(ConfigError("epochs must be >= 1, got 0"))
    'epochs must be >= 1, got 0'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pipelines.errors import EXIT_USER_ERROR, PipelineError, exit_on_error

__all__ = [
    "EXIT_USER_ERROR",
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


@contextlib.contextmanager
def exit_on_user_error(prog: str) -> Iterator[None]:
    """Turn a user error into ``prog: error: <message>`` on stderr and exit status 2.

    Example:
        >>> with exit_on_user_error("python -m kerasdnn.train"):
        ...     pass
    """
    with exit_on_error(prog, USER_ERRORS):
        yield
