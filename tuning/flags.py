"""The argument types of ``python -m tuning.search``'s own flags (command support,
as :mod:`kerasdnn.cli.flags` is for a run's): each parses one flag's text or refuses it
with the message argparse prints.  The search's rules on settings and their
combinations are the library's, in :mod:`tuning.options`.

Example:
    >>> chief_address("127.0.0.1:8000"), reduction_factor("3")
    (('127.0.0.1', 8000), 3)
"""

from __future__ import annotations

import argparse
import re

from kerasdnn.cli import positive_int, setting

__all__ = ["chief_address", "reduction_factor", "search_seed", "seconds", "worker_id"]


def search_seed(text: str) -> int:
    """argparse type of ``--seed``: the one seed rule, without 0 (see the module's text).

    Example:
        >>> search_seed("7")
        7
        >>> search_seed("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be non-zero: KerasTuner replaces seed 0 by a \
random seed, which would make the search unrepeatable
    """
    value = setting("seed")(text)
    if value == 0:
        raise argparse.ArgumentTypeError(
            "must be non-zero: KerasTuner replaces seed 0 by a random seed, which would make "
            "the search unrepeatable"
        )
    return value


def reduction_factor(text: str) -> int:
    """argparse type of ``--factor``: Hyperband's reduction factor, an integer >= 2."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2, got {text}")
    return value


def chief_address(text: str) -> tuple[str, int]:
    """argparse type of ``--chief``: ``HOST:PORT`` with a port 1 .. 65535.

    Example:
        >>> chief_address("127.0.0.1:8000")
        ('127.0.0.1', 8000)
    """
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"must be HOST:PORT, e.g. 127.0.0.1:8000 or 0.0.0.0:8000, got {text!r}"
        )
    return host, int(port)


def worker_id(text: str) -> str:
    """argparse type of ``--worker``: a tuner id such as ``tuner1``."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text) or "chief" in text:
        raise argparse.ArgumentTypeError(
            f"must be a name such as tuner1 (letters, digits, _ . -; not 'chief'), got {text!r}"
        )
    return text


def seconds(text: str) -> float:
    """argparse type of ``--chief-timeout``: a number of seconds, 0 < value < 10**6."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}") \
            from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value
