"""The IDX reader against files written here with struct (plain and gzipped)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from pipelines.errors import DataFormatError
from pipelines.idx import find_idx_file, read_idx
from tests.pipelines.conftest import idx_bytes

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env


@pytest.mark.parametrize("gz", [False, True])
def test_reads_images_and_labels(tmp_path, arrays, gz):
    for key in ("x_train", "y_train"):
        data = idx_bytes(arrays[key])
        path = tmp_path / (key + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
        got = read_idx(path)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])


def test_reads_big_endian_floats(tmp_path):
    values = np.array([[1.5, -2.0], [3.25, 0.0]])
    path = tmp_path / "f"
    header = bytes([0, 0, 0x0D, 2]) + (2).to_bytes(4, "big") * 2
    path.write_bytes(header + values.astype(">f4").tobytes())
    got = read_idx(path)
    assert got.dtype == np.float32 and got.dtype.byteorder in ("=", "<", "|")
    np.testing.assert_array_equal(got, values)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "truncated"),
        (bytes([0, 0, 8]), "truncated"),
        (bytes([0, 0, 8, 3, 0, 0]), "truncated"),
        (bytes([0, 1, 8, 1]) + (2).to_bytes(4, "big") + b"ab", "magic"),
        (bytes([0, 0, 0x42, 1]) + (2).to_bytes(4, "big") + b"ab", "magic"),
        (bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + b"ab", "truncated"),
        (bytes([0, 0, 8, 1]) + (1).to_bytes(4, "big") + b"ab", "longer"),
    ],
)
def test_bad_files_raise_one_line(tmp_path, content, words):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=words) as caught:
        read_idx(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_truncated_gzip(tmp_path, arrays):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(arrays["y_train"]))[:-10])
    with pytest.raises(DataFormatError, match="gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        read_idx(tmp_path / "nope")
    with pytest.raises(DataFormatError, match="train-images-idx3-ubyte"):
        find_idx_file(tmp_path, "train-images", "idx3")
