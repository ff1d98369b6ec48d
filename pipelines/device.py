"""Deliver batches to the accelerator ahead of the training step, per Keras backend.

* TensorFlow: ``tf.data.experimental.prefetch_to_device`` as the last
  transformation, when TensorFlow sees a GPU.
* JAX: nothing to add.  Keras 3.15's ``JAXEpochIterator._get_iterator``
  (keras/src/backend/jax/trainer.py) already wraps the batches in
  ``_one_batch_ahead_iterator``, which starts the ``jax.device_put`` of the next
  batch before the current one is returned, whenever ``jax.default_backend()``
  is not ``"cpu"``.  Doing it here too would transfer each batch twice;
  :func:`keras_prefetches_on_jax` checks that this Keras still does it (and a
  warning says so if not).
* PyTorch: Keras turns each batch into a tensor on the device synchronously.
  With CUDA, :class:`TorchPrefetchLoader` copies from pinned host tensors with
  ``non_blocking=True`` on a side stream, in a background thread that keeps a
  small queue of batches ready; ``fit`` takes it as a ``DataLoader``.

On a CPU-only machine every path returns the dataset itself.

Example:
    >>> import tensorflow as tf
    >>> dataset = tf.data.Dataset.range(4).batch(2)
    >>> prefetch_to_device(dataset) is dataset  # CPU-only machine
    True
"""

from __future__ import annotations

import contextlib
import queue
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from pipelines.backends import backend_spec
from pipelines.tf_setup import keras_backend, tf

__all__ = ["TorchPrefetchLoader", "keras_prefetches_on_jax", "prefetch_to_device"]


def keras_prefetches_on_jax() -> bool:
    """True when Keras's JAX trainer transfers batches one ahead to the device itself.

    Example:
        >>> isinstance(keras_prefetches_on_jax(), bool)  # False without JAX
        True
    """
    try:
        from keras.src.backend.jax.trainer import JAXEpochIterator
    except ImportError:  # JAX not installed, or Keras moved the class
        return False
    return hasattr(JAXEpochIterator, "_one_batch_ahead_iterator")


def _jax_has_accelerator() -> bool:
    import jax

    return jax.default_backend() != "cpu"


def prefetch_to_device(dataset: tf.data.Dataset, *, buffer_size: int = 2) -> Any:
    """Something ``model.fit`` accepts that yields the batches of ``dataset``,
    copied to the accelerator ahead of use; ``dataset`` itself on a CPU-only machine.

    How is the backend's ``device_prefetch`` in :mod:`pipelines.backends`.

    Example:
        >>> import pipelines
        >>> train = prefetch_to_device(pipelines.load("digits").train)
        >>> int(train.cardinality()) if hasattr(train, "cardinality") else "a loader"
        13
    """
    how = backend_spec(keras_backend()).device_prefetch
    return _PREFETCH[how](dataset, buffer_size)


def _tf_prefetch(dataset: tf.data.Dataset, buffer_size: int) -> Any:
    """``tf.data``'s own transfer, as the last transformation (TensorFlow)."""
    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        return dataset
    return dataset.apply(tf.data.experimental.prefetch_to_device(gpus[0].name, buffer_size))


def _keras_prefetch(dataset: tf.data.Dataset, buffer_size: int) -> Any:
    """Nothing: Keras's trainer copies one batch ahead (JAX); said when it does not."""
    if _jax_has_accelerator() and not keras_prefetches_on_jax():
        warnings.warn(
            "this Keras does not prefetch batches to the JAX device; input is copied "
            "synchronously each step",
            RuntimeWarning,
            stacklevel=3,
        )
    return dataset


def _torch_loader_prefetch(dataset: tf.data.Dataset, buffer_size: int) -> Any:
    """Pinned host tensors copied on a side stream by :class:`TorchPrefetchLoader` (PyTorch)."""
    import torch

    if not torch.cuda.is_available():
        return dataset
    return TorchPrefetchLoader.data_loader(dataset, device="cuda", buffer_size=buffer_size)


# The backend table's ``device_prefetch`` modes.
_PREFETCH = {"tf": _tf_prefetch, "keras": _keras_prefetch, "torch_loader": _torch_loader_prefetch}


_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Feed:
    """One background thread copying the batches of one iterator into a bounded queue."""

    def __init__(self, batches: Iterator[Any], copy: Callable[[Any], Any], device: Any,
                 buffer_size: int) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=buffer_size)
        self.stopping = threading.Event()
        self.ended = False
        self.thread = threading.Thread(target=self._produce, args=(batches, copy, device),
                                       daemon=True, name="pipelines-prefetch")
        self.thread.start()

    def _produce(self, batches: Iterator[Any], copy: Callable[[Any], Any], device: Any) -> None:
        import torch

        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        try:
            for batch in batches:
                if stream is not None:
                    with torch.cuda.stream(stream):
                        tensors = tf.nest.map_structure(copy, batch)
                        ready = torch.cuda.Event()
                        ready.record(stream)
                else:
                    tensors, ready = tf.nest.map_structure(copy, batch), None
                while not self.stopping.is_set():
                    try:
                        self.queue.put((tensors, ready), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self.stopping.is_set():
                    return
        except BaseException as error:  # handed to the consumer, which re-raises it
            self.queue.put(_Failure(error))
        finally:
            self.queue.put(_END)

    def take(self) -> Iterator[Any]:
        """The copied batches, in order, until the iterator ends; stopping early
        (``close()``) leaves every batch not yet handed out in the queue."""
        while not self.ended:
            item = self.queue.get()
            if item is _END or isinstance(item, _Failure):
                self.ended = True
                if isinstance(item, _Failure):
                    raise item.error
                return
            yield item

    def stop(self) -> None:
        self.stopping.set()
        while self.thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.1)


def _iterable_dataset(prefetcher: TorchPrefetchLoader) -> Any:
    """A torch ``IterableDataset`` over ``prefetcher``, sized when the number of
    batches is known (Keras then shows a progress bar with a total)."""
    import torch.utils.data

    class TFDataIterable(torch.utils.data.IterableDataset):
        def __iter__(self) -> Iterator[Any]:
            return iter(prefetcher)

    if prefetcher.num_batches is None:
        return TFDataIterable()

    class SizedTFDataIterable(TFDataIterable):
        def __len__(self) -> int:
            return prefetcher.num_batches

    return SizedTFDataIterable()


class TorchPrefetchLoader:
    """Iterates a ``tf.data`` dataset, a function that returns an iterator of NumPy
    batches (such as :func:`pipelines.feed.host_batches`), or an iterable of them, in a
    background thread and hands over torch tensors already on ``device`` (pinned host
    memory, ``non_blocking`` copies on a side CUDA stream); at most ``buffer_size``
    batches wait in the queue.

    Every pass (``iter``) over a dataset or a function starts afresh, as Keras's torch
    ``fit`` expects: it draws one batch to build the model's metrics, then starts
    training on a new pass.  A single-use iterator cannot start afresh: its passes
    share one thread and queue, so a pass continues at the first batch no earlier
    pass handed out (nothing the thread took is lost).

    Use :meth:`data_loader` to get a ``torch.utils.data.DataLoader`` for ``fit``.
    With ``device="cpu"`` no pinning or stream is used (that is what the tests run);
    ``copy`` replaces the per-array copy step (default: :meth:`to_device`).

    Example:
        >>> import tensorflow as tf
        >>> loader = TorchPrefetchLoader.data_loader(
        ...     tf.data.Dataset.range(6).batch(2).map(lambda x: (x, x)), device="cpu")
        >>> [x.tolist() for x, _ in loader]
        [[0, 1], [2, 3], [4, 5]]
    """

    def __init__(self, dataset: tf.data.Dataset | Callable[[], Iterable[Any]] | Iterable[Any],
                 *, device: str = "cuda", buffer_size: int = 2,
                 copy: Callable[[np.ndarray], Any] | None = None):
        import torch

        self.dataset = dataset
        self.device = torch.device(device)
        self.buffer_size = max(1, int(buffer_size))
        self.copy = copy or self.to_device
        self._shared: _Feed | None = None  # the one feed of a single-use iterator

    @classmethod
    def data_loader(cls, dataset: tf.data.Dataset | Callable[[], Iterable[Any]] | Iterable[Any],
                    *, device: str = "cuda", buffer_size: int = 2,
                    copy: Callable[[np.ndarray], Any] | None = None):
        """A ``DataLoader`` (no re-batching) over the prefetched batches of ``dataset``."""
        import torch.utils.data

        prefetcher = cls(dataset, device=device, buffer_size=buffer_size, copy=copy)
        return torch.utils.data.DataLoader(_iterable_dataset(prefetcher), batch_size=None)

    @property
    def num_batches(self) -> int | None:
        if not isinstance(self.dataset, tf.data.Dataset):
            return None
        cardinality = int(self.dataset.cardinality())
        return cardinality if cardinality >= 0 else None

    def to_device(self, array: np.ndarray) -> Any:
        """The default copy step: ``array`` as a tensor on the device (through pinned
        memory, ``non_blocking``, on CUDA)."""
        import torch

        array = np.asarray(array)
        if self.device.type != "cuda":
            return torch.from_numpy(array.copy()).to(self.device)
        pinned = torch.empty(array.shape, dtype=torch.from_numpy(array[:0]).dtype, pin_memory=True)
        pinned.numpy()[...] = array  # one copy, straight into page-locked memory
        return pinned.to(self.device, non_blocking=True)

    def _single_use(self) -> bool:
        source = self.dataset
        if isinstance(source, tf.data.Dataset) or callable(source):
            return False
        return iter(source) is source

    def _fresh_batches(self) -> Iterator[Any]:
        source = self.dataset
        if isinstance(source, tf.data.Dataset):
            return source.as_numpy_iterator()
        return iter(source() if callable(source) else source)

    def __iter__(self) -> Iterator[Any]:
        if self._single_use():
            if self._shared is None:
                self._shared = _Feed(self.dataset, self.copy, self.device, self.buffer_size)
            yield from self._ready(self._shared)
            return
        feed = _Feed(self._fresh_batches(), self.copy, self.device, self.buffer_size)
        try:
            yield from self._ready(feed)
        finally:
            feed.stop()

    def _ready(self, feed: _Feed) -> Iterator[Any]:
        import torch

        for tensors, ready in feed.take():
            if ready is not None:
                current = torch.cuda.current_stream(self.device)
                current.wait_event(ready)
                # The copies were made on the side stream: tell the caching
                # allocator the main stream uses them now.
                for tensor in tf.nest.flatten(tensors):
                    tensor.record_stream(current)
            yield tensors
