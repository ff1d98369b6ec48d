"""Device prefetch: on a CPU-only machine an identity; the PyTorch background queue
keeps order and content (run here with device="cpu")."""

from __future__ import annotations

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
