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
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from pipelines.tf_setup import keras_backend, tf

__all__ = ["TorchPrefetchLoader", "keras_prefetches_on_jax", "prefetch_to_device"]


def keras_prefetches_on_jax() -> bool:
    """True when Keras's JAX trainer transfers batches one ahead to the device itself.

    Example:
        >>> keras_prefetches_on_jax()  # doctest: +SKIP
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

    Example:
        >>> train = prefetch_to_device(pipelines.load("digits").train)  # doctest: +SKIP
        >>> model.fit(train, epochs=2)  # doctest: +SKIP
    """
    backend = keras_backend()
    if backend == "tensorflow":
        gpus = tf.config.list_logical_devices("GPU")
        if not gpus:
            return dataset
        return dataset.apply(tf.data.experimental.prefetch_to_device(gpus[0].name, buffer_size))
    if backend == "jax":
        if _jax_has_accelerator() and not keras_prefetches_on_jax():
            warnings.warn(
                "this Keras does not prefetch batches to the JAX device; input is copied "
                "synchronously each step",
                RuntimeWarning,
                stacklevel=2,
            )
        return dataset
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return dataset
        return TorchPrefetchLoader.data_loader(dataset, device="cuda", buffer_size=buffer_size)
    return dataset


_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


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
    """Iterates a ``tf.data`` dataset (or an iterator of NumPy batches, such as
    :func:`pipelines.feed.host_batches`) in a background thread and hands over torch
    tensors already on ``device`` (pinned host memory, ``non_blocking`` copies on a
    side CUDA stream); at most ``buffer_size`` batches wait in the queue.

    Use :meth:`data_loader` to get a ``torch.utils.data.DataLoader`` for ``fit``.
    With ``device="cpu"`` no pinning or stream is used (that is what the tests run).

    Example:
        >>> import tensorflow as tf
        >>> loader = TorchPrefetchLoader.data_loader(
        ...     tf.data.Dataset.range(6).batch(2).map(lambda x: (x, x)), device="cpu")
        >>> [x.tolist() for x, _ in loader]
        [[0, 1], [2, 3], [4, 5]]
    """

    def __init__(self, dataset: tf.data.Dataset | Iterable[Any], *, device: str = "cuda",
                 buffer_size: int = 2):
        import torch

        self.dataset = dataset
        self.device = torch.device(device)
        self.buffer_size = max(1, int(buffer_size))

    @classmethod
    def data_loader(cls, dataset: tf.data.Dataset | Iterable[Any], *, device: str = "cuda",
                    buffer_size: int = 2):
        """A ``DataLoader`` (no re-batching) over the prefetched batches of ``dataset``."""
        import torch.utils.data

        prefetcher = cls(dataset, device=device, buffer_size=buffer_size)
        return torch.utils.data.DataLoader(_iterable_dataset(prefetcher), batch_size=None)

    @property
    def num_batches(self) -> int | None:
        if not isinstance(self.dataset, tf.data.Dataset):
            return None
        cardinality = int(self.dataset.cardinality())
        return cardinality if cardinality >= 0 else None

    def _to_device(self, array: np.ndarray) -> Any:
        import torch

        array = np.asarray(array)
        if self.device.type != "cuda":
            return torch.from_numpy(array.copy()).to(self.device)
        pinned = torch.empty(array.shape, dtype=torch.from_numpy(array[:0]).dtype, pin_memory=True)
        pinned.numpy()[...] = array  # one copy, straight into page-locked memory
        return pinned.to(self.device, non_blocking=True)

    def _produce(self, out: queue.Queue, stop: threading.Event) -> None:
        import torch

        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        try:
            batches = (self.dataset.as_numpy_iterator()
                       if isinstance(self.dataset, tf.data.Dataset) else self.dataset)
            for batch in batches:
                if stream is not None:
                    with torch.cuda.stream(stream):
                        tensors = tf.nest.map_structure(self._to_device, batch)
                        ready = torch.cuda.Event()
                        ready.record(stream)
                else:
                    tensors = tf.nest.map_structure(self._to_device, batch)
                    ready = None
                while not stop.is_set():
                    try:
                        out.put((tensors, ready), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as error:  # handed to the consumer, which re-raises it
            out.put(_Failure(error))
        finally:
            out.put(_END)

    def __iter__(self) -> Iterator[Any]:
        import torch

        out: queue.Queue = queue.Queue(maxsize=self.buffer_size)
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce, args=(out, stop), daemon=True, name="pipelines-prefetch"
        )
        producer.start()
        try:
            while True:
                item = out.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                tensors, ready = item
                if ready is not None:
                    current = torch.cuda.current_stream(self.device)
                    current.wait_event(ready)
                    # The copies were made on the side stream: tell the caching
                    # allocator the main stream uses them now.
                    for tensor in tf.nest.flatten(tensors):
                        tensor.record_stream(current)
                yield tensors
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    out.get(timeout=0.1)
