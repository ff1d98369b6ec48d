"""``python -m tuning.search --workers N``: a chief and N workers on this host.

The pinning (GPUs, CPU shares) is checked with made-up device lists; the end-to-end
runs (JAX env only, like the other search fault tests) check that a search whose
worker is killed mid-trial reruns to a serial search's trials with each trial once,
that both workers ran trials, and that no child process or port is left behind,
after a failure and after Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from kerasdnn.training.faults import ENV
from tests.conftest import REPO_ROOT
from tests.tuning.conftest import run_search, search_args, user_error, write_space
from tuning.results import read_trials_csv, record_workers, trial_rows
from tuning.workers import child_argv, discover_gpus, plan_chief, plan_workers

OPTIONS = ["--workers", "--worker", "--overwrite", "--objective", "--seed", "--chief"]
START = re.compile(r"^local search: chief \(pid (\d+)\) on 127\.0\.0\.1:(\d+), (.*)$", re.M)


# --------------------------------------------------------------------------- pinning


def test_several_gpus_one_per_worker_and_an_equal_share_of_the_cores() -> None:
    plans = plan_workers(2, gpus=["2", "5", "6"], cpus=[0, 1, 2, 3, 4])
    assert [p.name for p in plans] == ["tuner1", "tuner2"]
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plans] == ["2", "5"]
    assert [p.cpus for p in plans] == [(0, 1), (2, 3)]
    assert all(p.env["OMP_NUM_THREADS"] == p.env["TF_NUM_INTRAOP_THREADS"] == "2" for p in plans)
    assert not any("XLA_PYTHON_CLIENT_PREALLOCATE" in p.env for p in plans)  # a GPU each
    assert plans[0].describe(41) == "tuner1 (pid 41, GPU 2, CPU 0-1)"


def test_fewer_gpus_than_workers_are_shared_and_allocate_as_they_go() -> None:
    plans = plan_workers(3, gpus=["0", "1"], cpus=[0, 1])
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plans] == ["0", "1", "0"]
    assert all(p.env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" for p in plans)
    assert [p.cpus for p in plans] == [(0,), (1,), (0,)]  # more workers than cores
    assert plan_chief(["0", "1"]).env["CUDA_VISIBLE_DEVICES"] == "0"


def test_no_gpu_cpu_shares_only() -> None:
    plans = plan_workers(2, gpus=[], cpus=list(range(8)))
    assert [p.cpus for p in plans] == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert all("CUDA_VISIBLE_DEVICES" not in p.env for p in plans)
    assert plans[1].describe() == "tuner2 (CPU 4-7)"
    assert plan_chief([]).env == {}


def test_gpu_discovery_respects_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 1")
    assert discover_gpus() == ["3", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert discover_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("PATH", "")  # no nvidia-smi
    assert discover_gpus() == []


def test_children_get_the_flags_without_workers_and_workers_without_overwrite() -> None:
    argv = ["--workers=2", "--seed", "3", "--over", "--workers", "2", "--obj", "val_loss"]
    assert child_argv(argv, OPTIONS, ["--workers"]) == [
        "--seed", "3", "--over", "--obj", "val_loss"]
    assert child_argv(argv, OPTIONS, ["--workers", "--overwrite"]) == [
        "--seed", "3", "--obj", "val_loss"]


def test_workers_with_chief_or_worker_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    line = user_error(["--workers", "2", "--chief", "127.0.0.1:8000"], capsys)
    assert "--workers starts its own chief" in line
    assert "--workers" in user_error(["--workers", "0"], capsys)


# --------------------------------------------------------------------------- worker column


class _Oracle:
    """The part of a KerasTuner oracle record_workers uses: trials handed out in turn,
    the ongoing one again to the same tuner, like ``Oracle.create_trial``."""

    def __init__(self, handed: list[tuple[str, str]]) -> None:
        self.handed = iter(handed)

    def create_trial(self, tuner_id: str) -> SimpleNamespace:
        trial_id, status = next(self.handed)
        return SimpleNamespace(trial_id=trial_id, status=status)


def test_workers_are_recorded_per_trial_and_a_rerun_trial_takes_its_new_worker(
        tmp_path: Path) -> None:
    oracle = _Oracle([("0", "RUNNING"), ("1", "RUNNING"), ("2", "STOPPED")])
    workers = record_workers(oracle, tmp_path)
    for tuner_id in ("tuner1", "tuner2", "tuner1"):
        oracle.create_trial(tuner_id)
    assert workers == {"0": "tuner1", "1": "tuner2"}  # a STOPPED answer runs nothing
    rerun = _Oracle([("1", "RUNNING")])  # the next run: trial 1 again, on another worker
    assert record_workers(rerun, tmp_path) == workers
    rerun.create_trial("tuner1")
    assert json.loads((tmp_path / "workers.json").read_text()) == {"0": "tuner1", "1": "tuner1"}
    serial = _Oracle([("0", "RUNNING")])
    record_workers(serial, tmp_path / "s", "main")
    (tmp_path / "s").mkdir()
    serial.create_trial("tuner0")
    assert json.loads((tmp_path / "s" / "workers.json").read_text()) == {"0": "main"}


def test_trial_rows_name_the_worker() -> None:
    hp = SimpleNamespace(values={"units": 8}, space=[SimpleNamespace(name="units")])
    metrics = SimpleNamespace(exists=lambda name: False)
    trial = SimpleNamespace(trial_id="0", status="COMPLETED", hyperparameters=hp,
                            metrics=metrics, score=0.5, best_step=0, message=None)
    assert trial_rows([trial], workers={"0": "tuner2"})[0]["worker"] == "tuner2"
    assert trial_rows([trial])[0]["worker"] is None


# --------------------------------------------------------------------------- end to end

jax_only = pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax",
                              reason="run on the JAX env")


def _args(folder: Path, *extra: str) -> list[str]:
    folder.mkdir(exist_ok=True)
    space = write_space(folder, batch_size=[16, 32, 64, 128])
    return [*search_args(folder, space), "--max-trials", "4", *extra]


def _search(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuning.search", *args], cwd=REPO_ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=400)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _children(stdout: str) -> tuple[list[int], int]:
    """The PIDs (chief first) and the chief's port a local search started with."""
    match = START.search(stdout)
    assert match, stdout
    pids = [int(match[1])] + [int(pid) for pid in re.findall(r"pid (\d+)", match[3])]
    assert len(pids) == 3, stdout
    return pids, int(match[2])


def _port_free(port: int) -> bool:
    """Nobody listens on the port (its closed connections may still be in TIME_WAIT)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def _hyperparameters(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in ("worker", "seconds")} for row in rows]


@pytest.mark.slow
@jax_only
def test_a_killed_worker_reruns_to_a_serial_search_with_each_trial_once(tmp_path: Path) -> None:
    serial = tmp_path / "serial"
    run_search(_args(serial))
    args = _args(tmp_path / "local", "--workers", "2")

    killed = _search(args, **{ENV: "trial_end:1"})  # each worker: at its first trial's end
    assert killed.returncode == 2, killed.stderr
    error = killed.stderr.strip().splitlines()
    assert len(error) == 1 and re.match(
        r"python -m tuning.search: error: tuner\d was killed by SIGKILL; stopped the chief "
        r"and the workers; rerun the same command", error[0]), killed.stderr
    pids, port = _children(killed.stdout)
    assert all(_gone(pid) for pid in pids) and _port_free(port)

    rerun = _search(args)
    assert rerun.returncode == 0, rerun.stderr
    reported = re.findall(r"^trial (\d+): val_accuracy .* · on (tuner\d)$",
                          killed.stdout + rerun.stdout, re.M)
    ids = [trial_id for trial_id, _ in reported]
    assert sorted(ids) == ["0", "1", "2", "3"], killed.stdout + rerun.stdout  # each once
    assert all(_gone(pid) for pid in _children(rerun.stdout)[0])

    got = read_trials_csv(tmp_path / "local" / "p" / "trials.csv")
    want = read_trials_csv(serial / "p" / "trials.csv")
    assert _hyperparameters(got) == _hyperparameters(want)
    assert [row["worker"] for row in want] == ["main"] * 4
    assert {row["worker"] for row in got} == {"tuner1", "tuner2"}  # both ran trials
    assert dict(reported) == {row["trial_id"]: row["worker"] for row in got}
    assert [row["score"] for row in got] == [row["score"] for row in want]
    reports = [json.loads((folder / "p" / "best" / "report.json").read_text())
               for folder in (tmp_path / "local", serial)]
    assert reports[0]["accuracy"] == reports[1]["accuracy"]
    assert reports[0]["confusion_matrix"] == reports[1]["confusion_matrix"]


# ``python -m tuning.search ARGS`` as a shell in a terminal starts it: Ctrl-C neither
# ignored nor blocked.  A child inherits both from its parent, and pytest started as a
# background job of a non-interactive shell (``nohup tox &``, a CI script's ``&``) has
# SIGINT ignored (POSIX), so the search would never see the Ctrl-C.  No test changes
# SIGINT (checked after every test of the jax env, 2026-12-08).
AS_FROM_A_TERMINAL = (
    "import runpy, signal, sys; "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT]); "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'tuning.search'; "
    "runpy.run_module('tuning.search', run_name='__main__', alter_sys=True)"
)


def _signal_state() -> str:
    """This process's blocked and ignored signal masks (for a failure's message)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return ""
    return " ".join(line for line in status.read_text().splitlines()
                    if line.startswith(("SigBlk", "SigIgn")))


@pytest.mark.slow
@jax_only
def test_ctrl_c_stops_the_chief_and_every_worker(tmp_path: Path) -> None:
    args = _args(tmp_path, "--workers", "2")
    # Trials that cannot end before the Ctrl-C on any machine.
    args[args.index("--epochs") + 1] = "100000"
    parent = subprocess.Popen([sys.executable, "-c", AS_FROM_A_TERMINAL, *args], cwd=REPO_ROOT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout = ""
        for line in parent.stdout:
            stdout += line
            if START.match(line):
                break
        pids, port = _children(stdout)
        time.sleep(5)  # the workers are loading the data or training
        assert all(not _gone(pid) for pid in pids)
        parent.send_signal(signal.SIGINT)
        rest, stderr = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 2, f"{_signal_state()}\n{stdout}{rest}{stderr}"
    assert stderr.strip().splitlines()[-1].startswith(
        "python -m tuning.search: error: interrupted: stopped the chief and the workers")
    assert all(_gone(pid) for pid in pids) and _port_free(port)


def test_workers_refuse_to_continue_a_search_with_other_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "search.json").write_text('{"tuner": "bayesian"}')
    space = write_space(tmp_path)
    line = user_error([*search_args(tmp_path, space), "--workers", "2"], capsys)
    assert "cannot continue the search" in line  # before any child starts
