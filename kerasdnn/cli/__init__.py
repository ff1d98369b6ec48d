"""What the command-line tools share, and only they: one-line argument errors
(:mod:`pipelines.cli`), checked flag types (:func:`setting`: a flag checked by its
config field's own rule), reading a JSON file a flag names.  The library does
not import this module (what it needs of the process is in :mod:`kerasdnn.core.runtime`).

Nothing here imports Keras or a backend: ``--help`` stays fast.

Example:
    >>> parser = ArgumentParser(prog="kerasdnn.train", description="Train.")
    >>> _ = parser.add_argument("--epochs", type=positive_int, default=10)
    >>> parser.parse_args(["--epochs", "3"]).epochs
    3
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from kerasdnn.core.config import setting_problem
from kerasdnn.core.io import read_json_file
from kerasdnn.core.runtime import check_backend
from pipelines.cli import BACKENDS, ArgumentParser
from pipelines.constants import COUNT_MAX

__all__ = [
    "BACKENDS",
    "ArgumentParser",
    "check_backend",
    "comma_ints",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "read_json_file",
    "setting",
]


def setting(name: str, parse: Callable[[str], Any] = int) -> Callable[[str], Any]:
    """argparse type of the flag for the config field ``name``: ``parse`` reads the
    text (``int``, ``float`` or :func:`comma_ints`), the field's own rule in
    :mod:`kerasdnn.core.config` judges the value, so a flag and a config file refuse
    the same values.

    Example:
        >>> setting("dropout", float)("0.5")
        0.5
        >>> setting("dropout", float)("1")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be a number in [0, 1), got 1
    """

    def convert(text: str) -> Any:
        value = _parse(parse, text, _WHAT.get(parse, "a value"))
        problem = setting_problem(name, value, null=False)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{problem}, got {text}")
        return value

    convert.__name__ = name  # what argparse calls the type in its own messages
    return convert


def positive_int(text: str) -> int:
    """argparse type: an integer 1 .. ``COUNT_MAX``."""
    value = _parse(int, text, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return _at_most_count_max(value, text)


def non_negative_int(text: str) -> int:
    """argparse type: an integer 0 .. ``COUNT_MAX``."""
    value = _parse(int, text, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return _at_most_count_max(value, text)


def _at_most_count_max(value: int, text: str) -> int:
    if value > COUNT_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer <= {COUNT_MAX}, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _parse(float, text, "a number")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _parse(float, text, "a number")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def comma_ints(text: str) -> tuple[int, ...]:
    """argparse type: ``"500,250"`` → ``(500, 250)``; an empty string gives ``()``.
    Only the syntax is checked (with :func:`setting`, the config's rule checks the values).

    Example:
        >>> comma_ints("500,250")
        (500, 250)
    """
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive integers such as 500,250; got {text!r}"
        ) from None
    return values


_WHAT = {int: "an integer", float: "a number"}


def _parse(kind: Callable[[str], Any], text: str, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
