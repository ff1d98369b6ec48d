"""kerasdnn.evaluation.predict: probabilities from logits against NumPy float64 references,
labels and predictions kept aligned, and the data settings a run was trained on."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics
from sklearn.datasets import load_digits

from kerasdnn.core.config import TrainConfig
from kerasdnn.core.errors import ConfigError
from kerasdnn.evaluation.predict import collect


def _softmax64(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _sigmoid64(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def _logits(model, x: np.ndarray) -> np.ndarray:
    """The model's raw outputs by a direct call (not through predict)."""
    import keras

    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x[1200:] / 16.0).astype("float32"), y[1200:].astype("int32")


@pytest.fixture(scope="module")
def model():
    """A seeded digits network; its predictions are compared with its own logits."""
    from kerasdnn.network.models import build_model

    return build_model(input_shape=(64,), hidden_units=(32,), seed=7)


def test_logits_to_proba_matches_float64_reference() -> None:
    from kerasdnn.evaluation.predict import logits_to_proba

    logits = np.random.default_rng(0).normal(scale=30, size=(50, 10)).astype("float32")
    np.testing.assert_allclose(logits_to_proba(logits, binary=False), _softmax64(logits),
                               rtol=1e-12, atol=1e-15)
    one = logits[:, :1]
    expected = np.concatenate([1 - _sigmoid64(one), _sigmoid64(one)], axis=1)
    np.testing.assert_allclose(logits_to_proba(one, binary=True), expected, atol=1e-15)
    with pytest.raises(ConfigError):
        logits_to_proba(logits, binary=True)


def test_predict_proba_on_arrays_and_datasets(model, digits) -> None:
    import tensorflow as tf

    import kerasdnn
    from kerasdnn.evaluation.predict import predict_proba

    assert kerasdnn.predict_proba is predict_proba  # the public name
    x, y = digits
    expected = _softmax64(_logits(model, x[:200]))
    from_array = predict_proba(model, x[:200], batch_size=64)
    from_dataset = predict_proba(model, tf.data.Dataset.from_tensor_slices((x[:200], y[:200]))
                                 .batch(64))
    assert from_array.shape == (200, 10)
    np.testing.assert_allclose(from_array, expected, atol=1e-6)
    np.testing.assert_allclose(from_dataset, expected, atol=1e-6)


def test_binary_head_gives_two_columns() -> None:
    from kerasdnn.evaluation.predict import collect, predict_proba
    from kerasdnn.network.models import build_model

    binary = build_model(input_shape=(64,), hidden_units=(8,), num_classes=2, seed=3)
    x = np.random.default_rng(1).uniform(size=(30, 64)).astype("float32")
    logits = _logits(binary, x)
    assert logits.shape == (30, 1)
    prob = predict_proba(binary, x)
    np.testing.assert_allclose(prob[:, 1], _sigmoid64(logits[:, 0]), atol=1e-6)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-12)
    y_true, y_prob = collect(binary, [(x[:10], np.ones(10)), (x[10:], np.zeros(20))])
    assert y_prob.shape == (30, 2) and y_true.tolist() == [1] * 10 + [0] * 20


def test_collect_keeps_labels_aligned_on_a_reshuffling_dataset(model, digits) -> None:
    import tensorflow as tf

    from kerasdnn.evaluation.predict import collect

    x, y = digits
    reference = _logits(model, x).argmax(axis=1)
    shuffled = (tf.data.Dataset.from_tensor_slices((x, y))
                .shuffle(len(y), seed=5, reshuffle_each_iteration=True).batch(50))
    y_true, y_prob = collect(model, shuffled)
    assert sorted(y_true.tolist()) == sorted(y.tolist())
    assert not np.array_equal(y_true, y)  # really shuffled
    expected_accuracy = metrics.accuracy_score(y, reference)
    assert metrics.accuracy_score(y_true, y_prob.argmax(axis=1)) == pytest.approx(
        expected_accuracy)
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))  # one example per element
    y_true, y_prob = collect(model, unbatched)
    np.testing.assert_array_equal(y_true, y)
    np.testing.assert_array_equal(y_prob.argmax(axis=1), reference)


def test_collect_refuses_batches_without_labels_and_empty_data(model, digits) -> None:
    from kerasdnn.evaluation.predict import collect

    x, _ = digits
    with pytest.raises(ConfigError, match="with labels"):
        collect(model, [x[:5]])
    with pytest.raises(ConfigError, match="empty"):
        collect(model, [])


def test_trained_data_is_what_the_run_resolved() -> None:
    from kerasdnn.evaluation.predict import trained_data

    assert trained_data(None) == TrainConfig()
    record = {"train": TrainConfig(dataset="auto", seed=3, validation_split=0.2,
                                   batch_size=50).to_dict(),
              "dataset": {"source": "digits", "scale": "standardize"}}
    assert trained_data(record) == TrainConfig(dataset="digits", seed=3, validation_split=0.2,
                                               batch_size=50, scale="standardize")
    named = {"train": TrainConfig(dataset="npz:/data/x.npz", scale="unit").to_dict(),
             "dataset": {}}
    assert trained_data(named) == TrainConfig(dataset="npz:/data/x.npz", scale="unit")


class _Identity:
    """A "model" whose logits are its input: collect's rows traceable through it."""

    input_shape = (None, 2)
    output_shape = (None, 2)

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float32)


def _rows(count: int, batch: int = 700) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(x, y)`` batches whose row ``i`` is ``x = [i / 10000, 0]``, ``y = i``."""
    index = np.arange(count)
    return [(np.stack([index[s:s + batch] / 10_000, np.zeros(len(index[s:s + batch]))],
                      axis=1), index[s:s + batch]) for s in range(0, count, batch)]


def test_collect_with_max_rows_keeps_every_row_when_there_are_no_more() -> None:
    y_true, y_prob = collect(_Identity(), _rows(500), max_rows=500)
    expected_true, expected_prob = collect(_Identity(), _rows(500))
    np.testing.assert_array_equal(y_true, expected_true)
    np.testing.assert_array_equal(y_prob, expected_prob)


def test_collect_with_max_rows_keeps_a_seeded_uniform_sample_in_order() -> None:
    from scipy import stats

    def sampled(seed: int) -> np.ndarray:
        rows, y_prob = collect(_Identity(), _rows(20_000), max_rows=2_000, seed=seed)
        assert len(rows) == 2_000 and len(np.unique(rows)) == 2_000
        from_logits = np.log(y_prob[:, 0] / y_prob[:, 1]) * 10_000  # softmax of [i / 1e4, 0]
        np.testing.assert_allclose(from_logits, rows, atol=0.5)  # predictions stay with rows
        return rows

    first = sampled(0)
    assert np.all(np.diff(first) > 0)  # in the dataset's order
    np.testing.assert_array_equal(sampled(0), first)
    assert len(np.intersect1d(sampled(1), first)) < 400  # another seed, another sample
    # every row equally likely: the positions are uniform on [0, 20000)
    assert stats.kstest(first, stats.uniform(0, 20_000).cdf).pvalue > 1e-3


def test_collect_with_max_rows_holds_at_most_twice_its_rows() -> None:
    from kerasdnn.evaluation.predict import _Sample

    sample, largest = _Sample(1_000, seed=0), 0
    for x, y in _rows(50_000, batch=300):
        sample.add(y, x)
        largest = max(largest, sample.held)
    assert largest <= 2 * 1_000 + 300
    assert len(sample.result()[1]) == 1_000
