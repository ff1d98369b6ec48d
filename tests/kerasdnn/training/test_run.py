"""``kerasdnn.training.run``: a training run as a library: settings routed to their config,
the run directory and the distribution refused before any data loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from kerasdnn.core.config import ModelConfig, TrainConfig
from kerasdnn.core.errors import ConfigError, KerasDNNError
from kerasdnn.training.run import SETTINGS, merge_configs, split_settings, train


def test_settings_go_to_their_config_and_the_seed_to_both() -> None:
    train_config, model_config = merge_configs(
        {"dataset": "digits", "epochs": 4}, ModelConfig(hidden_units=(8,)),
        {"seed": 9, "dropout": 0.25, "batch_size": 32})
    assert (train_config.dataset, train_config.epochs, train_config.batch_size) == (
        "digits", 4, 32)
    assert (model_config.hidden_units, model_config.dropout) == ((8,), 0.25)
    assert train_config.seed == model_config.seed == 9
    assert {"seed", "epochs", "hidden_units"} <= SETTINGS


def test_an_unknown_setting_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'epoch'; known settings: .*epochs"):
        split_settings({"epoch": 3})
    with pytest.raises(ConfigError, match="expected a TrainConfig or a dict, got list"):
        merge_configs([], None, {})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"resume": True}, "--resume needs --out"),
        ({"num_processes": 2}, "need --data-parallel"),
    ],
)
def test_a_run_that_cannot_start_is_refused_before_the_data_loads(
    arguments: dict, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kerasdnn.training.run

    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data were loaded")

    monkeypatch.setattr(kerasdnn.training.run, "load_splits", no_data)
    with pytest.raises(ConfigError, match=message):
        train(TrainConfig(dataset="digits"), **arguments)


def test_a_new_run_refuses_a_folder_that_holds_something(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(KerasDNNError, match="is not empty; pass --resume"):
        train(dataset="digits", out=str(tmp_path), verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
