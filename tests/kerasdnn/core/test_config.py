"""ModelConfig / TrainConfig: defaults, validation, JSON round trip."""

from __future__ import annotations

import json

import pytest

from kerasdnn.core.config import ModelConfig, TrainConfig
from kerasdnn.core.errors import ConfigError

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env


def test_defaults_are_the_classic_mnist_network() -> None:
    model, run = ModelConfig(), TrainConfig()
    assert model.input_shape == (784,) and model.hidden_units == (500, 250)
    assert model.num_classes == 10 and model.activation == "relu"
    assert (model.optimizer, model.learning_rate, model.momentum) == ("sgd", 0.01, 0.9)
    assert (run.batch_size, run.epochs) == (100, 10)


@pytest.mark.parametrize("kind", [ModelConfig, TrainConfig])
def test_json_round_trip(kind: type) -> None:
    config = (
        ModelConfig(hidden_units=(64, 32), dropout=0.25, clipnorm=1.5, metrics=("accuracy", "auc"))
        if kind is ModelConfig
        else TrainConfig(dataset="idx:/data", epochs=3, early_stopping=2)
    )
    text = config.to_json()
    assert json.loads(text) == config.to_dict()
    assert kind.from_json(text) == config


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("num_classes", 1, "an integer >= 2"),
        ("hidden_units", (500, 0), "positive integers"),
        ("activation", "softplusplus", "activation must be one of relu"),
        ("dropout", 1.0, "[0, 1)"),
        ("optimizer", "rmsprop", "optimizer must be one of sgd, adam, adamw"),
        ("learning_rate", -0.1, "a positive number"),
        ("learning_rate", float("nan"), "a positive number"),
        ("momentum", 1.0, "[0, 1)"),
        ("clipnorm", 0.0, "a positive number or null"),
        ("seed", -1, "an integer 0 .. 4294967295"),
        ("seed", 2**32, "an integer 0 .. 4294967295"),
        ("metrics", 5, "metrics must be a list, each one of accuracy, auc"),
        ("metrics", ("accuracy", "f2"), "metrics must be one of accuracy, auc"),
        ("steps_per_execution", 0, "an integer >= 1"),
    ],
)
def test_bad_model_values_name_the_parameter_and_the_allowed_values(
    field: str, value: object, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        ModelConfig(**{field: value})
    assert field in str(caught.value) and allowed in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("batch_size", 0), ("validation_split", 1.0), ("validation_split", 0.0),
     ("early_stopping", 0), ("dataset", " "), ("epochs", True), ("batch_size", 2**31),
     ("seed", 2**32), ("seed", -1)],
)
def test_bad_train_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_unknown_keys_are_listed_with_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        ModelConfig.from_dict({"hidden": [10]})
    assert "unknown ModelConfig key(s) hidden" in str(caught.value)
    assert "hidden_units" in str(caught.value)


def test_invalid_json_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid JSON"):
        TrainConfig.from_json("{epochs: 3")


def test_the_seed_rule_is_one_for_configs_and_pipelines() -> None:
    """0 .. 2**32 - 1 for the config and for pipelines.load's own check."""
    from pipelines.checks import check_arguments
    from pipelines.errors import InvalidArgumentError

    for seed in (0, 2**32 - 1):
        assert TrainConfig(seed=seed).seed == ModelConfig(seed=seed).seed == seed
        check_arguments(None, 0.1, seed, "unit")
    for seed in (-1, 2**32):
        with pytest.raises(InvalidArgumentError, match=r"0 \.\. 4294967295"):
            check_arguments(None, 0.1, seed, "unit")


def test_config_sections_must_be_objects() -> None:
    from kerasdnn.core.config import config_sections

    for record in ({"train": None}, {"model": [1]}, {"train": {}, "model": "x"}):
        with pytest.raises(ConfigError, match="must be a JSON object of settings"):
            config_sections(record)
