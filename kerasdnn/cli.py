"""What the command-line tools share: one-line argument errors, the backend
check (both from :mod:`pipelines.cli`), quiet absl logs, checked flag types
(:func:`setting`: a flag checked by its config field's own rule).

Nothing here imports Keras or a backend: ``--help`` stays fast.

Example:
    >>> parser = ArgumentParser(prog="kerasdnn.train", description="Train.")
    >>> _ = parser.add_argument("--epochs", type=positive_int, default=10)
    >>> parser.parse_args(["--epochs", "3"]).epochs
    3
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

from kerasdnn.config import setting_problem
from kerasdnn.io import read_json_file  # re-exported: the commands' file flags
from pipelines.cli import BACKENDS, ArgumentParser, check_backend
from pipelines.constants import COUNT_MAX

__all__ = [
    "BACKENDS",
    "ArgumentParser",
    "check_backend",
    "comma_ints",
    "make_module_callable",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "quiet_tensorflow",
    "read_json_file",
    "setting",
]


def make_module_callable(module_name: str, function: Callable[..., Any]) -> None:
    """Let the command module ``module_name`` be called as ``function``: what
    ``kerasdnn.train(...)``, ``kerasdnn.evaluate(...)``, ``kerasdnn.compare(...)``
    and ``kerasdnn.export(...)`` are, while ``python -m kerasdnn.train`` and
    ``from kerasdnn.train import main`` keep a module of that name.
    ``inspect.signature`` and the module's ``__wrapped__`` give the function's.

    Called once at the end of each such module (outside ``__main__``).
    """

    class CallableModule(types.ModuleType):
        __wrapped__ = function
        __signature__ = inspect.signature(function)

        @functools.wraps(function)
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

    sys.modules[module_name].__class__ = CallableModule


def quiet_tensorflow() -> None:
    """Silence the absl (Python) log lines of TensorFlow, TFDS and KerasTuner.

    TensorFlow's C++ log level and its start-up lines are handled where it is
    imported (:mod:`pipelines.tf_setup`).
    """
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        pass


def setting(name: str, parse: Callable[[str], Any] = int) -> Callable[[str], Any]:
    """argparse type of the flag for the config field ``name``: ``parse`` reads the
    text (``int``, ``float`` or :func:`comma_ints`), the field's own rule in
    :mod:`kerasdnn.config` judges the value, so a flag and a config file refuse
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
