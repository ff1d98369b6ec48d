"""``pipelines.resident``: the training examples kept on the device give, batch for
batch, what the ``tf.data`` stream gives (issue 26), from any batch on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pipelines
from pipelines.feed import host_batches
from pipelines.resident import fits_on_device, keeps_examples, resident_batches, stream_bytes
from pipelines.stream import Examples, epoch_stream


@pytest.fixture(scope="module")
def splits():
    # 1293 training examples in batches of 64: 21 per epoch, the last one of 13.
    return pipelines.load("digits", batch_size=64, seed=5, repeat=True)


def _as_numpy(batch, backend):
    if backend in ("jax", "tensorflow"):  # Rows: the step gathers them; here NumPy does
        features, labels = np.asarray(batch.features), np.asarray(batch.labels)
        return features[batch.index], labels[batch.index]
    return tuple(part.cpu().numpy() for part in batch)


@pytest.mark.parametrize("skip", [0, 19, 45])
def test_resident_batches_are_the_stream_s_batches(splits, backend, skip) -> None:
    count = 2 * 21 + 3  # across two epoch ends
    got = itertools.islice(resident_batches(splits.stream, backend, skip=skip), count)
    want = itertools.islice(host_batches(splits.stream, skip=skip), count)
    for batch, (x, y) in zip(got, want, strict=True):
        features, labels = _as_numpy(batch, backend)
        assert features.dtype == x.dtype and labels.dtype == y.dtype
        np.testing.assert_array_equal(features, x)
        np.testing.assert_array_equal(labels, y)


def test_only_stored_unweighted_examples_that_fit_stay_on_the_device(splits) -> None:
    import dataclasses

    from pipelines.tf_setup import tf

    stream = splits.stream
    assert stream_bytes(stream) == 1293 * (64 * 4 + 4)
    assert fits_on_device(stream, "jax", free_bytes=lambda _: 4 * stream_bytes(stream))
    assert not fits_on_device(stream, "jax", free_bytes=lambda _: 4 * stream_bytes(stream) - 1)
    scaled_per_batch = epoch_stream(
        Examples(tf.zeros([4, 2], tf.uint8), tf.zeros([4], tf.int32),
                 lambda x: tf.cast(x, tf.float32)), batch_size=2, seed=0)
    weighted = dataclasses.replace(stream, examples=None, seed=None)  # weighted_stream's way
    for other in (scaled_per_batch, weighted):
        assert not keeps_examples(other)
        assert not fits_on_device(other, "jax", free_bytes=lambda _: 2**40)
        with pytest.raises(ValueError, match="stored examples"):
            resident_batches(other, "jax")
