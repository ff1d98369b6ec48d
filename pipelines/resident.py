"""Training examples kept on the device, each batch gathered there in the stream's own order.

The stream of :func:`pipelines.stream.epoch_stream` is its ``examples`` (scaled and
stored once by ``tf.data``'s side of the pipeline) in :func:`pipelines.stream.epoch_order`
``(seed, epoch)``, ``batch_size`` at a time.  :func:`resident_batches` hands the same
batches to ``fit`` without a host copy or a transfer per step: the examples go to
the device once, and per epoch one permutation (the same op, so the same order) is
computed on the host (on TensorFlow, by ``tf.data`` beside the step).

* JAX: every element is :class:`Rows`, the examples on the device (the same arrays
  every step) and the batch's row numbers.  The JAX step
  (``kerasdnn/network/steps/jax.py``) gathers the rows inside its compiled call, K
  steps' rows per call: per step the host hands over ``batch_size`` int32 numbers.
* PyTorch: every element is the batch ``(x, y)`` itself, gathered on the device
  (``index_select``) from tensors that stay there.
* TensorFlow: a ``tf.data.Dataset`` of :class:`Rows`, the examples (held once by
  ``Dataset.from_tensors(...).repeat()``, not copied per element) and the batch's row numbers,
  which the stream's own ``tf.data`` ops make.  The TensorFlow step
  (``kerasdnn/network/steps/tensorflow.py``) gathers K steps' rows inside one compiled
  call.  A dataset lives on the host, so on a GPU the examples would be copied per
  call: there :func:`kerasdnn.training.input_path.why_not_resident` keeps the stream.

The gathered values are the stream's bit for bit, so training gives the same numbers
on either path.  :func:`fits_on_device` says whether a stream can be kept there: its
bytes within a quarter of the device's free memory (the host's on a CPU).

Example:
    >>> import pipelines
    >>> stream = pipelines.load("digits", batch_size=100, repeat=True).stream
    >>> stream_bytes(stream)  # 1,293 training examples of 64 float32 pixels and a label
    336180
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from pipelines.stream import EpochStream, epoch_order

__all__ = [
    "DEVICE_SHARE",
    "Rows",
    "fits_on_device",
    "free_device_bytes",
    "keeps_examples",
    "resident_batches",
    "stream_bytes",
]

DEVICE_SHARE = 0.25  # of the device's free memory a resident training split may take
GATHER_BATCHES = 10  # PyTorch: batches gathered at once (pipelines.feed's BATCHES_PER_FETCH)


class Rows(NamedTuple):
    """One training step's batch on JAX and TensorFlow: rows ``index`` of ``features``
    and ``labels``, which stay where they are (the step gathers them:
    :mod:`kerasdnn.network.steps.jax`, :mod:`kerasdnn.network.steps.tensorflow`)."""

    features: Any
    labels: Any
    index: np.ndarray


def stream_bytes(stream: EpochStream) -> int:
    """The bytes of ``stream``'s stored examples and labels (0 for a stream that has none).

    Example:
        >>> from pipelines.stream import Examples, epoch_stream
        >>> from pipelines.tf_setup import tf
        >>> stream_bytes(epoch_stream(Examples(tf.zeros([4, 3]), tf.zeros([4], tf.int32)),
        ...                           batch_size=2, seed=0))
        64
    """
    if stream.examples is None:
        return 0
    return sum(int(np.prod(tensor.shape)) * tensor.dtype.size
               for tensor in (stream.examples.features, stream.examples.labels))


def free_device_bytes(backend: str) -> int:
    """The free memory of the device ``backend`` trains on: the accelerator's (JAX's
    ``memory_stats``, PyTorch's ``cuda.mem_get_info``), else the host's
    ``MemAvailable``.

    Example:
        >>> free_device_bytes("tensorflow") > 0
        True
    """
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.mem_get_info()[0])
    return _host_available_bytes()


def fits_on_device(stream: EpochStream, backend: str, *,
                   free_bytes: Callable[[str], int] = free_device_bytes) -> bool:
    """Whether ``stream`` can be kept on ``backend``'s device: a stream of stored
    examples (:func:`~pipelines.stream.epoch_stream`, scaled ahead) whose bytes are at
    most :data:`DEVICE_SHARE` of ``free_bytes(backend)``.

    Example:
        >>> import pipelines
        >>> stream = pipelines.load("digits", batch_size=100, repeat=True).stream
        >>> fits_on_device(stream, "jax", free_bytes=lambda backend: 2**30)
        True
        >>> fits_on_device(stream, "jax", free_bytes=lambda backend: 2**20)
        False
    """
    if not keeps_examples(stream):
        return False
    return stream_bytes(stream) <= DEVICE_SHARE * free_bytes(backend)


def keeps_examples(stream: EpochStream) -> bool:
    """Whether ``stream`` is its stored examples in their seeded order, nothing added
    (no per-batch ``finish``, no weights): what :func:`resident_batches` can replace."""
    return (stream.examples is not None and stream.seed is not None
            and stream.examples.finish is None and not stream.sharded)


def resident_batches(stream: EpochStream, backend: str, *, skip: int = 0,
                     device: str | None = None) -> Iterator[Any]:
    """``stream``'s batches from batch ``skip`` on, its examples kept on ``backend``'s
    device: :class:`Rows` per step on JAX, the gathered ``(x, y)`` tensors on PyTorch
    (on ``device``, default ``"cuda"`` when there is one, else the CPU), and on
    TensorFlow an endless ``tf.data.Dataset`` of :class:`Rows` (the examples on the host).

    Example:
        >>> import pipelines
        >>> stream = pipelines.load("digits", batch_size=100, repeat=True).stream
        >>> rows = next(resident_batches(stream, "jax", skip=12))  # epoch 0's last batch
        >>> rows.index.shape, rows.features.shape
        ((93,), (1293, 64))
    """
    if not keeps_examples(stream):
        raise ValueError("resident_batches needs a stream of stored examples "
                         "(pipelines.stream.epoch_stream, scaled ahead, unweighted)")
    if backend == "tensorflow":
        return _tensorflow_rows(stream, skip)
    features, labels = (np.asarray(tensor) for tensor in
                        (stream.examples.features, stream.examples.labels))
    if backend == "jax":
        import jax

        features, labels = jax.device_put(features), jax.device_put(labels)
        take = _rows(features, labels)
    elif backend == "torch":
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        # copies (TensorFlow's arrays are read-only): the step may not write into them
        features = torch.tensor(features, device=device)
        labels = torch.tensor(labels, device=device)
        take = _gathered(features, labels, device)
    else:
        raise ValueError(f"resident_batches is for TensorFlow, JAX and PyTorch, not {backend!r}")
    first_epoch, first_batch = divmod(skip, stream.batches_per_epoch)
    batches = (batch for epoch in itertools.count(first_epoch)
               for batch in take(_epoch_index(stream, epoch), stream.batch_size))
    return _generator(itertools.islice(batches, first_batch, None))


def _tensorflow_rows(stream: EpochStream, skip: int) -> Any:
    """``stream`` from batch ``skip`` on as a ``tf.data.Dataset`` of :class:`Rows`: the
    row numbers are the batches of the same :func:`~pipelines.stream.epoch_stream` over
    ``0 .. count - 1`` (so the stream's own order, by construction)."""
    from pipelines.stream import Examples, epoch_stream
    from pipelines.tf_setup import tf

    rows = tf.range(stream.examples.count)
    numbers = epoch_stream(Examples(rows, rows), batch_size=stream.batch_size, seed=stream.seed)
    first_epoch, first_batch = divmod(skip, stream.batches_per_epoch)
    examples = tf.data.Dataset.from_tensors(
        (stream.examples.features, stream.examples.labels)).repeat()
    return tf.data.Dataset.zip(examples, numbers.blocks(first_epoch, 1).skip(first_batch)).map(
        lambda stored, batch: Rows(stored[0], stored[1], batch[0]))


def _generator(iterator: Iterator[Any]) -> Iterator[Any]:
    """``iterator`` as a generator: what Keras's ``fit`` takes as a Python data source."""
    yield from iterator


def _epoch_index(stream: EpochStream, epoch: int) -> np.ndarray:
    """Epoch ``epoch``'s order of ``stream``'s examples, the stream's own (``int32``)."""
    from pipelines.tf_setup import tf

    seed = tf.constant([stream.seed, epoch], tf.int64)
    return epoch_order(stream.examples.count, seed).numpy()


def _rows(features: Any, labels: Any) -> Callable[[np.ndarray, int], Iterator[Rows]]:
    def take(order: np.ndarray, batch_size: int) -> Iterator[Rows]:
        for start in range(0, len(order), batch_size):
            yield Rows(features, labels, order[start:start + batch_size])
    return take


def _gathered(features: Any, labels: Any, device: str) -> Callable[[np.ndarray, int], Iterator]:
    import torch

    def take(order: np.ndarray, batch_size: int) -> Iterator[tuple[Any, Any]]:
        index = torch.as_tensor(order.astype(np.int64), device=device)
        # One gather per GATHER_BATCHES batches, each batch a view of it: a small
        # index_select costs its thread pool's start-up (measured 43 µs for 100 rows on
        # one thread, 11 ms on two threads of a loaded 2-core machine).
        for part in torch.split(index, batch_size * GATHER_BATCHES):
            x_block, y_block = features.index_select(0, part), labels.index_select(0, part)
            for start in range(0, len(part), batch_size):
                yield x_block[start:start + batch_size], y_block[start:start + batch_size]
    return take


def _host_available_bytes() -> int:
    """``MemAvailable`` of ``/proc/meminfo``; elsewhere the free physical pages."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
