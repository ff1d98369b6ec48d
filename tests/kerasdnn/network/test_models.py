"""build_model / DNN: architecture, parameter count, config round trip, errors,
and same seed → the same initial weights on every backend (against NumPy goldens)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from kerasdnn.core.config import ModelConfig
from kerasdnn.core.errors import ConfigError
from kerasdnn.network.models import DNN, build_model

GOLDEN_CASES = {
    "digits_64_32_16_10_seed1337": dict(input_shape=(64,), hidden_units=(32, 16),
                                        num_classes=10, seed=1337),
    "images_8x8_24_binary_seed7": dict(input_shape=(8, 8), hidden_units=(24,),
                                       num_classes=2, seed=7),
}


def test_seed_architecture_has_520260_parameters():
    model = build_model()
    assert model.count_params() == 520_260
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 520_260
    assert [layer.name for layer in model.layers] == ["inputs", "hidden_1", "hidden_2", "logits"]
    assert model.output_shape == (None, 10)
    assert isinstance(model, DNN) and model.compiled


def test_config_json_round_trip_through_the_model():
    config = ModelConfig(input_shape=(8, 8), hidden_units=(12, 6), num_classes=3, dropout=0.25,
                         batch_norm=True, l2=1e-4, optimizer="adamw", learning_rate=3e-3,
                         clipnorm=2.0, seed=11, metrics=("accuracy", "auc"))
    model = build_model(json.loads(config.to_json()))
    assert model.model_config == config
    assert ModelConfig.from_dict(model.get_config()["model_config"]) == config
    rebuilt = DNN.from_config(json.loads(json.dumps(model.get_config())))
    assert rebuilt.model_config == config
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]


def test_layers_follow_the_config():
    model = build_model(input_shape=(8, 8), hidden_units=(12, 6), num_classes=3, dropout=0.25,
                        batch_norm=True, l2=1e-4)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Flatten", "Dense", "BatchNormalization", "Dropout",
                     "Dense", "BatchNormalization", "Dropout", "Dense"]
    hidden = model.get_layer("hidden_1")
    assert hidden.kernel_regularizer.get_config()["l2"] == pytest.approx(1e-4)
    assert hidden.get_config()["activation"] == "relu"
    assert model.output_shape == (None, 3)
    assert build_model(input_shape=(5,), hidden_units=(), num_classes=2).count_params() == 6


def test_loss_metrics_and_optimizer_follow_the_config():
    multi = build_model(input_shape=(4,), hidden_units=(3,), metrics=("accuracy", "auc"),
                        optimizer="adam", learning_rate=0.005)
    assert isinstance(multi.loss, keras.losses.SparseCategoricalCrossentropy)
    assert multi.loss.get_config()["from_logits"] is True
    assert isinstance(multi.optimizer, keras.optimizers.Adam)
    assert float(multi.optimizer.learning_rate) == pytest.approx(0.005)

    binary = build_model(input_shape=(4,), hidden_units=(3,), num_classes=2, optimizer="adamw",
                         weight_decay=0.01)
    assert binary.output_shape == (None, 1)
    assert isinstance(binary.loss, keras.losses.BinaryCrossentropy)
    assert binary.loss.get_config()["from_logits"] is True
    assert binary.optimizer.weight_decay == pytest.approx(0.01)

    sgd = build_model(input_shape=(4,), hidden_units=(3,))
    assert isinstance(sgd.optimizer, keras.optimizers.SGD)
    assert sgd.optimizer.momentum == pytest.approx(0.9)
    assert float(sgd.optimizer.learning_rate) == pytest.approx(0.01)


def test_mixed_precision_keeps_float32_logits_and_scales_the_loss():
    model = build_model(input_shape=(4,), hidden_units=(8,), mixed_precision=True)
    assert model.get_layer("hidden_1").dtype_policy.name == "mixed_float16"
    assert model.get_layer("hidden_1").compute_dtype == "float16"
    assert model.get_layer("logits").compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    logits = model.predict(np.ones((2, 4), np.float32), verbose=0)
    assert logits.dtype == np.float32


def _identity_model(num_classes: int) -> DNN:
    """A linear model whose logits are its inputs (identity kernel, zero bias)."""
    units = 1 if num_classes == 2 else num_classes
    model = build_model(input_shape=(units,), hidden_units=(), num_classes=num_classes,
                        metrics=("accuracy", "auc"))
    model.set_weights([np.eye(units, dtype=np.float32), np.zeros(units, np.float32)])
    return model


# Keras's AUC counts at 200 thresholds (0 - eps, 1/199, ..., 198/199, 1 + eps). When
# every predicted probability of a class lies in a bin of its own, its ROC points are
# exactly scikit-learn's and the trapezoid areas are equal: the metric can then be held
# to scikit-learn at float32 precision, not 0.01.
_BINS = 199


def _one_per_bin(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct bin centres (k + 0.5) / 199, in random order."""
    return (rng.choice(_BINS, size=count, replace=False) + 0.5) / _BINS


def _rows_one_per_bin(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` probability rows over 3 classes whose every column has its values in
    distinct bins, at least 0.1 of a bin from the thresholds (rejection sampling)."""
    used: list[set[int]] = [set(), set(), set()]
    rows: list[np.ndarray] = []
    while len(rows) < count:
        a, b = _one_per_bin(2, rng) / 2
        row = rng.permutation([a, b, 1.0 - a - b])
        bins = np.floor(row * _BINS).astype(int)
        margin = np.abs(row * _BINS - np.round(row * _BINS)).min()
        if margin > 0.1 and all(int(k) not in seen for k, seen in zip(bins, used, strict=True)):
            for k, seen in zip(bins, used, strict=True):
                seen.add(int(k))
            rows.append(row)
    return np.array(rows)


def test_accuracy_and_auc_read_logits_and_integer_labels():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    probs = _rows_one_per_bin(60, rng)
    logits = np.log(probs).astype(np.float32)  # softmax(log p) = p
    labels = rng.integers(0, 3, 60).astype(np.int32)
    logs = _identity_model(3).evaluate(logits, labels, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    expected = roc_auc_score(labels, probs, multi_class="ovr", average="macro")
    assert logs["auc"] == pytest.approx(expected, abs=1e-6)
    assert "grad_norm" not in logs and "skipped_steps" not in logs


def test_binary_accuracy_and_auc_read_one_logit():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    positive = _one_per_bin(60, rng)
    logits = np.log(positive / (1 - positive)).astype(np.float32)[:, None]  # sigmoid⁻¹
    labels = (rng.random(60) < positive).astype(np.int32)
    logs = _identity_model(2).evaluate(logits, labels, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(np.mean((logits[:, 0] > 0) == labels))
    assert logs["auc"] == pytest.approx(roc_auc_score(labels, logits[:, 0]), abs=1e-6)
    z, t = logits[:, 0].astype(np.float64), labels
    bce = np.mean(np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0) - z * t)
    assert logs["loss"] == pytest.approx(bce, rel=1e-5)


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_same_seed_gives_the_stored_numpy_weights_on_every_backend(case, data_dir):
    golden = np.load(data_dir / "initial_weights.npz")
    model = build_model(**GOLDEN_CASES[case])
    weights = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    expected = {key.split("/", 1)[1]: golden[key] for key in golden.files
                if key.startswith(case + "/")}
    assert sorted(weights) == sorted(expected)
    for path, value in expected.items():
        np.testing.assert_array_equal(weights[path], value, err_msg=path)


def test_another_seed_gives_other_weights():
    first = build_model(input_shape=(6,), hidden_units=(4,), seed=1)
    second = build_model(input_shape=(6,), hidden_units=(4,), seed=2)
    kernel = "hidden_1/kernel"
    a = {w.path: keras.ops.convert_to_numpy(w) for w in first.weights}[kernel]
    b = {w.path: keras.ops.convert_to_numpy(w) for w in second.weights}[kernel]
    assert not np.allclose(a, b)


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"num_classes": 1}, "num_classes"),
        ({"dropout": 1.0}, "dropout"),
        ({"activation": "softmax"}, "activation"),
        ({"hidden_units": (10, -1)}, "hidden_units"),
        ({"metrics": ("accuracy", "f1")}, "metrics"),
        ({"clipnorm": -1.0}, "clipnorm"),
    ],
)
def test_bad_values_raise_a_config_error_naming_the_parameter(overrides, parameter):
    with pytest.raises(ConfigError, match=parameter):
        build_model(**overrides)


def test_unknown_override_is_refused_with_the_known_keys():
    with pytest.raises(ConfigError, match=r"hidden_layers.*known keys:.*hidden_units"):
        build_model(hidden_layers=(10,))
    with pytest.raises(ConfigError, match="ModelConfig"):
        build_model(["not", "a", "config"])


def test_steps_per_execution_is_honoured_on_every_backend():
    # PyTorch included: Keras 3.15 refuses more than 1 there, kerasdnn's step runs them.
    model = build_model(input_shape=(4,), hidden_units=(3,), steps_per_execution=4)
    assert model.model_config.steps_per_execution == 4
    assert model.steps_per_execution == 4


def test_a_model_saved_before_the_metrics_module_was_renamed_still_loads(tmp_path):
    """kerasdnn.metrics became kerasdnn.network.step_metrics: a .keras file that names the old
    module loads by the registered names (``kerasdnn>LogitsAUC``), which stay."""
    import zipfile

    model = build_model(input_shape=(4,), hidden_units=(3,), num_classes=3,
                        metrics=("accuracy", "auc"))
    x, y = np.ones((6, 4), np.float32), np.arange(6) % 3
    model.optimizer.build(model.trainable_variables)  # as a trained model's file holds it
    new, old = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(new)
    with zipfile.ZipFile(new) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                assert b'"kerasdnn>LogitsAUC"' in data
                assert b'"kerasdnn.network.step_metrics"' in data
                data = data.replace(b'"kerasdnn.network.step_metrics"', b'"kerasdnn.metrics"')
            target.writestr(item, data)
    loaded = keras.saving.load_model(old)
    logs = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert logs == model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy", "auc"}
