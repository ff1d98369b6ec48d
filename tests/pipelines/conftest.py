"""Fixtures of the pipelines tests: tiny IDX / NPZ files written here, probe switches."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

# 4 classes with unequal counts, so stratification has something to preserve.
CLASS_COUNTS = (80, 60, 40, 20)
TEST_CLASS_COUNTS = (10, 10, 10, 10)
IMAGE_SHAPE = (7, 5)  # not square, so a transposed read would show


def make_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Random uint8 images (each one unique) with labels in class blocks."""
    rng = np.random.default_rng(seed)
    y_train = np.repeat(np.arange(4), CLASS_COUNTS).astype(np.uint8)
    y_test = np.repeat(np.arange(4), TEST_CLASS_COUNTS).astype(np.uint8)
    rng.shuffle(y_train)
    x = rng.integers(0, 256, (len(y_train) + len(y_test), *IMAGE_SHAPE), dtype=np.uint8)
    x[:, 0, :3] = np.stack([np.arange(len(x)) // 256, np.arange(len(x)) % 256, np.ones(len(x))], 1)
    return {
        "x_train": x[: len(y_train)],
        "y_train": y_train,
        "x_test": x[len(y_train) :],
        "y_test": y_test,
    }


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """IDX encoding written independently of pipelines.idx (struct, big-endian)."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else array.dtype).tobytes()


def write_idx_dir(folder: Path, arrays: dict[str, np.ndarray], *, gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, name in names.items():
        data = idx_bytes(arrays[key])
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    return make_arrays()


@pytest.fixture(params=["plain", "gz"])
def idx_dir(request: pytest.FixtureRequest, tmp_path: Path, arrays) -> Path:
    return write_idx_dir(tmp_path / f"idx-{request.param}", arrays, gz=request.param == "gz")


@pytest.fixture
def npz_path(tmp_path: Path, arrays) -> Path:
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every download host unreachable; returns the list of probed hosts."""
    probed: list[tuple[str, int]] = []

    def unreachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
        probed.append((host, port))
        return False

    monkeypatch.setattr("pipelines.network.host_reachable", unreachable)
    return probed


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every download host reachable (with tfds.testing.mock_data, nothing is fetched)."""
    probed: list[tuple[str, int]] = []

    def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
        probed.append((host, port))
        return True

    monkeypatch.setattr("pipelines.network.host_reachable", reachable)
    return probed
