"""A distributed search whose chief dies: its workers exit with one line within
``--chief-timeout`` (+ the watchdog's period), and the same commands continue the search;
a transient gRPC error is retried."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import types
from pathlib import Path

import pytest

from tests.tuning.conftest import search_args, write_space
from tests.tuning.test_distributed import _free_port, _start
from tuning import chief
from tuning.results import read_trials_csv

TIMEOUT = 5  # --chief-timeout of the test
SLACK = 10  # the watchdog's period, gRPC's reconnection back-off, a loaded machine


def _read(log: Path) -> str:
    return log.read_text() if log.exists() else ""


def _ended_trials(project: Path) -> set[str]:
    """The ids of the trials whose end KerasTuner saved in ``PROJECT/trial_*/trial.json``."""
    trials = (json.loads(path.read_text()) for path in project.glob("trial_*/trial.json"))
    return {trial["trial_id"] for trial in trials if trial["status"] != "RUNNING"}


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax", reason="run on the JAX env")
def test_workers_of_a_killed_chief_exit_with_one_line_and_the_search_continues(
        tmp_path: Path) -> None:
    space = write_space(tmp_path, batch_size=[16, 32, 64, 128])
    address = f"127.0.0.1:{_free_port()}"
    args = [*search_args(tmp_path, space), "--max-trials", "4", "--chief", address,
            "--chief-timeout", str(TIMEOUT)]
    args[args.index("--epochs") + 1] = "4"
    logs = {name: tmp_path / f"{name}.log" for name in ("chief", "tuner1", "tuner2")}
    processes = {"chief": _start(args, logs["chief"])}
    try:
        for worker in ("tuner1", "tuner2"):
            processes[worker] = _start([*args, "--worker", worker], logs[worker])
        deadline = time.monotonic() + 300
        while not re.search(r"^trial \d+: ", _read(logs["chief"]), re.M):
            assert processes["chief"].poll() is None, _read(logs["chief"])
            assert time.monotonic() < deadline, _read(logs["chief"])
            time.sleep(0.1)
        processes["chief"].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        stranded = 0
        for worker in ("tuner1", "tuner2"):
            status = processes[worker].wait(timeout=TIMEOUT + SLACK + 30)
            took = time.monotonic() - killed
            output = _read(logs[worker])
            if status == 0:  # it had been told the search was over before the kill
                continue
            assert status == 2, output
            stranded += 1
            assert took < TIMEOUT + SLACK, (took, output)
            errors = [line for line in output.splitlines() if "error" in line.lower()]
            assert errors == [f"python -m tuning.search: error: worker {worker}: the chief at "
                              f"{address} has not answered for {TIMEOUT} s; restart the chief "
                              "with the same command, then the workers: the search continues "
                              "where it stopped"], output
        assert stranded, "no worker was left mid-search by the kill"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    printed_before = set(re.findall(r"^trial (\d+): ", _read(logs["chief"]), re.M))
    # the chief prints a trial within 0.5 s of its end: one may end, saved, just before the kill
    ended_before = _ended_trials(tmp_path / "p")
    assert printed_before <= ended_before

    rerun = {name: tmp_path / f"{name}-again.log" for name in logs}
    processes = {"chief": _start(args, rerun["chief"])}
    try:
        for worker in ("tuner1", "tuner2"):
            processes[worker] = _start([*args, "--worker", worker], rerun[worker])
        for name, process in processes.items():
            assert process.wait(timeout=400) == 0, _read(rerun[name])
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    assert re.search(r"^continuing a random search", _read(rerun["chief"]), re.M)
    again = re.findall(r"^trial (\d+): ", _read(rerun["chief"]), re.M)
    assert not ended_before & set(again)  # an ended trial is not run again
    assert len(ended_before) + len(again) == 4
    rows = read_trials_csv(tmp_path / "p" / "trials.csv")
    assert [row["status"] for row in rows] == ["COMPLETED"] * 4
    assert sorted(int(row["batch_size"]) for row in rows) == [16, 32, 64, 128]


def test_a_transient_grpc_error_is_retried_and_a_lasting_one_gives_up() -> None:
    import grpc

    class Unavailable(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

    calls = []

    def flaky(request: object, **kwargs: object) -> str:
        calls.append(kwargs)
        if len(calls) < 3:
            raise Unavailable()
        return "answer"

    gave_up = []
    stub = chief._RetryingStub(types.SimpleNamespace(GetTrial=flaky), 30, lambda: None)
    assert stub.GetTrial("request", timeout=3600) == "answer"
    assert len(calls) == 3 and all(kw == {"timeout": 3600} for kw in calls)

    def down(request: object, **kwargs: object) -> str:
        raise Unavailable()

    stub = chief._RetryingStub(types.SimpleNamespace(GetTrial=down), 1, lambda: gave_up.append(1))
    with pytest.raises(grpc.RpcError):
        stub.GetTrial("request")
    assert gave_up == [1]
