"""User-facing errors of the data side.

Every error here carries a one-line message that says what to do.  The
command-line tools of kerasdnn print it and exit with status 2.

Example:
    >>> from pipelines.errors import PipelineError, UnknownDatasetError
    >>> issubclass(UnknownDatasetError, PipelineError)
    True
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = [
    "EXIT_USER_ERROR",
    "DataFormatError",
    "DatasetUnavailableError",
    "InvalidArgumentError",
    "InvalidDataError",
    "PipelineError",
    "UnknownDatasetError",
    "exit_on_error",
]

EXIT_USER_ERROR = 2


class PipelineError(Exception):
    """Base class of every user-facing error raised by :mod:`pipelines`."""


class UnknownDatasetError(PipelineError, ValueError):
    """The dataset name is not in the registry (the message lists the known ones)."""


class InvalidArgumentError(PipelineError, ValueError):
    """An argument of :func:`pipelines.load` is out of range (batch size, split fraction...)."""


class DataFormatError(PipelineError):
    """A data file is missing, truncated or not in the expected format (IDX, NPZ)."""


class InvalidDataError(PipelineError, ValueError):
    """The data read fine but cannot be trained on (labels out of range, NaN, empty split)."""


class DatasetUnavailableError(PipelineError):
    """A TFDS dataset is not prepared and cannot be downloaded (offline)."""


@contextlib.contextmanager
def exit_on_error(
    prog: str, errors: tuple[type[BaseException], ...] = (PipelineError,)
) -> Iterator[None]:
    """Turn one of ``errors`` into ``prog: error: <message>`` (one line) on stderr and
    exit status 2, without a traceback: how every command line reports a user error.

    Example:
        >>> with exit_on_error("python -m pipelines"):
        ...     pass
    """
    try:
        yield
    except errors as error:
        message = " ".join(str(error).split())  # one line, whatever the source
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
