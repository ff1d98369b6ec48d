"""Shared test set-up: quiet TensorFlow, headless matplotlib, no network."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest

import pipelines  # noqa: F401  (sets TensorFlow's log level, in one place)

DATA_DIR = Path(__file__).parent / "data"
REPO_ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="session")
def backend() -> str:
    """The Keras backend these tests run on (set by tox through KERAS_BACKEND)."""
    import keras

    return keras.backend.backend()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: tiny fixtures and goldens."""
    return DATA_DIR
