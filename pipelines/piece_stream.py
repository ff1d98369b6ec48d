"""What every source read piece by piece shares (streamed tables,
:mod:`pipelines.tables.streaming`, and streamed arrays, :mod:`pipelines.array_stream`):
the bounded shuffle, the per-process deal of pieces and the endless training stream.

* **Bounded shuffle** (:func:`shuffle_windows`): an epoch reads the pieces in an order
  permuted by ``(seed, epoch)`` (:func:`piece_order`) and permutes every window of about
  ``buffer`` rows (seeded by ``(seed, epoch, window)``): a row moves within its window
  only, so this is not a full permutation (that needs all the rows at once).
* **Per-process pieces** (:func:`deal`, :func:`training_stream`): with
  ``shard=Shard(index, count, replicas)`` each process reads only its own pieces; the
  global batch stays ``batch_size`` rows (:func:`sharded_stream`).

Example:
    >>> chunks = [({"x": np.arange(i, i + 3)}, np.arange(i, i + 3)) for i in (0, 3, 6)]
    >>> [len(y) for _, y in shuffle_windows(iter(chunks), (1, 0), 5)]
    [6, 3]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pipelines.constants import ENDLESS_EPOCHS
from pipelines.errors import InvalidDataError
from pipelines.stream import EpochStream

__all__ = ["Shard", "batched", "deal", "in_caller", "piece_order", "sharded_stream",
           "shuffle_windows", "shuffled_pieces", "training_stream"]

Chunk = tuple[dict[str, np.ndarray], np.ndarray]  # (columns or {"x": rows}, labels)


@dataclasses.dataclass(frozen=True)
class Shard:
    """This process's place in a multi-process run: ``index`` of ``count`` processes,
    ``replicas`` devices in all (a multiple of ``count``)."""

    index: int = 0
    count: int = 1
    replicas: int = 1


def deal(records: Sequence[Mapping[str, Any]], count: int) -> list[list[int]]:
    """The pieces (indices) with training rows (``record["train"]``) dealt to ``count``
    processes: largest first, each to the process with the fewest training rows so far.

    Example:
        >>> deal([{"train": 5}, {"train": 3}, {"train": 0}, {"train": 4}], 2)
        [[0], [1, 3]]
    """
    shares: list[list[int]] = [[] for _ in range(count)]
    totals = [0] * count
    for index in sorted((i for i, r in enumerate(records) if r["train"]),
                        key=lambda i: (-records[i]["train"], i)):
        process = totals.index(min(totals))
        shares[process].append(index)
        totals[process] += records[index]["train"]
    return [sorted(share) for share in shares]


def piece_order(count: int, seed: Sequence[int]) -> np.ndarray:
    """The order in which an epoch seeded by ``seed`` reads ``count`` pieces.

    Example:
        >>> sorted(piece_order(4, (1, 0)).tolist())
        [0, 1, 2, 3]
    """
    return np.random.default_rng(list(seed)).permutation(count)


def shuffled_pieces(records: Sequence[Mapping[str, Any]],
                    read: Callable[[list[Mapping[str, Any]]], Iterator[Chunk]],
                    seed: Sequence[int], buffer: int) -> Iterator[Chunk]:
    """The chunks ``read`` gives of the pieces ``records`` taken in :func:`piece_order`,
    in windows of at least ``buffer`` rows permuted by :func:`shuffle_windows`: one
    epoch's training rows, shuffled by ``seed``.

    Example:
        >>> def read(pieces):
        ...     return iter([({"x": np.arange(p, p + 2)}, np.arange(p, p + 2)) for p in pieces])
        >>> chunks = shuffled_pieces([0, 2, 4], read, (1, 0), 3)
        >>> sorted(np.concatenate([y for _, y in chunks]).tolist())
        [0, 1, 2, 3, 4, 5]
    """
    order = piece_order(len(records), seed)
    return shuffle_windows(read([records[i] for i in order]), seed, buffer)


def shuffle_windows(chunks: Iterator[Chunk], seed: Sequence[int], buffer: int
                    ) -> Iterator[Chunk]:
    """``chunks`` (read in :func:`piece_order`) gathered into windows of at least
    ``buffer`` rows, each permuted by ``(*seed, window)``.

    Example:
        >>> chunks = [({"x": np.arange(4)}, np.arange(4))]
        >>> sorted(next(shuffle_windows(iter(chunks), (3, 1), 10))[1].tolist())
        [0, 1, 2, 3]
    """
    pending: list[Chunk] = []
    window = 0

    def flush() -> Chunk:
        columns = {name: np.concatenate([c[name] for c, _ in pending])
                   for name in pending[0][0]}
        labels = np.concatenate([y for _, y in pending])
        permutation = np.random.default_rng([*seed, window]).permutation(len(labels))
        pending.clear()
        return {name: v[permutation] for name, v in columns.items()}, labels[permutation]

    size = 0
    for columns, labels in chunks:
        pending.append((columns, labels))
        size += len(labels)
        if size >= buffer:
            yield flush()
            window, size = window + 1, 0
    if pending:
        yield flush()


def in_caller(dataset: Any) -> Any:
    """``dataset`` without the prefetch ``tf.data`` adds by default: the generator then
    runs only when a caller asks for an element, never on a thread of TensorFlow's
    own that an iterator's deletion would wait for while holding the GIL (a deadlock,
    at exit too); :func:`pipelines.read_ahead.read_ahead` reads ahead instead."""
    from pipelines.tf_setup import tf

    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False
    return dataset.with_options(options)


def batched(dataset: Any, batch_size: int | None, count: int) -> Any:
    """A dataset of row chunks (``count`` rows in all) as batches of ``batch_size`` (single
    rows when None), its cardinality known."""
    from pipelines.tf_setup import tf

    if batch_size is None:
        return in_caller(dataset.unbatch().apply(
            tf.data.experimental.assert_cardinality(count)))
    return in_caller(dataset.rebatch(batch_size).apply(
        tf.data.experimental.assert_cardinality(math.ceil(count / batch_size))))


def training_stream(records: Sequence[Mapping[str, Any]],
                    epoch_rows: Callable[[Sequence[Mapping[str, Any]], int, Any], Any], *,
                    batch_size: int, shard: Shard, where: str, too_few: str) -> EpochStream:
    """The endless training stream over the pieces ``records`` (each with its ``"train"``
    row count); with several processes, this process's share.  ``epoch_rows(own
    records, process index, epoch tensor)`` is one epoch's dataset of ``(x, y)`` row
    chunks; ``too_few`` says how to make more pieces of ``where`` when a process has none."""
    from pipelines.tf_setup import tf

    shares = deal(records, shard.count)
    if not shares[shard.index]:
        raise InvalidDataError(f"{where} has {sum(1 for s in shares if s)} piece(s) with "
                               f"training rows for {shard.count} processes; {too_few}")
    own = [records[i] for i in shares[shard.index]]

    def own_rows(epoch: Any) -> Any:
        return epoch_rows(own, shard.index, epoch)

    if shard.count == 1:
        def blocks(first_epoch: int, batches_per_block: int) -> Any:
            return in_caller(tf.data.Dataset.range(first_epoch, ENDLESS_EPOCHS).flat_map(
                lambda epoch: own_rows(epoch).rebatch(batch_size * batches_per_block)
            ).apply(tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY)))

        total = sum(record["train"] for record in own)
        return EpochStream(batch_size, math.ceil(total / batch_size), blocks,
                           python_reader=True)
    return sharded_stream(own_rows, [sum(records[i]["train"] for i in share)
                                     for share in shares], batch_size, shard)


def sharded_stream(epoch_rows: Callable[[Any], Any], rows: Sequence[int], batch_size: int,
                   shard: Shard) -> EpochStream:
    """This process's padded, weighted ``(x, y, sample_weight)`` share of each global
    batch: ``rows[p]`` training rows in process ``p``'s pieces."""
    from pipelines.tf_setup import tf

    count, index = shard.count, shard.index
    takes = [batch_size // count + (p < batch_size % count) for p in range(count)]
    steps = max(math.ceil(n / take) for n, take in zip(rows, takes, strict=True))
    padded = math.ceil(batch_size / shard.replicas) * shard.replicas
    slot = padded // count
    real = np.array([[min(take, max(0, n - k * take)) for n, take in zip(rows, takes,
                                                                           strict=True)]
                     for k in range(steps)]).sum(axis=1)
    weights = tf.constant(padded / real, tf.float32)  # per step: the real rows weigh it all
    own_steps = math.ceil(rows[index] / takes[index])

    def epoch_batches(epoch: Any) -> Any:
        batches = epoch_rows(epoch).rebatch(takes[index])
        width = batches.element_spec[0].shape[-1]
        empty = tf.data.Dataset.from_tensors(
            (tf.zeros([0, width], tf.float32), tf.zeros([0], tf.int32))
        ).repeat(steps - own_steps)

        def pad(step: Any, batch: Any) -> tuple[Any, Any, Any]:
            x, y = batch
            extra = slot - tf.shape(y)[0]
            weight = tf.concat([tf.fill(tf.shape(y), tf.gather(weights, step)),
                                tf.zeros([extra], tf.float32)], 0)
            return (tf.pad(x, [[0, extra], [0, 0]]), tf.pad(y, [[0, extra]]), weight)

        return batches.concatenate(empty).enumerate().map(pad)

    def joined(*block: Any) -> tuple[Any, ...]:  # every batch has slot rows: one reshape
        return tuple(tf.reshape(part, [-1, *part.shape[2:]]) for part in block)

    def blocks(first_epoch: int, batches_per_block: int) -> Any:
        return in_caller(tf.data.Dataset.range(first_epoch, ENDLESS_EPOCHS).flat_map(
            lambda epoch: epoch_batches(epoch).batch(batches_per_block).map(joined)
        ).apply(tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY)))

    return EpochStream(slot, steps, blocks, sharded=True, python_reader=True)
