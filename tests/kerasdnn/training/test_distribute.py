"""The exact padding of data-parallel batches (:mod:`kerasdnn.training.distribute`), in process."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from kerasdnn.core.errors import ConfigError
from kerasdnn.network.steps import batch_rows, metric_weights, padded_rows
from kerasdnn.training.distribute import (
    Processes,
    configure_devices,
    initialize_processes,
    launched_processes,
    pad_batch,
    padded_dataset,
    padded_iterator,
)
from pipelines.backends import backend_spec


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(7, 3)).astype(np.float32), rng.integers(0, 4, size=7)


def test_padding_keeps_every_row_and_fills_to_a_multiple(batch) -> None:
    x, y = batch
    xp, yp, w = pad_batch(x, y, 4)
    assert xp.shape == (8, 3) and yp.shape == (8,)
    np.testing.assert_array_equal(xp[:7], x)
    np.testing.assert_array_equal(yp[:7], y)
    np.testing.assert_allclose(w, [8 / 7] * 7 + [0.0], rtol=1e-7)
    _, _, full = pad_batch(x[:4], y[:4], 4)
    np.testing.assert_array_equal(full, np.ones(4, np.float32))


def test_the_padded_loss_and_counts_are_the_real_rows(batch, monkeypatch) -> None:
    import kerasdnn.network.steps

    monkeypatch.setattr(kerasdnn.network.steps, "distributed", lambda: True)  # as under replicas
    x, y = batch
    logits = np.random.default_rng(1).normal(size=(7, 4))
    # NumPy float64 reference: the mean cross-entropy of the 7 real rows.
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_proba = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    reference = -log_proba[np.arange(7), y].mean()
    _, yp, w = pad_batch(x, y, 4)
    padded_logits = np.concatenate([logits, np.zeros((1, 4))]).astype(np.float32)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        yp, padded_logits, sample_weight=w)
    np.testing.assert_allclose(float(loss), reference, rtol=1e-6)
    assert float(batch_rows(padded_logits, w)) == pytest.approx(7.0, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(metric_weights(w)), [1] * 7 + [0])


def _mean_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """NumPy float64 reference."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_proba = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_proba[np.arange(len(labels)), labels].mean())


@pytest.mark.parametrize(("real", "replicas"), [(5, 4), (6, 4), (1, 4), (3, 10), (4, 10)])
def test_replicas_of_filler_rows_only_count_the_real_rows_exactly(
        batch, monkeypatch, real: int, replicas: int) -> None:
    """Each replica's loss (its own rows' weighted mean, as Keras computes it) counted
    for :func:`batch_rows` of it, given the whole batch's :func:`padded_rows`, makes the
    epoch's running mean the real rows' mean, when some replicas hold filler only."""
    import kerasdnn.network.steps

    monkeypatch.setattr(kerasdnn.network.steps, "distributed", lambda: True)  # as under replicas
    x, y = np.resize(batch[0], (real, 3)), np.resize(batch[1], real)
    logits = np.random.default_rng(real).normal(size=(real, 4))
    _, yp, w = pad_batch(x, y, replicas)
    share = len(w) // replicas
    assert not w[-share:].any()  # the last replica: filler only
    padded_logits = np.concatenate([logits, np.zeros((len(w) - real, 4))]).astype(np.float32)
    whole = padded_rows(w)
    tracker = keras.metrics.Mean()
    for replica in range(replicas):
        rows = slice(replica * share, (replica + 1) * share)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
            yp[rows], padded_logits[rows], sample_weight=w[rows])
        counted = batch_rows(padded_logits[rows], w[rows], whole)
        tracker.update_state(loss, sample_weight=counted)
    np.testing.assert_allclose(float(tracker.result()), _mean_cross_entropy(logits, y),
                               rtol=1e-6)
    np.testing.assert_allclose(float(tracker.count), real, rtol=1e-6)


def test_each_process_takes_its_equal_share(batch) -> None:
    x, y = batch
    whole = pad_batch(x, y, 4)
    shares = [next(padded_iterator(iter([(x, y)]), 4, Processes(index, 2)))
              for index in range(2)]
    for part, array in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([s[part] for s in shares]), array)


def test_the_dataset_padding_is_the_array_padding(batch) -> None:
    import tensorflow as tf

    x, y = batch
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(5)
    got = list(padded_dataset(dataset, 2, Processes(1, 2)).as_numpy_iterator())
    wanted = [tuple(a[len(a) // 2:] for a in pad_batch(x[i:i + 5], y[i:i + 5], 2))
              for i in (0, 5)]
    assert len(got) == 2
    for mine, theirs in zip(got, wanted, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-7)


def test_an_eager_step_gets_full_batches_unweighted(batch) -> None:
    """PyTorch's native step path takes unweighted batches: only a padded batch is weighted."""
    x, y = batch
    got = list(padded_iterator(iter([(x[:4], y[:4]), (x[4:], y[4:])]), 2, Processes(1, 2),
                               full_weights=False))
    assert [len(share) for share in got] == [2, 3]
    np.testing.assert_array_equal(got[0][0], x[2:4])
    np.testing.assert_allclose(got[1][2], [4 / 3, 0.0], rtol=1e-7)  # 3 rows padded to 4


def test_torch_trains_on_one_device_per_process() -> None:
    with pytest.raises(ConfigError, match="each process trains on one device; start 2 processes"):
        configure_devices("torch", 2)


def test_a_backend_without_an_engine_is_refused(monkeypatch) -> None:
    import kerasdnn.training.distribute as distribute

    spec = dataclasses.replace(backend_spec("jax"), data_parallel=None)
    monkeypatch.setattr(distribute, "backend_spec", lambda name: spec)
    with pytest.raises(ConfigError, match="--data-parallel is not available on the jax backend"):
        configure_devices("jax", 2)


@pytest.mark.parametrize(("backend", "variable"), [("torch", "WORLD_SIZE"),
                                                   ("jax", "KERAS_DISTRIBUTION_NUM_PROCESSES")])
def test_a_launched_process_without_data_parallel_is_refused(monkeypatch, backend,
                                                             variable) -> None:
    """Under torchrun (or with Keras's variables) each process would train alone."""
    from kerasdnn.core.config import TrainConfig
    from kerasdnn.training.run import _start_distribution

    monkeypatch.setenv(variable, "2")
    assert launched_processes(backend) == 2
    with pytest.raises(ConfigError, match=r"one of 2 processes .* add --data-parallel"):
        _start_distribution(backend, TrainConfig(), None, None, None)


def test_a_torch_run_needs_all_three_flags() -> None:
    pytest.importorskip("torch")
    with pytest.raises(ConfigError, match="needs all of --coordinator HOST:PORT"):
        initialize_processes("torch", "127.0.0.1:1", None, 0)
