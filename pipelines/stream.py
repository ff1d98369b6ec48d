"""Training streams over examples held in memory: :class:`EpochStream` and the
seeded passes that make one (:func:`epoch_stream`, :func:`reshuffled`).

Every pass gathers its batches from one stored tensor through one permutation
(``tf.random.experimental.stateless_shuffle``), seeded by ``(seed, pass)`` alone:
the pipeline's splits (:func:`pipelines.builder.load`), the retraining on
train + validation (:func:`pipelines.builder.train_and_validation`) and the
scikit-learn estimator's stream all shuffle here, so their orders follow one rule.
TensorFlow is imported inside the functions that use it.

Example:
    >>> from pipelines.tf_setup import tf
    >>> stream = epoch_stream(Examples(tf.range(5), tf.range(5)), batch_size=2, seed=1)
    >>> stream.batches_per_epoch, [len(y) for _, y in stream.dataset.take(4)]
    (3, [2, 2, 1, 2])
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pipelines.constants import ENDLESS_EPOCHS

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.tf_setup import tf

__all__ = ["EpochStream", "Examples", "epoch_order", "epoch_stream", "one_pass", "pass_seeds",
           "reshuffled"]


@dataclasses.dataclass(frozen=True)
class EpochStream:
    """An endless training stream of epochs (:func:`epoch_stream`,
    ``pipelines.load(repeat=True)``).

    ``dataset`` is the stream itself: ``batches_per_epoch`` batches of
    ``batch_size`` examples per epoch (the last one shorter).
    ``blocks(first_epoch, batches_per_block)`` is the same stream from the start
    of epoch ``first_epoch`` on, each element ``batches_per_block`` consecutive
    batches of one epoch concatenated (an epoch's last block holds what is left):
    cut each block into ``batch_size`` examples and the batches are exactly the
    stream's.  :mod:`pipelines.feed` uses it to hand the stream to ``fit`` a
    block per ``tf.data`` call and to resume at an epoch without producing the
    skipped ones.

    ``sharded``: each batch is already this process's share of a multi-process
    global batch, ``(x, y, sample_weight)`` padded and weighted
    (:mod:`pipelines.tables.streaming`), not the global batch itself.
    ``python_reader``: the rows come from Python code (``Dataset.from_generator``),
    which no thread of TensorFlow's may run ahead on (no device prefetch): deleting
    such an iterator while that thread waits for the GIL hangs the process.
    ``examples`` and ``seed``: where the batches come from, when they are exactly
    ``examples`` in :func:`epoch_order` ``(count, seed, epoch)`` (:func:`epoch_stream`);
    ``None`` for any other stream.  :mod:`pipelines.resident` uses them to keep the
    examples on the device and gather each batch there.
    """

    batch_size: int
    batches_per_epoch: int
    blocks: Callable[[int, int], tf.data.Dataset]
    sharded: bool = False
    python_reader: bool = False
    examples: Examples | None = None
    seed: int | None = None

    @functools.cached_property
    def dataset(self) -> tf.data.Dataset:
        """The stream as a ``tf.data.Dataset`` of batches, from epoch 0 on."""
        return self.blocks(0, 1)


@dataclasses.dataclass(frozen=True)
class Examples:
    """Examples stored as tensors on the host: ``features[i]`` has label ``labels[i]``;
    ``finish`` is applied to every part gathered from ``features`` (e.g. scaling that
    was not done once ahead)."""

    features: tf.Tensor
    labels: tf.Tensor
    finish: Callable[[tf.Tensor], tf.Tensor] | None = None

    @property
    def count(self) -> int:
        return int(self.labels.shape[0])


def one_pass(examples: Examples, order: tf.Tensor | None, length: int, *,
             batched: bool = True) -> tf.data.Dataset:
    """One pass over ``examples`` in ``order`` (``None``: as stored), ``length``
    examples per element (the last one shorter) gathered at once; with
    ``batched=False`` each element is one example (``length`` must be 1).

    Example:
        >>> from pipelines.tf_setup import tf
        >>> examples = Examples(tf.range(5), tf.range(5))
        >>> [y.numpy().tolist() for _, y in one_pass(examples, tf.constant([4, 3, 2, 1, 0]), 2)]
        [[4, 3], [2, 1], [0]]
    """
    from pipelines.tf_setup import tf

    count = examples.count

    def element(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        start = index * length
        stop = tf.minimum(start + length, count)
        if order is None:
            x_part, y_part = examples.features[start:stop], examples.labels[start:stop]
        else:
            chosen = order[start:stop]
            x_part = tf.gather(examples.features, chosen)
            y_part = tf.gather(examples.labels, chosen)
        if examples.finish is not None:
            x_part = examples.finish(x_part)
        if not batched:
            return x_part[0], y_part[0]
        return x_part, y_part

    return tf.data.Dataset.range(math.ceil(count / length)).map(element)


def epoch_order(count: int | tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """The order of ``count`` examples in the pass that ``seed`` (a ``[seed, pass]``
    ``int64`` tensor) shuffles: a permutation of ``0 .. count - 1`` (``int32``).
    Every shuffled pass of this module, and :mod:`pipelines.resident`, take theirs here.

    Example:
        >>> from pipelines.tf_setup import tf
        >>> sorted(epoch_order(4, tf.constant([1, 0], tf.int64)).numpy().tolist())
        [0, 1, 2, 3]
    """
    from pipelines.tf_setup import tf

    return tf.random.experimental.stateless_shuffle(tf.range(count), seed=seed)


def _shuffled_pass(examples: Examples, seed: tf.Tensor, length: int,
                   batched: bool = True) -> tf.data.Dataset:
    """:func:`one_pass` in the order ``seed`` (a ``[seed, pass]`` tensor) shuffles."""
    return one_pass(examples, epoch_order(examples.count, seed), length, batched=batched)


def epoch_stream(examples: Examples, *, batch_size: int, seed: int) -> EpochStream:
    """``examples`` as an endless stream of epochs in batches of ``batch_size``,
    epoch ``e`` shuffled by ``(seed, e)`` alone: its order does not depend on how
    many iterators were made before, so the stream can start at any epoch.

    Example:
        >>> from pipelines.tf_setup import tf
        >>> stream = epoch_stream(Examples(tf.range(4), tf.range(4)), batch_size=4, seed=2)
        >>> first, second = [sorted(y.numpy().tolist()) for _, y in stream.dataset.take(2)]
        >>> first == second == [0, 1, 2, 3]
        True
    """
    from pipelines.tf_setup import tf

    def blocks(first_epoch: int, batches_per_block: int) -> tf.data.Dataset:
        seed_tensor = tf.constant(int(seed), tf.int64)
        return tf.data.Dataset.range(first_epoch, ENDLESS_EPOCHS).flat_map(
            lambda epoch: _shuffled_pass(examples, tf.stack([seed_tensor, epoch]),
                                         batch_size * batches_per_block)
        ).apply(
            tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY)
        ).prefetch(tf.data.AUTOTUNE)

    return EpochStream(batch_size, math.ceil(examples.count / batch_size), blocks,
                       examples=examples, seed=int(seed))


def reshuffled(examples: Examples, *, batch_size: int | None, seed: int) -> tf.data.Dataset:
    """One pass over ``examples`` per iterator, pass ``p`` shuffled by ``(seed, p)``
    (unbatched examples when ``batch_size`` is ``None``).

    Example:
        >>> from pipelines.tf_setup import tf
        >>> passes = reshuffled(Examples(tf.range(3), tf.range(3)), batch_size=3, seed=1)
        >>> sorted(next(iter(passes))[1].numpy().tolist())
        [0, 1, 2]
    """
    from pipelines.tf_setup import tf

    length = batch_size or 1
    return (
        pass_seeds(int(seed))
        .flat_map(lambda seed_tensor: _shuffled_pass(examples, seed_tensor, length,
                                                     batch_size is not None))
        .apply(tf.data.experimental.assert_cardinality(math.ceil(examples.count / length)))
    )


def pass_seeds(seed: int) -> tf.data.Dataset:
    """A dataset of one element, ``[seed, p]``, where ``p`` counts the iterators made
    of it so far: pass ``p`` of a dataset that ``flat_map``s over it can be shuffled
    by ``(seed, p)`` alone, with stateless ops.

    Hand-written because ``Dataset.random`` and ``Dataset.shuffle(seed=...)`` mix
    TensorFlow's global seed into theirs, so a ``keras.utils.set_random_seed`` made
    anywhere in the process would change the order.

    Example:
        >>> passes = pass_seeds(7)
        >>> [[list(map(int, s)) for s in passes] for _ in range(2)]
        [[[7, 0]], [[7, 1]]]
    """
    from pipelines.tf_setup import tf

    passes = itertools.count()

    def next_pass() -> Iterator[int]:
        yield next(passes)

    seed_tensor = tf.constant(seed, tf.int64)
    return tf.data.Dataset.from_generator(
        next_pass, output_signature=tf.TensorSpec((), tf.int64)
    ).map(lambda p: tf.stack([seed_tensor, p]))
