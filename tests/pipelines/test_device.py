"""Device prefetch: on a CPU-only machine an identity; the PyTorch background queue
keeps order and content (run here with device="cpu")."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pipelines
from pipelines.device import keras_prefetches_on_jax, prefetch_to_device
from pipelines.tf_setup import tf


def batches(dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(x), np.asarray(y)) for x, y in dataset]


def assert_same_batches(got, expected) -> None:
    assert len(got) == len(expected)
    for (gx, gy), (ex, ey) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(gx, ex)
        np.testing.assert_array_equal(gy, ey)


@pytest.fixture(scope="module")
def digits():
    return pipelines.load("digits", batch_size=64, seed=11)


def test_identity_on_cpu(backend, digits):
    prefetched = prefetch_to_device(digits.validation)
    assert prefetched is digits.validation  # no accelerator here: nothing added
    assert_same_batches(
        batches(prefetched.as_numpy_iterator()), batches(digits.validation.as_numpy_iterator())
    )


def test_keras_jax_trainer_prefetches_itself():
    pytest.importorskip("jax")
    assert keras_prefetches_on_jax()


def test_torch_queue_keeps_order_and_content(digits):
    pytest.importorskip("torch")
    from pipelines.device import TorchPrefetchLoader

    loader = TorchPrefetchLoader.data_loader(digits.validation, device="cpu", buffer_size=2)
    assert len(loader) == int(digits.validation.cardinality())
    expected = batches(digits.validation.as_numpy_iterator())
    assert_same_batches(batches((x.numpy(), y.numpy()) for x, y in loader), expected)
    assert_same_batches(batches((x.numpy(), y.numpy()) for x, y in loader), expected)  # again
    # Train: each pass is one reshuffled epoch with every example exactly once.
    train = TorchPrefetchLoader.data_loader(digits.train, device="cpu")
    reference = np.concatenate([x for x, _ in digits.train.as_numpy_iterator()])
    passes = [np.concatenate([x.numpy() for x, _ in train]) for _ in range(2)]
    for got in passes:
        np.testing.assert_array_equal(np.unique(got, axis=0), np.unique(reference, axis=0))
        assert len(got) == len(reference)
    assert not np.array_equal(passes[0], passes[1])


def test_torch_queue_stops_early_and_passes_errors_on():
    pytest.importorskip("torch")
    from pipelines.device import TorchPrefetchLoader

    dataset = tf.data.Dataset.range(50).batch(2).map(lambda x: (x, x))
    iterator = iter(TorchPrefetchLoader(dataset, device="cpu", buffer_size=1))
    assert next(iterator)[0].tolist() == [0, 1]
    iterator.close()  # the background thread ends instead of blocking on the full queue

    bad = tf.data.Dataset.from_tensor_slices([1.0, np.nan]).map(
        lambda x: (tf.debugging.check_numerics(x, "bad value"), x)
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="bad value"):
        list(TorchPrefetchLoader(bad, device="cpu"))


def test_fit_accepts_the_torch_loader(backend, digits):
    if backend != "torch":
        pytest.skip("the DataLoader path is what the PyTorch backend gets")
    import keras

    from pipelines.device import TorchPrefetchLoader

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loader = TorchPrefetchLoader.data_loader(digits.train, device="cpu")
    history = model.fit(loader, epochs=2, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


# --- single-use sources: a user's generator (for_fit itself passes a function, below)


def _numbered_batches(count: int):
    """A single-use iterator of ``count`` batches whose content is their index."""
    for index in range(count):
        yield np.full((2, 3), index, np.float32), np.full((2,), index % 2, np.int32)


def test_torch_queue_over_a_single_use_iterator_loses_nothing_a_pass_left_behind():
    """Keras's torch ``fit`` draws one batch, then starts a new pass: what the background
    thread had already taken from a single-use iterator must reach the next pass."""
    pytest.importorskip("torch")
    import threading

    import torch

    from pipelines.device import TorchPrefetchLoader

    copied = threading.Semaphore(0)

    def counting_copy(array):  # the swappable copy step: lets the test see the thread run ahead
        copied.release()
        return torch.from_numpy(np.array(array))

    loader = TorchPrefetchLoader(_numbered_batches(12), device="cpu", buffer_size=2,
                                 copy=counting_copy)
    first = iter(loader)
    assert int(next(first)[0][0, 0]) == 0
    for _ in range(2 * 3):  # the thread has copied (x, y) of three more batches
        assert copied.acquire(timeout=10)
    first.close()
    got = [int(x[0, 0]) for x, _ in loader]
    assert got == list(range(1, 12))


def test_the_source_for_fit_passes_starts_afresh_on_every_pass(backend, monkeypatch):
    """The path ``for_fit`` really uses: it hands the loader a function of the stream
    (not a single-use iterator). Keras's torch ``fit`` draws one batch, abandons that
    pass while the thread has run ahead, and starts another: the new pass must begin
    at the stream's batch ``skip`` again, whatever the first pass's thread took."""
    if backend != "torch":
        pytest.skip("for_fit gives the prefetch loader on the PyTorch backend only")
    import threading

    import torch

    import pipelines.feed
    from pipelines.device import TorchPrefetchLoader

    sources = []
    real = TorchPrefetchLoader.data_loader.__func__
    monkeypatch.setattr(TorchPrefetchLoader, "data_loader", classmethod(
        lambda cls, dataset, **kw: (sources.append(dataset), real(cls, dataset, **kw))[1]))
    stream = pipelines.load("digits", batch_size=128, seed=3, repeat=True)
    skip = 2
    pipelines.feed.for_fit(stream.stream, skip=skip, batches_per_fetch=4, device="cpu")
    (source,) = sources
    assert callable(source)  # what the loader gets from for_fit

    copied = threading.Semaphore(0)

    def counting_copy(array):  # the swappable copy step: lets the test see the thread run ahead
        copied.release()
        return torch.from_numpy(np.array(array))

    loader = TorchPrefetchLoader(source, device="cpu", buffer_size=2, copy=counting_copy)
    expected = [x for x, _ in itertools.islice(stream.train.as_numpy_iterator(),
                                               skip, skip + 6)]
    first = iter(loader)
    np.testing.assert_array_equal(next(first)[0].numpy(), expected[0])
    for _ in range(2 * 2):  # the thread has copied (x, y) of two more batches
        assert copied.acquire(timeout=10)
    first.close()
    second = [x.numpy() for x, _ in itertools.islice(iter(loader), 6)]
    for index, (got, want) in enumerate(zip(second, expected, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"batch {index} of the second pass")


def test_fit_on_torch_trains_on_the_streams_batches_in_order(backend):
    """``for_fit``'s PyTorch loader (the CUDA path, on the CPU) across Keras's iterator
    reset and epoch ends: the model trains on batch 0, 1, 2, … of the stream."""
    if backend != "torch":
        pytest.skip("the prefetch loader is what the PyTorch backend gets")
    import keras

    import pipelines.feed

    stream = pipelines.load("digits", batch_size=128, seed=3, repeat=True)
    steps = int(np.ceil(stream.info.num_examples["train"] / 128))  # 11, the last one short
    trained: list[np.ndarray] = []

    class Recording(keras.Sequential):
        def train_step(self, data):
            trained.append(keras.ops.convert_to_numpy(data[0]).copy())
            return super().train_step(data)

    keras.utils.set_random_seed(1)
    model = Recording([keras.Input((64,)), keras.layers.Dense(10)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    skip = 3
    fed = pipelines.feed.for_fit(stream.stream, skip=skip, batches_per_fetch=4, device="cpu")
    assert isinstance(fed, __import__("torch").utils.data.DataLoader)
    model.fit(fed, steps_per_epoch=steps, epochs=2, verbose=0, shuffle=False)
    expected = [x for x, _ in itertools.islice(stream.train.as_numpy_iterator(),
                                               skip, skip + 2 * steps)]
    assert len(trained) == len(expected)
    for index, (got, want) in enumerate(zip(trained, expected, strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"batch {index}")
