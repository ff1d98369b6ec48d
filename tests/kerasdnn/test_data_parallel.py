"""``python -m kerasdnn.train --data-parallel --devices 2`` against one device.

Two virtual CPU devices (JAX's host device count, TensorFlow's logical CPU
devices: fixed when a process starts its devices, hence subprocesses) with the
same global batch and seed as a plain one-device run, on digits, whose 1,293
training examples leave a ragged last batch of 93 (padded to 94 with a
zero-weight row).  The one-device run is the plain, unpadded run: it is the
reference the padding scheme must reproduce.

Tolerance: the replicas' partial sums are added in another order than the one
device's, so per-epoch metrics and final weights agree to float32 reordering
error: relative 1e-5 (measured: equal to the last printed digit).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.kerasdnn.test_train import run_train

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
ARGS = ("--dataset", "digits", "--epochs", "2", "--hidden", "32", "--quiet")
RTOL = 1e-5

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BACKEND == "torch", reason="no data parallelism on torch (Keras 3.15)"),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data-parallel")
    outs = {"one": root / "one", "two": root / "two"}
    for name, extra in (("one", ()), ("two", ("--data-parallel", "--devices", "2"))):
        result = run_train(*ARGS, *extra, "--out", str(outs[name]))
        assert result.returncode == 0, result.stderr
    return outs


def _history(run: Path) -> dict[str, np.ndarray]:
    with open(run / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


def _weights(run: Path) -> list[np.ndarray]:
    import keras

    import kerasdnn.models  # noqa: F401  (registers DNN for loading)

    return keras.saving.load_model(run / "model.keras", compile=False).get_weights()


def test_two_devices_give_the_one_device_losses_and_metrics(runs: dict[str, Path]) -> None:
    one, two = _history(runs["one"]), _history(runs["two"])
    assert set(one) == set(two)
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=RTOL, err_msg=key)


def test_two_devices_give_the_one_device_weights(runs: dict[str, Path]) -> None:
    for two, one in zip(_weights(runs["two"]), _weights(runs["one"]), strict=True):
        np.testing.assert_allclose(two, one, rtol=RTOL, atol=1e-6)


def test_the_run_records_its_distribution(runs: dict[str, Path]) -> None:
    two = json.loads((runs["two"] / "config.json").read_text())
    one = json.loads((runs["one"] / "config.json").read_text())
    assert two["distribution"] == {"kind": "data_parallel", "devices": 2, "processes": 1}
    assert two["train"]["data_parallel"] is True and two["train"]["devices"] == 2
    assert one["distribution"]["kind"] == "none"


def test_a_saved_config_repeats_the_data_parallel_run(runs: dict[str, Path]) -> None:
    from kerasdnn.train import build_parser, configs_from_args

    args = build_parser().parse_args(["--config", str(runs["two"] / "config.json")])
    train_values, _ = configs_from_args(args)
    assert (train_values["data_parallel"], train_values["devices"]) == (True, 2)
