"""KerasTuner's distributed mode: one chief and two workers on 127.0.0.1."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.tuning.conftest import search_args, write_space
from tuning.results import read_trials_csv

TIMEOUT = 420


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "tuning.search", *args], cwd=REPO_ROOT,
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


# Three processes that each start a backend: run on one backend only.  The chief/worker
# protocol (KerasTuner's gRPC oracle, tuning.workers) never reads the backend; the trials
# it hands out train through the code test_search runs on every backend.
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "torch",
                    reason="backend-neutral protocol: tested on the torch env only")
def test_one_chief_and_two_workers_run_each_trial_once(tmp_path: Path) -> None:
    space = write_space(tmp_path, batch_size=[16, 32, 64, 128])
    address = f"127.0.0.1:{_free_port()}"
    args = [*search_args(tmp_path, space), "--max-trials", "4", "--chief", address]
    logs = {name: tmp_path / f"{name}.log" for name in ("chief", "tuner1", "tuner2")}
    processes = {"chief": _start(args, logs["chief"])}
    for worker in ("tuner1", "tuner2"):
        processes[worker] = _start([*args, "--worker", worker], logs[worker])
    try:
        for name, process in processes.items():
            assert process.wait(timeout=TIMEOUT) == 0, f"{name}:\n{logs[name].read_text()}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    outputs = {name: log.read_text() for name, log in logs.items()}

    ran: list[str] = []
    for worker in ("tuner1", "tuner2"):
        ran += re.findall(rf"^\[{worker}\] trial (\d+): val_accuracy", outputs[worker], re.M)
    assert sorted(ran) == ["0", "1", "2", "3"], outputs  # each trial once, by some worker

    rows = read_trials_csv(tmp_path / "p" / "trials.csv")
    assert [row["status"] for row in rows] == ["COMPLETED"] * 4
    assert sorted(int(row["batch_size"]) for row in rows) == [16, 32, 64, 128]
    assert all(row["seconds"] and row["steps_per_epoch"] for row in rows)
    chief_lines = re.findall(r"^trial (\d+): val_accuracy", outputs["chief"], re.M)
    assert sorted(chief_lines) == ["0", "1", "2", "3"]
    assert (tmp_path / "p" / "best" / "report.json").is_file()
