"""``python -m kerasdnn.train --data-parallel --devices 2`` against one device.

Two virtual CPU devices (JAX's host device count, TensorFlow's logical CPU
devices: fixed when a process starts its devices, hence subprocesses) with the
same global batch and seed as a plain one-device run, on digits, whose 1,293
training examples leave a ragged last batch of 93 (padded to 94 with a
zero-weight row).  The one-device run is the plain, unpadded run: it is the
reference the padding scheme must reproduce.

Three devices pad every batch: the training batches of 100 to 102 and the
validation split's 144 examples, in batches of 100 and 44, to 102 and 45.  The
validation metrics must count the real rows only, like the training metrics
(against the one-device run and a float64 NumPy evaluation of the final weights).

Several steps per call, and replicas whose share is filler only: with the
default 10 steps per execution, digits' 13 steps per epoch of 100 leave one
step per call (:func:`kerasdnn.training.fitting.steps_per_execution_for`).  Batches of 23
give 57 steps (3 per call) and a last batch of 5 (6 in validation): on 4 devices
padded to 8, so the fourth replica holds filler rows only.  Batches of 10 on 10
devices, the most the batch allows, give 130 steps (10 per call) and last
batches of 3 and 4: 7 and 6 replicas of filler only.

On PyTorch each process trains on one device: two processes on loopback
(gloo) against the plain one-process run, the first started with the flags and
killed after epoch 1, the second resumed by ``torchrun``.

Tolerance: the replicas' partial sums are added in another order than the one
device's, so per-epoch metrics and final weights agree to float32 reordering
error: relative 1e-5 (measured: equal to the last printed digit).
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasdnn.training.faults import ENV as KERASDNN_FAULT
from kerasdnn.training.fitting import steps_per_execution_for
from tests.conftest import REPO_ROOT
from tests.kerasdnn import reference
from tests.kerasdnn.test_train import run_train

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
ARGS = ("--dataset", "digits", "--epochs", "2", "--hidden", "32", "--quiet")
RTOL = 1e-5

pytestmark = pytest.mark.slow
ONE_DEVICE_PER_PROCESS = "PyTorch trains on one device per process: the two-process tests"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if BACKEND == "torch":
        pytest.skip(ONE_DEVICE_PER_PROCESS)
    root = tmp_path_factory.mktemp("data-parallel")
    outs = {"one": root / "one", "two": root / "two", "three": root / "three"}
    for name, extra in (("one", ()), ("two", ("--data-parallel", "--devices", "2")),
                        ("three", ("--data-parallel", "--devices", "3"))):
        result = run_train(*ARGS, *extra, "--out", str(outs[name]))
        assert result.returncode == 0, result.stderr
    return outs


def _history(run: Path) -> dict[str, np.ndarray]:
    with open(run / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


def _weights(run: Path) -> list[np.ndarray]:
    import keras

    import kerasdnn.network.models  # noqa: F401  (registers DNN for loading)

    return keras.saving.load_model(run / "model.keras", compile=False).get_weights()


def test_two_devices_give_the_one_device_losses_and_metrics(runs: dict[str, Path]) -> None:
    one, two = _history(runs["one"]), _history(runs["two"])
    assert set(one) == set(two)
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=RTOL, err_msg=key)


def test_two_devices_give_the_one_device_weights(runs: dict[str, Path]) -> None:
    for two, one in zip(_weights(runs["two"]), _weights(runs["one"]), strict=True):
        np.testing.assert_allclose(two, one, rtol=RTOL, atol=1e-6)


def test_three_devices_count_the_padded_batches_real_rows_only(runs: dict[str, Path]) -> None:
    one, three = _history(runs["one"]), _history(runs["three"])
    assert set(one) == set(three)
    for key in one:  # val_loss and val_accuracy included
        np.testing.assert_allclose(three[key], one[key], rtol=RTOL, err_msg=key)


def _validation_reference(run: Path) -> tuple[float, float]:
    """``(loss, accuracy)`` of the run's final weights on its validation split, in float64
    NumPy (the run's settings: digits, seed 1337, split 0.1, standardized)."""
    import pipelines

    validation = pipelines.load("digits", batch_size=None).validation
    x, y = (np.stack(column) for column in zip(*validation.as_numpy_iterator(), strict=True))
    assert len(y) == 144
    weights = _weights(run)
    logits, _ = reference.forward(reference.as_float64(list(zip(weights[::2], weights[1::2],
                                                                strict=True))), x)
    loss, _ = reference.softmax_cross_entropy(logits, y)
    return loss, float(np.mean(logits.argmax(1) == y))


def test_the_padded_validation_metrics_are_the_validation_sets(runs: dict[str, Path]) -> None:
    """The last epoch's validation ran on the final weights."""
    loss, accuracy = _validation_reference(runs["three"])
    history = _history(runs["three"])
    assert history["val_loss"][-1] == pytest.approx(loss, rel=RTOL)
    assert history["val_accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)


# ------------------------------------- several steps per call, replicas of filler rows only

#: (batch size, devices, epochs): see the module docstring
FILLER_CASES = {"4-devices": (23, 4, 2), "10-devices": (10, 10, 1)}


@pytest.fixture(scope="module")
def filler_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Per case, the one-device run and the data-parallel run (all four at once)."""
    if BACKEND == "torch":
        pytest.skip(ONE_DEVICE_PER_PROCESS)
    root = tmp_path_factory.mktemp("filler")
    commands = {}
    for case, (batch, devices, epochs) in FILLER_CASES.items():
        common = ("--dataset", "digits", "--hidden", "32", "--quiet", "--epochs", str(epochs),
                  "--batch-size", str(batch))
        commands[case, "one"] = common
        commands[case, "many"] = (*common, "--data-parallel", "--devices", str(devices))
    procs = {key: subprocess.Popen(
        [sys.executable, "-m", "kerasdnn.train", *args, "--out", str(root / "-".join(key))],
        cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for key, args in commands.items()}
    for proc in procs.values():
        _, err = proc.communicate(timeout=1200)  # generous: four runs share the CPU
        assert proc.returncode == 0, err
    return {case: {kind: root / f"{case}-{kind}" for kind in ("one", "many")}
            for case in FILLER_CASES}


@pytest.mark.parametrize("case", FILLER_CASES)
def test_the_cases_run_several_steps_per_call_and_leave_replicas_filler_only(
        filler_runs: dict[str, dict[str, Path]], case: str) -> None:
    """The premises, read from the run's own record: more than one step per call, and
    a last training and validation batch whose padding fills at least one replica."""
    record = json.loads((filler_runs[case]["many"] / "config.json").read_text())
    batch, devices = record["train"]["batch_size"], record["distribution"]["devices"]
    counts = record["dataset"]["num_examples"]
    steps = math.ceil(counts["train"] / batch)
    assert steps_per_execution_for(steps, record["model"]["steps_per_execution"]) > 1
    for examples in (counts["train"], counts["validation"]):
        last = examples - (math.ceil(examples / batch) - 1) * batch
        padded = math.ceil(last / devices) * devices
        assert padded - last >= padded // devices  # a whole replica's share is filler


@pytest.mark.parametrize("case", FILLER_CASES)
def test_filler_only_replicas_and_several_steps_give_the_one_device_run(
        filler_runs: dict[str, dict[str, Path]], case: str) -> None:
    one, many = (_history(filler_runs[case][kind]) for kind in ("one", "many"))
    assert set(one) == set(many)
    for key in one:  # val_loss and val_accuracy included
        assert np.isfinite(many[key]).all(), key
        np.testing.assert_allclose(many[key], one[key], rtol=RTOL, err_msg=key)
    for mine, theirs in zip(_weights(filler_runs[case]["many"]),
                            _weights(filler_runs[case]["one"]), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("case", FILLER_CASES)
def test_filler_only_replicas_give_the_validation_sets_metrics(
        filler_runs: dict[str, dict[str, Path]], case: str) -> None:
    loss, accuracy = _validation_reference(filler_runs[case]["many"])
    history = _history(filler_runs[case]["many"])
    assert history["val_loss"][-1] == pytest.approx(loss, rel=RTOL)
    assert history["val_accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)


def test_the_run_records_its_distribution(runs: dict[str, Path]) -> None:
    two = json.loads((runs["two"] / "config.json").read_text())
    one = json.loads((runs["one"] / "config.json").read_text())
    assert two["distribution"] == {"kind": "data_parallel", "devices": 2, "processes": 1}
    assert two["train"]["data_parallel"] is True and two["train"]["devices"] == 2
    assert one["distribution"]["kind"] == "none"
    assert two["input_path"] == "stream"  # data-parallel batches are padded and shared out


def test_a_saved_config_repeats_the_data_parallel_run(runs: dict[str, Path]) -> None:
    from kerasdnn.train import build_parser, configs_from_args

    args = build_parser().parse_args(["--config", str(runs["two"] / "config.json")])
    train_values, _ = configs_from_args(args)
    assert (train_values["data_parallel"], train_values["devices"]) == (True, 2)


# --------------------------------------------------------------------------- two processes

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_two_processes(out: Path, *extra: str, fault: str | None = None,
                      timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """The same train command in two processes of this backend on loopback (one CPU
    device each), joined by the flags.  With ``fault``, process 0 kills itself there
    (``KERASDNN_FAULT``); on JAX process 1, left waiting for it, is then stopped as a
    job scheduler would, on PyTorch it stops by itself."""
    port = _free_port()
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kerasdnn.train", *ARGS, "--data-parallel",
             "--out", str(out), "--coordinator", f"127.0.0.1:{port}",
             "--num-processes", "2", "--process-id", str(index), *extra],
            cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**env, KERASDNN_FAULT: fault} if fault and index == 0 else env,
        )
        for index in range(2)
    ]
    try:
        first_out, first_err = procs[0].communicate(timeout=timeout)
        if fault and BACKEND == "jax":
            procs[1].kill()
        second_out, second_err = procs[1].communicate(timeout=timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [subprocess.CompletedProcess(proc.args, proc.returncode, out_, err)
            for proc, out_, err in zip(procs, (first_out, second_out),
                                       (first_err, second_err), strict=True)]


jax_only = pytest.mark.skipif(BACKEND != "jax", reason="multi-process training is JAX's")


@jax_only
def test_two_processes_killed_and_resumed_train_as_two_devices_into_one_run(
        runs: dict[str, Path], tmp_path: Path) -> None:
    """One test for both (each two-process launch costs two interpreter start-ups):
    killed after epoch 1's checkpoint, resumed, the result is the unbroken
    two-device run's, written once, by process 0."""
    out = tmp_path / "run"
    killed = run_two_processes(out, fault="epoch_end:2")  # epoch 1 checkpointed
    assert killed[0].returncode == -signal.SIGKILL
    assert (out / "backup").is_dir() and not (out / "model.keras").exists()
    for result in run_two_processes(out, "--resume"):
        assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]
    assert (out / "model.keras").is_file() and not (out / "backup").exists()
    record = json.loads((out / "config.json").read_text())
    assert record["distribution"] == {"kind": "data_parallel", "devices": 2, "processes": 2}
    for key, values in _history(runs["two"]).items():
        np.testing.assert_allclose(_history(out)[key], values, rtol=RTOL, err_msg=key)
    for mine, theirs in zip(_weights(out), _weights(runs["two"]), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=1e-6)


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's torch.distributed engine")
def test_two_torch_processes_killed_and_resumed_by_torchrun_train_as_one_process(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two PyTorch processes with half of each global batch of 100 (the last one, 93,
    padded to 94): process 0 killed in epoch 2 (its 7th of 13 steps), process 1 stops
    with one line at the next all-reduce, ``torchrun --nproc-per-node 2 ... --resume``
    finishes the run; losses, metrics (validation's too: their batches of 100 and 44
    are split in two) and final weights are the plain one-process run's."""
    one, out = tmp_path / "one", tmp_path / "run"
    result = run_train(*ARGS, "--out", str(one))
    assert result.returncode == 0, result.stderr
    killed = run_two_processes(out, "--tensorboard", fault="batch:20")  # epoch 1 checkpointed
    assert killed[0].returncode == -signal.SIGKILL
    assert killed[1].returncode == 2, killed[1].stderr
    lines = killed[1].stderr.strip().splitlines()
    assert len(lines) == 1 and "another process of the data-parallel run stopped" in lines[0]
    assert (out / "backup").is_dir() and not (out / "model.keras").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
         "2", "-m", "kerasdnn.train", *ARGS, "--data-parallel", "--out", str(out), "--resume",
         "--tensorboard"],
        cwd=REPO_ROOT, text=True, capture_output=True, timeout=300,
        env={**os.environ, "TMPDIR": str(tmp_path_factory.mktemp("torchrun"))})  # its files
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one", "run"]
    assert (out / "model.keras").is_file() and not (out / "backup").exists()
    record = json.loads((out / "config.json").read_text())
    assert record["distribution"] == {"kind": "data_parallel", "devices": 2, "processes": 2}
    # TensorBoard's event files name their writer's process: process 0 of each launch only
    writers = {path.name.split(".")[-3] for path in (out / "tensorboard").rglob("events.*")}
    assert len(writers) == 2, sorted(writers)
    for key, values in _history(one).items():
        np.testing.assert_allclose(_history(out)[key], values, rtol=RTOL, err_msg=key)
    for mine, theirs in zip(_weights(out), _weights(one), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=1e-6)
