"""Hand a batched training stream to ``model.fit`` the cheapest way for each backend.

Each ``next()`` on a ``tf.data`` iterator from Python costs a fixed 150–400 µs on
this project's 2-core CPU, whatever the batch size (BENCHMARKS.md), paid on the
training thread; at batch 100 that is a tenth of a step of the seed network.
So:

* TensorFlow: the dataset itself (its graph reads the next batch in-graph,
  ``steps_per_execution`` at a time), behind
  :func:`pipelines.device.prefetch_to_device`.
* JAX and PyTorch, for an endless stream (``pipelines.load(repeat=True)``, fitted
  with ``steps_per_epoch``): a Python iterator of NumPy batches
  (:func:`host_batches`) that takes ``batches_per_fetch`` batches from
  ``tf.data`` per ``next()``, as one block, and hands them out one by one as
  views, in the same order and with the same shapes.  An
  :class:`pipelines.stream.EpochStream` (``splits.stream``) is read as its own
  blocks (one gather of that many batches' examples each); another endless
  dataset is padded into blocks by ``tf.data``.  With CUDA, PyTorch gets
  :class:`pipelines.device.TorchPrefetchLoader` (copies on a side stream) over it.
* A finite dataset stays a dataset: Keras iterates it afresh each epoch, which a
  Python iterator cannot do.

``skip`` leaves out the first batches (how ``kerasdnn.train`` resumes a run); an
``EpochStream`` then starts at the epoch instead of producing the skipped ones.

Which of these each backend gets is its ``feed`` in :mod:`pipelines.backends`.

Example:
    >>> import pipelines
    >>> splits = pipelines.load("digits", batch_size=100, repeat=True)
    >>> batches = host_batches(splits.stream, skip=12)
    >>> [len(next(batches)[1]) for _ in range(3)]  # an epoch's last batch, then the next's
    [93, 100, 100]
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from typing import Any

from pipelines.backends import backend_spec
from pipelines.device import TorchPrefetchLoader, prefetch_to_device
from pipelines.resident import resident_batches
from pipelines.stream import EpochStream
from pipelines.tf_setup import keras_backend, tf

__all__ = ["BATCHES_PER_FETCH", "for_fit", "host_batches", "skipped"]

BATCHES_PER_FETCH = 10


def host_batches(dataset: tf.data.Dataset | EpochStream, *,
                 batches_per_fetch: int = BATCHES_PER_FETCH, skip: int = 0) -> Iterator[Any]:
    """The batches of ``dataset`` as NumPy arrays, ``batches_per_fetch`` taken per ``next()``.

    The batches keep their order, structure and shapes (an epoch's shorter last
    batch included); each is a view into the block it was fetched in.  The first
    ``skip`` batches are left out.  An :class:`~pipelines.stream.EpochStream`
    (``pipelines.load(repeat=True).stream``) is read as its blocks (one gather
    per block, whole epochs skipped without being produced); a dataset is
    padded into blocks by ``tf.data``.

    Example:
        >>> dataset = tf.data.Dataset.range(5).batch(2).map(lambda x: (x, -x))
        >>> [x.tolist() for x, _ in host_batches(dataset, batches_per_fetch=2)]
        [[0, 1], [2, 3], [4]]
    """
    if batches_per_fetch < 1:
        raise ValueError(f"batches_per_fetch must be >= 1, got {batches_per_fetch}")
    if isinstance(dataset, EpochStream):
        epochs, batches = divmod(skip, dataset.batches_per_epoch)
        blocks = dataset.blocks(epochs, batches_per_fetch)
        yield from itertools.islice(_cut(blocks, dataset.batch_size), batches, None)
        return

    def with_length(*batch: Any) -> tuple[Any, tf.Tensor]:
        batch = batch[0] if len(batch) == 1 else batch
        return batch, tf.shape(tf.nest.flatten(batch)[0])[0]

    blocks = (
        dataset.skip(skip)
        .map(with_length)
        .padded_batch(batches_per_fetch)
        .prefetch(1)
    )
    for block, lengths in blocks.as_numpy_iterator():
        for index, length in enumerate(lengths):
            yield tf.nest.map_structure(
                lambda array, index=index, length=length: array[index, :length], block
            )


def skipped(dataset: tf.data.Dataset | EpochStream, skip: int) -> tf.data.Dataset:
    """``dataset.skip(skip)``; an :class:`~pipelines.stream.EpochStream` starts at
    the epoch instead of producing the skipped ones.

    Example:
        >>> [int(x) for x in skipped(tf.data.Dataset.range(5), 3)]
        [3, 4]
    """
    if isinstance(dataset, EpochStream):
        epochs, batches = divmod(skip, dataset.batches_per_epoch)
        return dataset.blocks(epochs, 1).skip(batches)
    return dataset.skip(skip) if skip else dataset


def for_fit(dataset: tf.data.Dataset | EpochStream, *, skip: int = 0,
            batches_per_fetch: int = BATCHES_PER_FETCH,
            device_prefetch: bool = True, device: str | None = None,
            resident: bool = False) -> Any:
    """What to give ``model.fit`` for the batches of ``dataset`` on the active backend.

    An endless ``dataset`` (an :class:`~pipelines.stream.EpochStream`, or a
    dataset of infinite cardinality) becomes a Python iterator on the backends
    whose ``feed`` is ``"host"`` (JAX, PyTorch; fit it with ``steps_per_epoch``);
    anything else is what
    :func:`pipelines.device.prefetch_to_device` makes of it.  The first ``skip``
    batches are left out (how ``kerasdnn.train`` resumes a run).  With
    ``device_prefetch=False`` (to measure what it brings) TensorFlow gets the
    dataset as it is and PyTorch the host iterator; JAX cannot tell (Keras's
    JAX trainer prefetches on accelerators itself).  ``device`` names the device of
    PyTorch's prefetch loader (default: ``"cuda"`` when there is one, else no loader);
    each pass of the loader starts the stream afresh at ``skip``, because Keras's
    torch ``fit`` draws a batch from a first pass before training on a second.
    ``resident=True`` (an :class:`~pipelines.stream.EpochStream` of stored examples):
    the examples are kept on the device and each batch gathered there
    (:func:`pipelines.resident.resident_batches`; on TensorFlow a dataset of row
    numbers for a step compiled with XLA to gather), the same batches.

    Example:
        >>> import pipelines
        >>> splits = pipelines.load("digits", batch_size=100, repeat=True)
        >>> fed = for_fit(splits.stream, skip=13)  # epoch 1 on, e.g. after a resume
        >>> fed is not None
        True
    """
    spec = backend_spec(keras_backend())
    if resident:
        return resident_batches(dataset, spec.name, skip=skip, device=device)
    endless = (isinstance(dataset, EpochStream)
               or int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY)
    if spec.feed != "host" or not endless:
        ahead = device_prefetch and not getattr(dataset, "python_reader", False)
        dataset = skipped(dataset, skip)
        return prefetch_to_device(dataset) if ahead else dataset
    if spec.device_prefetch == "torch_loader" and device_prefetch:
        import torch

        if device is None and torch.cuda.is_available():
            device = "cuda"
        if device is not None:
            return TorchPrefetchLoader.data_loader(
                functools.partial(host_batches, dataset, batches_per_fetch=batches_per_fetch,
                                  skip=skip),
                device=device,
            )
    return host_batches(dataset, batches_per_fetch=batches_per_fetch, skip=skip)


def _cut(blocks: tf.data.Dataset, batch_size: int) -> Iterator[Any]:
    """The blocks' examples, ``batch_size`` at a time (views), a block's last cut shorter."""
    for block in blocks.as_numpy_iterator():
        length = len(tf.nest.flatten(block)[0])
        for start in range(0, length, batch_size):
            yield tf.nest.map_structure(
                lambda array, start=start: array[start:start + batch_size], block
            )
