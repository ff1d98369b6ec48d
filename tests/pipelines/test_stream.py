"""``pipelines.stream``: examples stored once, each pass one seeded permutation of
them, epoch ``e`` of an endless stream shuffled by ``(seed, e)`` alone."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.stream import Examples, epoch_stream, one_pass, reshuffled
from pipelines.tf_setup import tf

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env

COUNT = 11


@pytest.fixture(scope="module")
def examples() -> Examples:
    # Feature row i is (10 i, 10 i + 1): a gathered row tells which example it is.
    labels = np.arange(COUNT)
    features = np.stack([10 * labels, 10 * labels + 1], axis=1).astype(np.float32)
    return Examples(tf.constant(features), tf.constant(labels.astype(np.int32)))


def batches(dataset, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(dataset.take(count).as_numpy_iterator())


def assert_pairs_kept(x: np.ndarray, y: np.ndarray) -> None:
    np.testing.assert_array_equal(x[:, 0], 10 * y)
    np.testing.assert_array_equal(x[:, 1], 10 * y + 1)


def test_an_epoch_is_a_permutation_in_batches_the_last_one_shorter(examples):
    stream = epoch_stream(examples, batch_size=4, seed=3)
    assert (stream.batch_size, stream.batches_per_epoch) == (4, 3)
    got = batches(stream.dataset, 3 * 3)
    assert [len(y) for _, y in got] == [4, 4, 3] * 3
    epochs = [np.concatenate([y for _, y in got[e * 3:(e + 1) * 3]]) for e in range(3)]
    for x, y in got:
        assert_pairs_kept(x, y)
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(COUNT))
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch


def test_epoch_e_is_the_same_from_wherever_the_stream_starts(examples):
    stream = epoch_stream(examples, batch_size=4, seed=3)
    whole = [y for _, y in batches(stream.dataset, 3 * 3)]
    from_epoch_2 = [y for _, y in batches(stream.blocks(2, 1), 3)]
    for got, want in zip(from_epoch_2, whole[6:], strict=True):
        np.testing.assert_array_equal(got, want)
    # Blocks of 2 batches: the epoch's batches concatenated, its last block shorter.
    blocks = [y for _, y in batches(stream.blocks(0, 2), 2)]
    np.testing.assert_array_equal(blocks[0], np.concatenate(whole[0:2]))
    np.testing.assert_array_equal(blocks[1], whole[2])
    again = epoch_stream(examples, batch_size=4, seed=3)
    np.testing.assert_array_equal(batches(again.dataset, 1)[0][1], whole[0])
    other = epoch_stream(examples, batch_size=COUNT, seed=4)
    assert not np.array_equal(batches(other.dataset, 1)[0][1], np.concatenate(whole[:3]))


def test_reshuffled_passes_follow_the_iterators_made(examples):
    passes = reshuffled(examples, batch_size=COUNT, seed=3)
    first, second = (next(iter(passes))[1] for _ in range(2))
    stream = epoch_stream(examples, batch_size=COUNT, seed=3)
    epochs = [y for _, y in batches(stream.dataset, 2)]
    # Pass p of a finite dataset is epoch p of the stream: both shuffled by (seed, p).
    np.testing.assert_array_equal(first.numpy(), epochs[0])
    np.testing.assert_array_equal(second.numpy(), epochs[1])
    unbatched = reshuffled(examples, batch_size=None, seed=3)
    assert unbatched.element_spec[1].shape == ()
    assert int(unbatched.cardinality()) == COUNT


def test_one_pass_keeps_the_order_and_applies_finish(examples):
    doubled = Examples(examples.features, examples.labels, lambda x: 2 * x)
    got = batches(one_pass(doubled, None, 5), 5)
    assert [y.tolist() for _, y in got] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10]]
    np.testing.assert_array_equal(got[2][0], [[200, 202]])
    single = batches(one_pass(examples, tf.constant([3, 1]), 1, batched=False), 2)
    assert [int(y) for _, y in single] == [3, 1] and single[0][0].tolist() == [30, 31]
