"""The search space: narrowing from JSON, KerasTuner declaration, ModelConfig mapping."""

from __future__ import annotations

import keras_tuner
import pytest

from kerasdnn.core.config import ModelConfig
from kerasdnn.core.errors import ConfigError
from tuning.space import DEFAULT_SPACE, load_space


def test_the_default_space_covers_the_issue() -> None:
    space = DEFAULT_SPACE
    assert (space["num_layers"].min, space["num_layers"].max) == (1, 4)
    assert space["optimizer"].values == ("sgd", "adam", "adamw")
    assert space["learning_rate"].sampling == "log"
    assert {"units", "activation", "dropout", "l2", "momentum", "batch_size"} <= set(space.names)


def test_narrowing_gives_fixed_values_lists_and_ranges() -> None:
    space = DEFAULT_SPACE.narrow({
        "optimizer": "adam",
        "batch_size": [32, 64],
        "learning_rate": {"min": 0.001, "max": 0.05},
        "dropout": {"min": 0.2, "max": 0.2},
        "units": {"max": 64},
    })
    assert space["optimizer"].fixed and space["optimizer"].values == ("adam",)
    assert space["batch_size"].values == (32, 64) and space["batch_size"].default == 32
    lr = space["learning_rate"]
    assert (lr.min, lr.max, lr.sampling, lr.default) == (0.001, 0.05, "log", 0.01)
    assert space["dropout"].values == (0.2,)
    units = space["units"]
    assert (units.min, units.max, units.default) == (16, 64, 64)  # default clamped into range
    assert space["activation"] == DEFAULT_SPACE["activation"]  # untouched


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"width": 3}, "unknown search space key(s) 'width'"),
        ({"learning_rate": {"min": 0.1, "max": 0.01}}, "empty range"),
        ({"num_layers": []}, "empty list of values"),
        ({"num_layers": {"min": 1, "max": 9}}, "an integer from 1 to 8"),
        ({"units": {"min": 8, "maximum": 9}}, "unknown key(s) 'maximum'"),
        ({"activation": {"min": 1, "max": 2}}, "is a choice"),
        ({"learning_rate": {"min": 0.0, "max": 0.1}}, "a positive number"),
        ({"momentum": 1.0}, "a number in [0, 1)"),
        # the rules are the configs': their messages, after the space key
        ({"dropout": {"min": 0.0, "max": 1.0}},
         "search space 'dropout': dropout must be a number in [0, 1), got 1.0"),
        ({"units": [0, 16]}, "search space 'units': hidden_units must be positive integers"),
        ({"batch_size": [32, 0]}, "search space 'batch_size': batch_size must be an integer >= 1"),
        ({"optimizer": ["adam", "rmsprop"]}, "optimizer must be one of sgd, adam, adamw"),
        ({"batch_size": [32, 32]}, "repeated values"),
        ([1, 2], "must hold a JSON object"),
    ],
)
def test_bad_narrowing_is_one_clear_line(changes: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        DEFAULT_SPACE.narrow(changes)  # type: ignore[arg-type]
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_load_space_reads_a_file(tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"optimizer": ["sgd", "adam"]}')
    assert load_space(path)["optimizer"].values == ("sgd", "adam")
    assert load_space(None) is DEFAULT_SPACE


def test_declare_makes_units_depend_on_layers_and_momentum_on_sgd() -> None:
    hp = keras_tuner.HyperParameters()
    values = DEFAULT_SPACE.declare(hp)
    names = [param.name for param in hp.space]
    assert names == ["num_layers", "units_0", "units_1", "units_2", "units_3", "activation",
                     "dropout", "l2", "optimizer", "learning_rate", "momentum", "batch_size"]
    # defaults: the seed network (2 layers of 500 and 250 units, SGD 0.01 / 0.9, batch 100);
    # units_0, units_1 and momentum are active, units_2/3 are not
    assert values == {"num_layers": 2, "units_0": 500, "units_1": 250, "activation": "relu",
                      "dropout": 0.0, "l2": 0.0, "optimizer": "sgd", "learning_rate": 0.01,
                      "momentum": 0.9, "batch_size": 100}
    hp.values.update({"num_layers": 3, "optimizer": "adam"})
    assert not hp.is_active("momentum") and hp.is_active("units_2")
    assert not hp.is_active("units_3")


def test_declare_without_sgd_leaves_momentum_out() -> None:
    hp = keras_tuner.HyperParameters()
    values = DEFAULT_SPACE.narrow({"optimizer": ["adam", "adamw"], "num_layers": 1}).declare(hp)
    assert "momentum" not in [param.name for param in hp.space]
    assert [name for name in values if name.startswith("units")] == ["units_0"]


def test_model_config_maps_a_trial_onto_model_config() -> None:
    base = ModelConfig(input_shape=(64,), seed=5)
    values = {"num_layers": 3, "units_0": 128, "units_1": 64, "units_2": 32, "units_3": 999,
              "activation": "gelu", "dropout": 0.25, "l2": 1e-4, "optimizer": "adamw",
              "learning_rate": 0.003, "batch_size": 32}
    expected = ModelConfig(input_shape=(64,), seed=5, hidden_units=(128, 64, 32),
                           activation="gelu", dropout=0.25, l2=1e-4, optimizer="adamw",
                           learning_rate=0.003)
    assert DEFAULT_SPACE.model_config(values, base) == expected
