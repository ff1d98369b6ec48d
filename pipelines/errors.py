"""User-facing errors of the data side.

Every error here carries a one-line message that says what to do.  The
command-line tools of kerasdnn print it and exit with status 2.

Example:
    >>> from pipelines.errors import PipelineError
    >>> isinstance(PipelineError("x"), Exception)
    True
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every user-facing error raised by :mod:`pipelines`."""
