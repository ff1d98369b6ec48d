"""Helpers of the tuning tests: tiny search spaces and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

# One hidden layer of 16 units, Adam: every trial trains in a second or two on digits.
TINY = {
    "num_layers": 1,
    "units": 16,
    "activation": "relu",
    "dropout": 0.0,
    "l2": 0.0,
    "optimizer": "adam",
    "learning_rate": 0.01,
}
SEED = 3


def write_space(folder: Path, **changes: Any) -> Path:
    """A space file: :data:`TINY` with ``changes``."""
    path = folder / "space.json"
    path.write_text(json.dumps({**TINY, **changes}), encoding="utf-8")
    return path


def search_args(directory: Path, space: Path, *extra: str) -> list[str]:
    """Flags of a tiny random search on digits, one epoch per trial."""
    return [
        "--dataset", "digits", "--epochs", "1", "--seed", str(SEED),
        "--directory", str(directory), "--project-name", "p", "--space", str(space), *extra,
    ]


def run_search(argv: list[str]) -> str:
    """``python -m tuning.search ARGV`` in this process; its stdout (fails on an error)."""
    from tuning.search import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    assert status == 0, out.getvalue()
    return out.getvalue()


def user_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error ``python -m tuning.search ARGV`` exits with (status 2)."""
    from tuning.search import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("python -m tuning.search: error: ")
    return lines[0]


def train_examples(seed: int = SEED) -> int:
    """Training examples of digits with the search's split, counted one by one."""
    import pipelines

    splits = pipelines.load("digits", batch_size=None, seed=seed)
    return sum(1 for _ in splits.train)


def steps(examples: int, batch_size: int) -> int:
    return math.ceil(examples / batch_size)
