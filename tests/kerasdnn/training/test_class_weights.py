"""Class weights (kerasdnn.training.class_weights): the weights themselves against their formula,
and the training of a kerasdnn model on the weighted stream against stock Keras
``fit(class_weight=...)`` on the same weights and data, on the backend of the tox env."""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasdnn.core.config import TrainConfig
from kerasdnn.core.errors import ConfigError
from kerasdnn.network.models import build_model
from kerasdnn.training.class_weights import class_weight_vector, weighted_stream


def test_balanced_weights_are_n_over_classes_times_count():
    labels = np.array([0] * 6 + [1] * 3 + [2])
    expected = [10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)]
    np.testing.assert_allclose(class_weight_vector("balanced", np.bincount(labels),
                                                   ["a", "b", "c"]), expected)


def test_a_mapping_names_classes_by_name_or_index_and_the_rest_weigh_one():
    names = ["cat", "dog", "owl"]
    assert class_weight_vector({"owl": 4, "0": 2}, np.array([1, 0, 0]), names).tolist() == [
        2, 1, 4]
    with pytest.raises(ConfigError, match="names no class 'eel'; the classes are cat, dog, owl"):
        class_weight_vector({"eel": 1}, np.array([1, 0, 0]), names)
    with pytest.raises(ConfigError, match=r"class\(es\) owl have no training example"):
        class_weight_vector("balanced", np.array([2, 1, 0]), names)


def test_a_streamed_epochs_classes_are_counted_batch_by_batch_not_read_as_one_block():
    from kerasdnn.training.class_weights import training_class_counts

    labels = np.arange(1000) % 3
    asked = []

    class Stream:  # an epoch of 10 batches of 100 rows
        batches_per_epoch = 10

        def blocks(self, first_epoch: int, batches_per_block: int) -> tf.data.Dataset:
            asked.append(batches_per_block)
            return tf.data.Dataset.from_tensor_slices((np.zeros((1000, 2)), labels)).batch(
                100 * batches_per_block).repeat()

    splits = types.SimpleNamespace(stream=Stream(), validation=None)
    assert training_class_counts(splits, 3).tolist() == np.bincount(labels).tolist()
    assert asked == [1]  # a batch at a time: a streamed table is never held whole


def test_the_config_refuses_bad_weights():
    with pytest.raises(ConfigError, match="class_weight must be"):
        TrainConfig(class_weight={"0": -1})
    with pytest.raises(ConfigError, match="class_weight must be"):
        TrainConfig(class_weight="heavy")
    assert TrainConfig(class_weight={0: 2}).class_weight == {"0": 2}  # JSON's string keys


@pytest.mark.parametrize("classes", [3, 2])
def test_the_loss_and_weights_equal_stock_keras_fit_with_class_weight(classes):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    y = rng.integers(0, classes, 40).astype(np.int32)
    weights = {0: 0.5, 1: 3.0, 2: 1.5} if classes == 3 else {0: 0.25, 1: 2.0}

    ours = build_model(input_shape=(8,), hidden_units=(16,), num_classes=classes, seed=5,
                       momentum=0.9, learning_rate=0.05, metrics=(), steps_per_execution=1)
    stock = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(ours.model_config.output_units)])
    stock.set_weights(ours.get_weights())
    stock.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=(keras.losses.BinaryCrossentropy(from_logits=True) if classes == 2 else
                        keras.losses.SparseCategoricalCrossentropy(from_logits=True)))
    expected = stock.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0,
                         class_weight=weights).history["loss"]

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    splits = types.SimpleNamespace(stream=None, train=dataset, info=types.SimpleNamespace(
        class_names=[str(c) for c in range(classes)]))
    config = TrainConfig(class_weight={str(k): v for k, v in weights.items()})
    got = ours.fit(weighted_stream(dataset, splits, config), epochs=2, verbose=0,
                   shuffle=False).history["loss"]

    np.testing.assert_allclose(got, expected, rtol=1e-5)
    for a, b in zip(ours.get_weights(), stock.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_the_cli_trains_with_balanced_weights(tmp_path):
    from kerasdnn.train import main

    assert main(["--dataset", "digits", "--epochs", "1", "--hidden", "8", "--batch-size", "256",
                 "--class-weight", "balanced", "--quiet", "--out", str(tmp_path / "r")]) == 0
    import json

    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"][
        "class_weight"] == "balanced"


def test_a_bad_class_weight_flag_is_one_line(capsys):
    from kerasdnn.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--class-weight", "{not json"])
    assert exit_info.value.code == 2
    assert "--class-weight" in capsys.readouterr().err


def test_the_estimators_class_weight_is_scikit_learns():
    from kerasdnn.training.estimator import DNNClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.array(["rare"] * 10 + ["common"] * 50)
    settings = dict(hidden_units=(4,), epochs=2, batch_size=60, random_state=0)
    balanced = DNNClassifier(class_weight="balanced", **settings).fit(X, y)
    # the same as sample weights n / (2 * count): 3 for "rare", 0.6 for "common"
    weights = np.where(y == "rare", 60 / 20, 60 / 100)
    by_hand = DNNClassifier(**settings).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(balanced.history_["loss"], by_hand.history_["loss"], rtol=1e-6)
    plain = DNNClassifier(**settings).fit(X, y)
    assert not np.allclose(plain.history_["loss"], balanced.history_["loss"])
    mapping = DNNClassifier(class_weight={"rare": 3, "common": 0.6}, **settings).fit(X, y)
    np.testing.assert_allclose(mapping.history_["loss"], by_hand.history_["loss"], rtol=1e-6)
