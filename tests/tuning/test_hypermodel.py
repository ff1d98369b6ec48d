"""DNNHyperModel and the tuners: hyperparameters → model, repeatable sequences."""

from __future__ import annotations

from pathlib import Path

import keras_tuner
import numpy as np
import pytest

from kerasdnn.core.config import ModelConfig, TrainConfig
from tests.tuning.conftest import SEED, TINY, steps, train_examples
from tuning.hypermodel import DNNHyperModel, make_tuner
from tuning.space import DEFAULT_SPACE

BASE = ModelConfig(input_shape=(64,), num_classes=10, seed=11)


def test_build_maps_hyperparameters_onto_the_model() -> None:
    hp = keras_tuner.HyperParameters()
    hypermodel = DNNHyperModel(BASE)
    hypermodel.declare_hyperparameters(hp)
    hp.values.update({"num_layers": 2, "units_0": 48, "units_1": 24, "activation": "tanh",
                      "dropout": 0.1, "optimizer": "sgd", "learning_rate": 0.02,
                      "momentum": 0.5})
    model = hypermodel.build(hp)
    assert model.model_config == ModelConfig(
        input_shape=(64,), num_classes=10, seed=11, hidden_units=(48, 24), activation="tanh",
        dropout=0.1, optimizer="sgd", learning_rate=0.02, momentum=0.5,
    )
    # 64*48+48 + 48*24+24 + 24*10+10 parameters, as a dense stack has
    assert model.count_params() == 64 * 48 + 48 + 48 * 24 + 24 + 24 * 10 + 10
    assert model.optimizer.__class__.__name__ == "SGD"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)


def test_fit_refuses_anything_but_a_train_config() -> None:
    import tensorflow as tf

    hp = keras_tuner.HyperParameters()
    hypermodel = DNNHyperModel(BASE, DEFAULT_SPACE.narrow({"num_layers": 1, "units": 8}))
    model = hypermodel.build(hp)
    examples = tf.data.Dataset.from_tensor_slices((tf.zeros((8, 64)), tf.zeros((8,), tf.int32)))
    with pytest.raises(keras_tuner.errors.FatalValueError, match="TrainConfig"):
        hypermodel.fit(hp, model, examples, epochs=1, verbose=0)


def test_a_warm_up_as_long_as_the_trial_fails_that_trial_only() -> None:
    # Hyperband's first brackets train 1 or 2 epochs: a sampled warm-up of as many
    # epochs cannot run, and must fail the trial (KerasTuner goes on), not the search.
    hp = keras_tuner.HyperParameters()
    space = DEFAULT_SPACE.narrow({"num_layers": 1, "units": 8, "warmup_epochs": [2]})
    hypermodel = DNNHyperModel(BASE, space)
    model = hypermodel.build(hp)
    assert model.model_config.warmup_epochs == 2
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="warmup_epochs"):
        hypermodel.fit(hp, model, TrainConfig(dataset="digits", seed=SEED), epochs=2,
                       verbose=0)


def test_a_trial_trains_on_what_kerasdnn_train_trains_on(tmp_path: Path) -> None:
    # The same settings, batch size and seed: a trial's losses and weights are those of
    # `python -m kerasdnn.train`, also when it continues from an initial_epoch (Hyperband).
    from kerasdnn.train import train

    space = DEFAULT_SPACE.narrow({**TINY, "optimizer": "sgd", "momentum": 0.5,
                                  "dropout": 0.1, "batch_size": 64})
    hypermodel = DNNHyperModel(BASE.replace(seed=SEED), space)
    hp = keras_tuner.HyperParameters()
    data = TrainConfig(dataset="digits", epochs=2, seed=SEED)
    model = hypermodel.build(hp)
    first = hypermodel.fit(hp, model, data, epochs=1, verbose=0).history
    second = hypermodel.fit(hp, model, data, initial_epoch=1, verbose=0).history
    run = train(data.replace(batch_size=64, out=str(tmp_path / "run")),
                hypermodel.model_config(hp), verbose=0)
    batches = steps(train_examples(), 64)
    assert first["steps_per_epoch"] == second["steps_per_epoch"] == [batches]
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose([*first[name], *second[name]], run.history[name],
                                   rtol=1e-5, err_msg=name)
    for trial_weights, run_weights in zip(model.get_weights(), run.model.get_weights(),
                                          strict=True):
        np.testing.assert_allclose(trial_weights, run_weights, rtol=1e-5, atol=1e-6)


def _sequence(tmp_path: Path, kind: str, seed: int, name: str) -> list[dict]:
    """The hyperparameters of the first four trials the oracle hands out (no training)."""
    extra = {"max_epochs": 3} if kind == "hyperband" else {"max_trials": 10}
    tuner = make_tuner(kind, DNNHyperModel(BASE), objective="val_accuracy", seed=seed,
                       directory=str(tmp_path), project_name=name, **extra)
    trials = [tuner.oracle.create_trial(f"tuner{index}") for index in range(4)]
    return [dict(trial.hyperparameters.values) for trial in trials]


@pytest.mark.parametrize("kind", ["random", "bayesian", "hyperband"])
def test_same_seed_same_sequence_of_hyperparameters(tmp_path: Path, kind: str) -> None:
    first = _sequence(tmp_path, kind, 7, "a")
    again = _sequence(tmp_path, kind, 7, "b")
    other = _sequence(tmp_path, kind, 8, "c")
    assert first == again
    assert first != other
    assert len({str(sorted(values.items())) for values in first}) == 4  # four distinct trials


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_the_first_trial_is_the_seed_network(tmp_path: Path, kind: str) -> None:
    first = _sequence(tmp_path, kind, 7, "first")[0]
    seed = ModelConfig()
    assert first["num_layers"] == 2
    assert (first["units_0"], first["units_1"]) == seed.hidden_units
    assert (first["optimizer"], first["learning_rate"], first["momentum"]) == (
        seed.optimizer, seed.learning_rate, seed.momentum)
    assert (first["activation"], first["dropout"], first["l2"], first["batch_size"]) == (
        "relu", 0.0, 0.0, 100)
