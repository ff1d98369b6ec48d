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


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast if a test tries to open a socket to anything but this machine."""
    import socket

    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")
        ):
            raise OSError(f"tests must not touch the network (tried {address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
