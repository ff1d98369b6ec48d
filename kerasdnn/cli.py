"""What the command-line tools share: one-line argument errors, the backend
check (both from :mod:`pipelines.cli`), quiet absl logs, checked flag types.

Nothing here imports Keras or a backend: ``--help`` stays fast.

Example:
    >>> parser = ArgumentParser(prog="kerasdnn.train", description="Train.")
    >>> _ = parser.add_argument("--epochs", type=positive_int, default=10)
    >>> parser.parse_args(["--epochs", "3"]).epochs
    3
"""

from __future__ import annotations

import argparse

from pipelines.cli import BACKENDS, ArgumentParser, check_backend

__all__ = [
    "BACKENDS",
    "ArgumentParser",
    "check_backend",
    "comma_ints",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "quiet_tensorflow",
]


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


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _parse(int, text, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
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
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"must be positive integers, got {text!r}")
    return values


def _parse(kind: type, text: str, what: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
