"""``kerasdnn.training.fitting``: the one fit loop (``fit_stream``) and a run's use of it
(``fit_run``): steps per execution, a fit that continues from an epoch, the
retraining on train + validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import pipelines
from kerasdnn.training.fitting import early_stopping, fit_stream, steps_per_execution_for


@pytest.fixture(scope="module")
def splits():
    # 1293 training examples in batches of 256: 6 steps per epoch.
    return pipelines.load("digits", batch_size=256, seed=2, repeat=True)


def _model(**overrides):
    from kerasdnn.network.models import build_model

    return build_model(input_shape=(64,), hidden_units=(8,), optimizer="sgd",
                       learning_rate=0.05, momentum=0.9, seed=4, **overrides)


def _iterations(model) -> int:
    import keras

    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def test_a_fit_from_an_epoch_continues_the_unbroken_fit(splits) -> None:
    """What a resumed run and a Hyperband trial rely on: epochs 0-1 then 2, in two
    fits of the same model, train on the batches of one fit of epochs 0-2."""
    whole = _model()
    history = fit_stream(whole, splits.stream, epochs=3, validation_data=splits.validation,
                         verbose=0).history
    parts = _model()
    first = fit_stream(parts, splits.stream, epochs=2, validation_data=splits.validation,
                       verbose=0).history
    last = fit_stream(parts, splits.stream, epochs=3, initial_epoch=2,
                      validation_data=splits.validation, verbose=0).history
    assert _iterations(whole) == _iterations(parts) == 3 * splits.stream.batches_per_epoch
    for name in ("loss", "val_loss", "grad_norm"):
        np.testing.assert_allclose([*first[name], *last[name]], history[name], rtol=1e-6,
                                   err_msg=name)
    for got, want in zip(parts.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_steps_per_execution_divide_an_epoch_and_callbacks_keep_their_order(splits) -> None:
    import keras

    seen: list[str] = []

    class Note(keras.callbacks.Callback):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def on_train_begin(self, logs=None) -> None:
            seen.append(self.name)

    model = _model(steps_per_execution=4)  # 6 steps per epoch: 3 per call
    fit_stream(model, splits.stream, epochs=1, callbacks=[Note("a"), None, Note("b")],
               verbose=0)
    assert model.steps_per_execution == 3
    assert steps_per_execution_for(13, 10) == 1 and steps_per_execution_for(540, 10) == 10
    assert seen == ["a", "b"]


def test_early_stopping_watches_the_validation_loss_when_there_is_one() -> None:
    stopping = early_stopping(2, validated=True)
    assert (stopping.monitor, stopping.patience, stopping.restore_best_weights) == (
        "val_loss", 2, True)
    assert early_stopping(2, validated=False).monitor == "loss"
    assert early_stopping(None, validated=True) is None


def test_merge_validation_trains_on_train_and_validation(tmp_path: Path) -> None:
    """The retraining after a search: every epoch covers both splits, nothing is validated."""
    import kerasdnn

    result = kerasdnn.train(dataset="digits", epochs=2, batch_size=100, hidden_units=(8,),
                            seed=2, out=str(tmp_path / "run"), verbose=0,
                            merge_validation=True)
    examples = pipelines.load("digits", batch_size=None, seed=2).info.num_examples
    steps = math.ceil((examples["train"] + examples["validation"]) / 100)
    assert steps > math.ceil(examples["train"] / 100)
    assert _iterations(result.model) == 2 * steps
    assert not [name for name in result.history if name.startswith("val_")]
    assert len(result.history["loss"]) == 2


def test_steps_per_execution_changes_speed_not_results(tmp_path: Path) -> None:
    """Several steps per call (TensorFlow's graph loop, the JAX scan, PyTorch's eager
    steps one after the other) train on the same batches as one step per call."""
    import kerasdnn

    # 1293 examples in batches of 16: 81 steps per epoch, the last one of 13 examples.
    settings = dict(dataset="digits", epochs=2, batch_size=16, hidden_units=(32,), verbose=0)
    assert steps_per_execution_for(81, 10) == 9
    one = kerasdnn.train(**settings, steps_per_execution=1, out=str(tmp_path / "one"))
    many = kerasdnn.train(**settings, steps_per_execution=10, out=str(tmp_path / "many"))
    assert many.model.steps_per_execution == 9
    for name in ("loss", "accuracy", "grad_norm", "val_loss"):
        np.testing.assert_allclose(many.history[name], one.history[name], rtol=1e-5, err_msg=name)
    for got, want in zip(_weights(tmp_path / "many"), _weights(tmp_path / "one"), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def _weights(run_dir: Path) -> list[np.ndarray]:
    import keras

    import kerasdnn.network.models  # noqa: F401  (registers kerasdnn>DNN, also when run alone)

    model = keras.saving.load_model(run_dir / "model.keras")
    return [np.asarray(w) for w in model.get_weights()]




def test_the_resident_path_trains_on_exactly_the_stream_s_batches(splits, backend) -> None:
    """Issue 26: the examples kept on the device, each batch gathered there, give the
    stream's numbers bit for bit, across runs of 3, 2 and 1 steps per call (6 steps of
    256, 256, ..., 13 per epoch) and a fit that continues from epoch 1.  (TensorFlow's
    resident path runs under XLA only, so its stream's steps do too.)"""
    jit = {"jit_compile": True} if backend == "tensorflow" else {}
    streamed = _model(steps_per_execution=3, **jit)
    history = fit_stream(streamed, splits.stream, epochs=2, validation_data=splits.validation,
                         verbose=0, input_path="stream").history
    resident = _model(steps_per_execution=3, **jit)
    first = fit_stream(resident, splits.stream, epochs=1, validation_data=splits.validation,
                       verbose=0, input_path="resident").history
    last = fit_stream(resident, splits.stream, epochs=2, initial_epoch=1, verbose=0,
                      validation_data=splits.validation, input_path="resident").history
    for name in history:
        assert [*first[name], *last[name]] == history[name], name
    for got, want in zip(resident.get_weights(), streamed.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_the_resident_path_is_taken_where_it_can_run_and_refused_elsewhere(
        splits, backend) -> None:
    from kerasdnn.core.config import TrainConfig
    from kerasdnn.core.errors import ConfigError
    from kerasdnn.training.class_weights import weighted_stream
    from kerasdnn.training.input_path import resolve_input_path

    stream = splits.stream
    weighted = weighted_stream(stream, splits, TrainConfig(class_weight="balanced"))
    assert resolve_input_path("auto", backend, stream) == "resident"
    if backend == "tensorflow":  # and without XLA (Keras's "auto" on a CPU), the stream
        assert resolve_input_path("auto", backend, stream, jit=False) == "stream"
        with pytest.raises(ConfigError, match="pay only under XLA"):
            resolve_input_path("resident", backend, stream, jit=False)
    assert resolve_input_path("auto", backend, weighted) == "stream"
    assert resolve_input_path("auto", backend, stream, data_parallel=True) == "stream"
    for problem in ({"training": weighted}, {"data_parallel": True}):
        with pytest.raises(ConfigError, match="--input-path resident cannot run here"):
            resolve_input_path("resident", backend, **{"training": stream, **problem})


def test_tensorflow_with_a_gpu_keeps_the_stream(splits, backend, monkeypatch) -> None:
    """A ``tf.data`` dataset lives on the host: TensorFlow's resident examples would be
    copied to a GPU per call, so with one ``auto`` streams and ``resident`` is refused."""
    from kerasdnn.core.errors import ConfigError
    from kerasdnn.training import input_path

    monkeypatch.setattr(input_path, "tensorflow_has_gpu", lambda: True)
    assert input_path.resolve_input_path("auto", "tensorflow", splits.stream) == "stream"
    with pytest.raises(ConfigError, match="copy them to the GPU"):
        input_path.resolve_input_path("resident", "tensorflow", splits.stream)
    assert input_path.why_not_resident("torch") is None  # the other backends' own devices


def test_jax_resident_rows_already_on_the_device_train_the_same(splits, backend) -> None:
    """On an accelerator Keras's JAX loop puts each batch on the device one step ahead,
    the resident path's row numbers included; the steps take them there as they take
    host ones (run here with the row numbers put on the CPU device by hand)."""
    if backend != "jax":
        pytest.skip("Rows are the JAX step's")
    import jax

    import pipelines.feed
    from pipelines.resident import Rows

    steps = splits.stream.batches_per_epoch
    host = _model(steps_per_execution=3)
    host.fit(pipelines.feed.for_fit(splits.stream, resident=True), steps_per_epoch=steps,
             epochs=1, verbose=0, shuffle=False)
    device = _model(steps_per_execution=3)
    on_device = (Rows(rows.features, rows.labels, jax.device_put(rows.index))
                 for rows in pipelines.feed.for_fit(splits.stream, resident=True))
    device.fit(on_device, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    for got, want in zip(device.get_weights(), host.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    from kerasdnn.network.steps.jax import _stack  # no round trip through the host

    assert isinstance(_stack(*[jax.device_put(np.arange(3))] * 2), jax.Array)
