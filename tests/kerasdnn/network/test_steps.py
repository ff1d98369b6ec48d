"""The custom training step of the active backend.

* parity with Keras's stock ``train_step`` (same layers, weights, batches);
* parity with an independent float64 NumPy reference (tests/kerasdnn/reference.py)
  from weights stored in tests/data, for the softmax and the sigmoid head;
* global-norm clipping and the logged ``grad_norm``;
* the non-finite guard (``skipped_steps``), through ``train_on_batch`` and ``fit``,
  with ``steps_per_execution > 1`` (PyTorch included: its steps run one after another).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasdnn.network.models import build_model
from tests.kerasdnn import reference

BATCH = 16
SMALL = dict(input_shape=(64,), hidden_units=(32, 16), num_classes=10, metrics=())


@pytest.fixture(scope="module")
def start(data_dir):
    return dict(np.load(data_dir / "reference_start.npz"))


def _batches(start, count=10, binary=False):
    labels = start["y_binary"] if binary else start["y"]
    return [(start["x"][i * BATCH:(i + 1) * BATCH], labels[i * BATCH:(i + 1) * BATCH])
            for i in range(count)]


def _start_weights(start, binary=False):
    head = "binary_logits" if binary else "logits"
    return [(start[f"{name}/kernel"], start[f"{name}/bias"])
            for name in ("hidden_1", "hidden_2", head)]


def _model_from(start, binary=False, **overrides):
    model = build_model(**{**SMALL, "num_classes": 2 if binary else 10, **overrides})
    model.set_weights([array for pair in _start_weights(start, binary) for array in pair])
    return model


def _numpy(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _assert_weights_close(model, expected, atol):
    actual = _numpy(model.trainable_weights)
    for got, want in zip(actual, [a for pair in expected for a in pair], strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)


# -- the reference itself ------------------------------------------------------------------

@pytest.mark.parametrize("binary", [False, True])
def test_reference_gradients_match_finite_differences(start, binary):
    weights = reference.as_float64(_start_weights(start, binary))
    x, y = _batches(start, 1, binary)[0]
    _, grads = reference.loss_and_grads(weights, x, y, binary=binary)
    rng = np.random.default_rng(3)
    eps = 1e-6
    for layer in range(len(weights)):
        for part in (0, 1):
            index = tuple(rng.integers(0, s) for s in weights[layer][part].shape)
            plus = [[w.copy(), b.copy()] for w, b in weights]
            minus = [[w.copy(), b.copy()] for w, b in weights]
            plus[layer][part][index] += eps
            minus[layer][part][index] -= eps
            numeric = (reference.loss_and_grads(plus, x, y, binary)[0]
                       - reference.loss_and_grads(minus, x, y, binary)[0]) / (2 * eps)
            assert grads[layer][part][index] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


# -- parity with the float64 reference -----------------------------------------------------

@pytest.mark.parametrize("binary", [False, True], ids=["softmax", "sigmoid"])
def test_ten_sgd_steps_match_the_float64_reference(start, binary):
    batches = _batches(start, 10, binary)
    losses, norms, final = reference.train(_start_weights(start, binary), batches,
                                           learning_rate=0.05, momentum=0.9, binary=binary)
    model = _model_from(start, binary, learning_rate=0.05, momentum=0.9)
    for step, (x, y) in enumerate(batches):
        logs = model.train_on_batch(x, y, return_dict=True)
        assert logs["loss"] == pytest.approx(losses[step], rel=1e-4), f"step {step}"
        assert logs["grad_norm"] == pytest.approx(norms[step], rel=1e-4), f"step {step}"
        assert logs["skipped_steps"] == 0
    _assert_weights_close(model, final, atol=1e-5)


def test_clipping_uses_the_global_norm_before_clipping(start):
    batches = _batches(start, 4)
    clipnorm = 0.3
    losses, norms, final = reference.train(_start_weights(start), batches, learning_rate=0.05,
                                           momentum=0.9, clipnorm=clipnorm)
    assert min(norms) > clipnorm  # every step is really clipped
    model = _model_from(start, learning_rate=0.05, momentum=0.9, clipnorm=clipnorm)
    for step, (x, y) in enumerate(batches):
        logs = model.train_on_batch(x, y, return_dict=True)
        assert logs["grad_norm"] == pytest.approx(norms[step], rel=1e-5), f"step {step}"
        assert logs["loss"] == pytest.approx(losses[step], rel=1e-4), f"step {step}"
    _assert_weights_close(model, final, atol=1e-6)


def test_grad_norm_is_unscaled_under_mixed_precision(start):
    x, y = _batches(start, 1)[0]
    _, norms, _ = reference.train(_start_weights(start), [(x, y)], learning_rate=0.05,
                                  momentum=0.9)
    model = _model_from(start, mixed_precision=True)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs["grad_norm"] == pytest.approx(norms[0], rel=1e-2)  # float16 forward pass


# -- parity with Keras's stock train_step ----------------------------------------------------

def _stock_twin(model):
    """A plain keras.Sequential with the same layers, weights and compile arguments."""
    layers = [type(layer).from_config(layer.get_config()) for layer in model.layers[1:]]
    stock = keras.Sequential([keras.Input(model.model_config.input_shape), *layers])
    stock.set_weights(model.get_weights())
    stock.compile(
        optimizer=keras.optimizers.deserialize(keras.optimizers.serialize(model.optimizer)),
        loss=keras.losses.deserialize(keras.losses.serialize(model.loss)),
    )
    return stock


@pytest.mark.parametrize(
    "overrides",
    [
        dict(optimizer="sgd", learning_rate=0.05, momentum=0.9),
        dict(optimizer="adam", learning_rate=0.01, l2=1e-3, batch_norm=True),
    ],
    ids=["sgd-momentum", "adam-l2-batchnorm"],
)
def test_five_steps_equal_keras_stock_train_step(start, overrides):
    model = build_model(**{**SMALL, "seed": 5, **overrides})
    stock = _stock_twin(model)
    assert type(stock).train_step is not type(model).train_step
    for x, y in _batches(start, 5):
        model.train_on_batch(x, y)
        stock.train_on_batch(x, y)
    assert len(model.weights) == len(stock.weights)
    for ours, theirs in zip(model.weights, stock.weights, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ours),
                                   keras.ops.convert_to_numpy(theirs), rtol=0, atol=1e-6,
                                   err_msg=ours.path)
    assert int(model.optimizer.iterations) == int(stock.optimizer.iterations) == 5


# -- the non-finite guard ------------------------------------------------------------------

def _state(model):
    return _numpy(model.weights) + _numpy(model.optimizer.variables)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf], ids=["nan", "inf"])
def test_a_non_finite_batch_changes_nothing_and_is_counted(start, bad_value):
    model = _model_from(start, batch_norm=False)
    (x0, y0), (x1, y1), (x2, y2) = _batches(start, 3)
    model.train_on_batch(x0, y0)
    before = _state(model)
    bad = x1.copy()
    bad[3, 5] = bad_value
    logs = model.train_on_batch(bad, y1, return_dict=True)
    assert logs["skipped_steps"] == 1
    # train_on_batch resets the metrics first; the trackers did not see the bad batch.
    assert logs["loss"] == 0.0 and logs["grad_norm"] == 0.0
    for got, want in zip(_state(model), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert int(model.optimizer.iterations) == 1

    logs = model.train_on_batch(x2, y2, return_dict=True)
    assert logs["skipped_steps"] == 1
    assert np.isfinite(logs["loss"])
    assert int(model.optimizer.iterations) == 2
    assert not np.array_equal(_numpy(model.trainable_weights)[0], before[0])
    assert model.skipped_steps == 1


def test_the_guard_restores_batch_norm_statistics_and_spares_optimizer_slots(start):
    model = build_model(**{**SMALL, "batch_norm": True, "optimizer": "adam"})
    (x0, y0), (x1, y1) = _batches(start, 2)
    model.train_on_batch(x0, y0)
    before = _state(model)
    bad = x1.copy()
    bad[:, 0] = np.nan
    assert model.train_on_batch(bad, y1, return_dict=True)["skipped_steps"] == 1
    for got, want in zip(_state(model), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_the_guard_under_mixed_precision_leaves_the_loss_scale(start):
    model = _model_from(start, mixed_precision=True)
    (x0, y0), (x1, y1) = _batches(start, 2)
    model.train_on_batch(x0, y0)
    before = _state(model)
    bad = x1.copy()
    bad[0, 0] = np.nan
    assert model.train_on_batch(bad, y1, return_dict=True)["skipped_steps"] == 1
    for got, want in zip(_state(model), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.isfinite(model.train_on_batch(x1, y1, return_dict=True)["loss"])


def _fit_dataset(batches):
    import tensorflow as tf

    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_fit_skips_the_bad_batch_and_trains_on_the_others(start, steps_per_execution):
    b0, b1, b2 = _batches(start, 3)
    bad = (b1[0].copy(), b1[1])
    bad[0][7, 7] = np.nan
    model = _model_from(start, steps_per_execution=steps_per_execution)
    history = model.fit(_fit_dataset([b0, bad, b2]), epochs=1, verbose=0, shuffle=False).history
    assert history["skipped_steps"] == [1.0]
    assert np.isfinite(history["loss"][0])
    assert int(model.optimizer.iterations) == 2

    # The same as training on the two good batches only, by the float64 reference.
    _, _, final = reference.train(_start_weights(start), [b0, b2], learning_rate=0.01,
                                  momentum=0.9)
    _assert_weights_close(model, final, atol=1e-6)


def test_evaluate_and_predict_take_every_batch_at_several_steps_per_execution(start):
    """10 rows in batches of 4 at 3 steps per call: one call of 3 batches, the last
    one short; every row is scored, as at one step per call."""
    x, y = start["x"][:10], start["y"][:10]
    one, three = (_model_from(start, steps_per_execution=k) for k in (1, 3))
    assert three.steps_per_execution == 3
    np.testing.assert_allclose(three.predict(x, batch_size=4, verbose=0),
                               one.predict(x, batch_size=4, verbose=0), atol=1e-6)
    got, want = (model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
                 for model in (three, one))
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, err_msg=name)


def test_a_subclass_s_own_train_step_runs_on_every_batch_of_a_call(start, backend):
    """PyTorch's K-step call (kerasdnn's own) runs a subclass's train_step on each batch."""
    if backend != "torch":
        pytest.skip("TensorFlow and JAX run Keras's own loop over steps_per_execution")
    model = _model_from(start, steps_per_execution=3)
    seen = []

    class Counting(type(model)):
        def train_step(self, data):
            seen.append(len(data[0]))
            return super().train_step(data)

    model.__class__ = Counting
    model.fit(start["x"][:56], start["y"][:56], batch_size=BATCH, epochs=1, verbose=0,
              shuffle=False)  # 4 batches: a call of 3, then one of 1
    assert seen == [16, 16, 16, 8]
    assert int(model.optimizer.iterations) == 4


# -- the PyTorch-native path -----------------------------------------------------------------

def _native_and_keras_twins(**overrides):
    native = build_model(**overrides)
    keras_path = build_model(**overrides)
    keras_path.native_step = False
    assert native.native_plan() is not None and keras_path.native_plan() is None
    return native, keras_path


def test_the_native_path_is_taken_for_the_seed_network(backend, monkeypatch):
    if backend != "torch":
        pytest.skip("the native path is the PyTorch step's")
    native, keras_path = _native_and_keras_twins()  # the seed network, 784-500-250-10

    def keras_forward(*args, **kwargs):
        raise AssertionError("the native path ran Keras's forward pass or loss")

    rng = np.random.default_rng(0)
    for step in range(3):
        if step == 1:  # after the first call, which builds the metrics symbolically
            monkeypatch.setattr(native, "call", keras_forward)
            monkeypatch.setattr(native, "compute_loss", keras_forward)
        x = rng.random((32, 784), dtype=np.float32)
        y = rng.integers(0, 10, 32).astype(np.int32)
        ours = native.train_on_batch(x, y, return_dict=True)
        theirs = keras_path.train_on_batch(x, y, return_dict=True)
        assert ours == theirs, f"step {step}"
    from kerasdnn.network.steps.torch_native import metrics_for

    assert metrics_for(native, native.native_plan()) is not None  # the metrics too
    for got, want in zip(_numpy(native.weights), _numpy(keras_path.weights), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("overrides", [
    dict(optimizer="adam", l2=1e-3, batch_norm=True, dropout=0.3, clipnorm=0.5),
    dict(input_shape=(8, 8), activation="gelu", num_classes=2, optimizer="adamw",
         metrics=("accuracy",)),
    dict(activation="leaky_relu", mixed_precision=True, batch_norm=True),
    dict(activation="selu", dropout=0.2, metrics=("accuracy", "auc")),
], ids=["adam-l2-batchnorm-dropout-clip", "flatten-gelu-binary", "mixed-precision", "selu-auc"])
def test_the_native_path_equals_the_keras_path(start, backend, overrides):
    """Same torch ops in the same order, same dropout draws: the same numbers, bit for bit."""
    if backend != "torch":
        pytest.skip("the native path is the PyTorch step's")
    config = {**SMALL, **overrides}
    native, keras_path = _native_and_keras_twins(**config)
    binary = config.get("num_classes") == 2
    for x, y in _batches(start, 4, binary):
        x = x.reshape((len(x), *config["input_shape"]))
        ours = native.train_on_batch(x, y, return_dict=True)
        theirs = keras_path.train_on_batch(x, y, return_dict=True)
        assert ours == theirs
    for got, want in zip(_state(native), _state(keras_path), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_jit_compiled_model_trains_on_the_keras_path(backend):
    # A model saved where XLA compiled it (TensorFlow, JAX) loads on PyTorch with
    # jit_compile=True: torch.compile traces the step, which must not build the plan
    # (its checks read layer configs, which dynamo cannot trace).
    if backend != "torch":
        pytest.skip("the native path is the PyTorch step's")
    model = build_model(**SMALL, jit_compile=True)
    rng = np.random.default_rng(0)
    x = rng.random((8, *SMALL["input_shape"]), dtype=np.float32)
    logs = model.train_on_batch(x, rng.integers(0, 10, 8).astype(np.int32), return_dict=True)
    assert np.isfinite(logs["loss"]) and int(model.optimizer.iterations) == 1


def test_what_the_native_path_does_not_cover_takes_the_keras_path(start, backend, monkeypatch):
    if backend != "torch":
        pytest.skip("the native path is the PyTorch step's")
    model = _model_from(start)
    assert model.native_plan() is not None
    taken = []
    keras_step = type(model)._keras_train_step
    monkeypatch.setattr(type(model), "_keras_train_step",
                        lambda self, *args: taken.append(args) or keras_step(self, *args))
    (x0, y0), (x1, y1) = _batches(start, 2)
    model.train_on_batch(x0, y0, sample_weight=np.ones(len(y0), np.float32))  # sample weights
    assert len(taken) == 1
    model.layers[1].trainable = False  # a frozen layer: the plan is rebuilt, and refuses it
    model.compile(optimizer="sgd", loss=model.loss)
    assert model.native_plan() is None
    model.train_on_batch(x1, y1)
    assert len(taken) == 2
    model.layers[1].trainable = True
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=0))  # a loss option the plan does not copy
    assert model.native_plan() is None
    custom = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    from kerasdnn.network.steps.torch_native import plan_for

    assert plan_for(custom) is None  # not a kerasdnn model's step at all


def test_a_copied_model_trains_its_own_weights(start, backend):
    if backend != "torch":
        pytest.skip("the native path is the PyTorch step's")
    import copy

    model = _model_from(start)
    (x0, y0), (x1, y1) = _batches(start, 2)
    model.train_on_batch(x0, y0)  # the plan is built for this model's layers
    twin = copy.deepcopy(model)
    before = _numpy(model.weights)
    twin.train_on_batch(x1, y1)
    for got, want in zip(_numpy(model.weights), before, strict=True):
        np.testing.assert_array_equal(got, want)  # the original did not move
    assert not np.array_equal(_numpy(twin.weights)[0], before[0])


def test_sample_weights_log_the_loss_stock_keras_logs(start):
    """Off a distribution, weighted batches count their rows in the epoch's loss as stock
    Keras counts them (the batch size), whatever the weights' size."""
    import tensorflow as tf

    batches = _batches(start, 3)
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    weights = np.repeat(np.array([1.0, 4.0, 0.5], "float32"), BATCH)
    weights[::3] = 2.0  # every batch's largest weight differs from the others'
    data = tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(BATCH)
    model = build_model(**{**SMALL, "seed": 5})
    stock = _stock_twin(model)
    ours = model.fit(data, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    theirs = stock.fit(data, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_sample_weights_leave_the_training_metrics_unweighted(start):
    """Off a distribution, the training metrics count every row once whatever its weight,
    as stock Keras's ``metrics=`` do, on every backend (PyTorch's step weighted them)."""
    from sklearn.metrics import accuracy_score

    batches = _batches(start, 2)
    x, y = (np.concatenate(parts) for parts in zip(*batches, strict=True))
    weights = np.where(np.arange(len(y)) % 3 == 0, 7.0, 0.2).astype("float32")
    model = _model_from(start, metrics=("accuracy",), steps_per_execution=1)
    predicted = np.argmax(model.predict(x, verbose=0), axis=1)  # before the one step
    logged = model.fit(x, y, sample_weight=weights, batch_size=len(y), epochs=1,
                       shuffle=False, verbose=0).history["accuracy"][0]
    unweighted = accuracy_score(y, predicted)
    assert unweighted != pytest.approx(accuracy_score(y, predicted, sample_weight=weights))
    assert logged == pytest.approx(unweighted, abs=1e-6)
