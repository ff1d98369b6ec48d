"""``pipelines.feed``: the training stream handed to ``fit``, fetched several batches
at a time on JAX and PyTorch, batch for batch what ``tf.data`` itself yields."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pipelines
import pipelines.builder
import pipelines.feed
from pipelines.feed import for_fit, host_batches
from pipelines.tf_setup import tf


def as_numpy(batches, count=None):
    return [tuple(np.asarray(part) for part in batch)
            for batch in itertools.islice(batches, count)]


def assert_same(got, expected) -> None:
    assert len(got) == len(expected)
    for got_batch, expected_batch in zip(got, expected, strict=True):
        assert len(got_batch) == len(expected_batch)
        for got_part, expected_part in zip(got_batch, expected_batch, strict=True):
            assert got_part.dtype == expected_part.dtype
            np.testing.assert_array_equal(got_part, expected_part)


@pytest.fixture(scope="module")
def stream():
    # 1293 training examples in batches of 64: 21 per epoch, the last one of 13.
    return pipelines.load("digits", batch_size=64, seed=5, repeat=True)


@pytest.mark.parametrize("batches_per_fetch", [1, 4, 21, 50])
def test_host_batches_are_the_streams_batches_across_epochs(stream, batches_per_fetch):
    count = 3 * 21 + 5  # three epochs and the start of a fourth
    expected = as_numpy(stream.train.as_numpy_iterator(), count)
    got = as_numpy(host_batches(stream.stream, batches_per_fetch=batches_per_fetch), count)
    assert_same(got, expected)
    sizes = [len(y) for _, y in got[:21]]
    assert sizes == [64] * 20 + [1293 - 20 * 64]


def test_host_batches_of_a_finite_dataset_end_with_it():
    dataset = tf.data.Dataset.range(7).batch(3).map(lambda x: (x, x * 2, tf.cast(x, tf.float32)))
    got = as_numpy(host_batches(dataset, batches_per_fetch=2))
    assert [batch[0].tolist() for batch in got] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [batch[1].tolist() for batch in got] == [[0, 2, 4], [6, 8, 10], [12]]
    assert got[0][2].dtype == np.float32


def test_host_batches_refuse_a_bad_fetch_size(stream):
    with pytest.raises(ValueError, match="batches_per_fetch"):
        next(host_batches(stream.stream, batches_per_fetch=0))


def test_for_fit_gives_each_backend_its_input(backend, stream):
    fed = for_fit(stream.stream)
    finite = for_fit(stream.validation)
    assert isinstance(finite, tf.data.Dataset)  # Keras re-iterates it each epoch
    if backend == "tensorflow":
        assert isinstance(fed, tf.data.Dataset)  # read in-graph
    else:
        assert not isinstance(fed, tf.data.Dataset)
        assert_same(as_numpy(fed, 25), as_numpy(stream.train.as_numpy_iterator(), 25))


@pytest.mark.parametrize("batches_per_fetch", [1, 4, 50])
def test_padded_blocks_of_any_dataset_are_its_batches(stream, batches_per_fetch):
    count = 2 * 21 + 3
    plain = stream.train.map(lambda x, y: (x, y))  # any endless dataset
    got = as_numpy(host_batches(plain, batches_per_fetch=batches_per_fetch), count)
    assert_same(got, as_numpy(stream.train.as_numpy_iterator(), count))


@pytest.mark.parametrize("skip", [0, 5, 21, 2 * 21, 2 * 21 + 20])
def test_skipping_gives_the_rest_of_the_stream(backend, stream, skip):
    count = 30
    expected = as_numpy(stream.train.skip(skip).as_numpy_iterator(), count)
    for dataset in (stream.stream, stream.train):  # blocks of the stream, or padded ones
        assert_same(as_numpy(host_batches(dataset, batches_per_fetch=4, skip=skip), count),
                    expected)
        assert_same(as_numpy(pipelines.feed.skipped(dataset, skip).as_numpy_iterator(), count),
                    expected)
        fed = for_fit(dataset, skip=skip, device_prefetch=False)
        fed = fed.as_numpy_iterator() if isinstance(fed, tf.data.Dataset) else fed
        assert_same(as_numpy(fed, count), expected)


def test_only_an_endless_load_has_an_epoch_stream(stream):
    info = stream.stream
    assert (info.batch_size, info.batches_per_epoch) == (64, 21)
    assert stream.train is info.dataset
    assert pipelines.load("digits", batch_size=64, seed=5).stream is None
    parts = list(stream)  # unpacks as before: four parts
    assert parts == [stream.train, stream.validation, stream.test, stream.info]
    # A block is that many consecutive batches of one epoch; an epoch's last is shorter.
    first, second, last = itertools.islice(info.blocks(1, 10).as_numpy_iterator(), 3)
    expected = np.concatenate([y for _, y in as_numpy(stream.train.skip(21).as_numpy_iterator(),
                                                      21)])
    assert [len(first[1]), len(second[1]), len(last[1])] == [640, 640, 1293 - 1280]
    np.testing.assert_array_equal(np.concatenate([first[1], second[1], last[1]]), expected)
