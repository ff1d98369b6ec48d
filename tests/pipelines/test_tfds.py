"""TFDS sources through tfds.testing.mock_data, auto's choice, and the offline failure.

No test touches the network: mock_data makes download_and_prepare a no-op and
the reachability probe is either replaced (``online`` / ``offline`` fixtures)
or runs into the test suite's socket guard.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import pipelines
from pipelines import network
from pipelines.errors import DatasetUnavailableError, UnknownDatasetError

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.fixture
def mock_tfds():
    with tfds.testing.mock_data(num_examples=40):
        yield


def test_mnist_through_tfds(mock_tfds, online, tmp_path):
    splits = pipelines.load("mnist", batch_size=8, data_dir=tmp_path)
    info = splits.info
    assert (info.source, info.input_shape, info.num_classes) == ("mnist", (784,), 10)
    assert info.class_names == [str(i) for i in range(10)]
    assert info.num_examples == {"train": 36, "validation": 4, "test": 40}
    x, y = next(iter(splits.train))
    assert x.shape == (8, 784) and x.dtype.name == "float32" and y.dtype.name == "int32"
    xs = np.concatenate([x for x, _ in splits.test.as_numpy_iterator()])
    assert xs.min() >= 0 and xs.max() <= 1 and xs.max() > 0.5  # uint8 / 255
    assert ("storage.googleapis.com", 443) in online


def test_tfds_prefix_and_class_names(mock_tfds, online, tmp_path):
    splits = pipelines.load("tfds:fashion_mnist", batch_size=None, flatten=False, data_dir=tmp_path)
    assert splits.info.source == "tfds:fashion_mnist"
    assert splits.info.input_shape == (28, 28, 1)
    assert splits.info.class_names[0] == "T-shirt/top" and splits.info.num_classes == 10
    assert ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80) in online


def test_auto_picks_mnist_when_available(mock_tfds, online, tmp_path):
    info = pipelines.load("auto", data_dir=tmp_path).info
    assert (info.name, info.source, info.note) == ("auto", "mnist", None)
    assert info.input_shape == (784,)


def test_auto_falls_back_to_digits_offline(mock_tfds, offline, tmp_path):
    info = pipelines.load("auto", data_dir=tmp_path).info
    assert (info.name, info.source, info.input_shape) == ("auto", "digits", (64,))
    assert offline  # the host was probed
    note = info.note
    assert "\n" not in note and "digits" in note
    for way in ("--dataset mnist", "TFDS_DATA_DIR", "--manual-dir"):
        assert way in note


def test_manual_dir_skips_the_probe(mock_tfds, monkeypatch, tmp_path):
    builder = tfds.builder("mnist", data_dir=tmp_path)
    manual = tmp_path / "manual"
    manual.mkdir()
    for url_info in builder.url_infos.values():
        (manual / url_info.filename).write_bytes(b"")

    def no_probe(*args, **kwargs):
        raise AssertionError("the files are in manual_dir: no need to probe the network")

    monkeypatch.setattr(network, "host_reachable", no_probe)
    assert pipelines.load("mnist", data_dir=tmp_path, manual_dir=manual).info.source == "mnist"


def test_unknown_tfds_name(mock_tfds, tmp_path):
    with pytest.raises(UnknownDatasetError, match="no_such_dataset") as caught:
        pipelines.load("tfds:no_such_dataset", data_dir=tmp_path)
    assert "\n" not in str(caught.value)


def test_offline_failure_is_fast_and_says_what_to_do(tmp_path):
    """No mock: the socket guard of tests/conftest.py makes the host unreachable."""
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as caught:
        pipelines.load("fashion_mnist", data_dir=tmp_path / "tfds")
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert "\n" not in message
    for part in (
        "'fashion_mnist'",
        str(tmp_path / "tfds"),
        "online",
        "TFDS_DATA_DIR",
        "--manual-dir",
    ):
        assert part in message


def test_probe_gives_up_within_its_timeout(monkeypatch):
    def hanging_connect(*args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(network.socket, "create_connection", hanging_connect)
    start = time.monotonic()
    assert network.host_reachable("storage.googleapis.com", timeout=0.5) is False
    assert time.monotonic() - start < 2
