"""``kerasdnn.training.data``: a run's settings → the data ``pipelines.load`` gives it."""

from __future__ import annotations

import math

import numpy as np

import pipelines
from kerasdnn.core.config import TrainConfig
from kerasdnn.training.data import load_arguments, load_splits


def test_the_settings_that_choose_the_data_reach_pipelines_load() -> None:
    settings = TrainConfig(dataset="digits", seed=6, validation_split=0.2, scale="unit",
                           batch_size=64, epochs=3)
    splits = load_splits(settings)
    reference = pipelines.load("digits", seed=6, validation_split=0.2, scale="unit",
                               batch_size=64)
    assert splits.info == reference.info and splits.stream is None
    for split in ("train", "validation", "test"):
        got, want = (next(iter(getattr(s, split))) for s in (splits, reference))
        np.testing.assert_array_equal(got[0], want[0], err_msg=split)
        np.testing.assert_array_equal(got[1], want[1], err_msg=split)


def test_repeat_makes_an_endless_stream_of_epochs() -> None:
    splits = load_splits(TrainConfig(dataset="digits", batch_size=100), repeat=True)
    assert splits.stream.batch_size == 100
    assert splits.stream.batches_per_epoch == math.ceil(splits.info.num_examples["train"] / 100)


def test_changes_replace_the_run_settings() -> None:
    arguments = load_arguments(TrainConfig(dataset="digits", seed=3), seed=4, scale="unit")
    assert (arguments["name"], arguments["seed"], arguments["scale"]) == ("digits", 4, "unit")
    examples = load_splits(TrainConfig(dataset="digits"), batch_size=None)
    x, y = next(iter(examples.train))
    assert x.shape == (64,) and y.shape == ()
