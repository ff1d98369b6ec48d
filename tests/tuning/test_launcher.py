"""The local search's launcher (tuning.workers._Children): children started without
``preexec_fn`` while relay threads run, pinned to their cores, in their own session,
and dead with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tuning import workers
from tuning.workers import WorkerPlan, _Children, available_cpus

# A child that adopts the launcher's settings, writes what it got, then chatters on both
# streams (the parent's relay threads busy) until stopped.
CHILD = textwrap.dedent("""
    import ctypes, os, sys, time
    from tuning.workers import adopt_launch_settings
    adopt_launch_settings()
    signal = ctypes.c_int()
    ctypes.CDLL(None).prctl(2, ctypes.byref(signal))  # PR_GET_PDEATHSIG
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    leak = os.environ.get("KERASDNN_TUNING_PARENT", "")
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write(f"{cpus} {signal.value} {int(os.getsid(0) == os.getpid())} {leak}")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        print("chatter " * 20, flush=True)
        print("chatter", file=sys.stderr, flush=True)
        time.sleep(0.005)
""")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")


def _wait_for(path: Path, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)
    return path.read_text()


def _gone(pid: int) -> bool:
    """No such process, or a zombie (dead; its new parent may reap it late)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "State:\tZ" in status


@linux_only
def test_many_children_start_and_stop_while_relays_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    popen_kwargs = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        popen_kwargs.append(kwargs)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(workers.subprocess, "Popen", recording_popen)
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    cpus = available_cpus()
    for round_ in range(3):
        group = _Children(command=[sys.executable, "-c", CHILD])
        files = []
        for index in range(8):  # each start while the earlier children's relays run
            mine = (cpus[index % len(cpus)],)
            files.append(tmp_path / f"{round_}-{index}.txt")
            group.start(WorkerPlan(f"tuner{index}", {}, mine), [str(files[-1])])
        for index, path in enumerate(files):
            got_cpus, death_signal, leads, leaked = _wait_for(path).split(" ")
            assert got_cpus == str(cpus[index % len(cpus)])
            assert int(death_signal) == signal.SIGTERM
            assert leads == "1" and leaked == ""
        pids = [child.process.pid for child in group.children]
        started = time.monotonic()
        group.stop()
        assert time.monotonic() - started < workers.GRACE_SECONDS
        assert all(child.process.returncode == -signal.SIGTERM for child in group.children)
        assert all(not relay.is_alive() for child in group.children for relay in child.relays)
        assert all(_gone(pid) for pid in pids)
    assert len(popen_kwargs) == 24
    assert all(kwargs.get("preexec_fn") is None and kwargs["start_new_session"]
               for kwargs in popen_kwargs)
    assert "[tuner0] chatter" in capsys.readouterr().out  # relayed


LAUNCHER = textwrap.dedent("""
    import sys, time
    from tuning.workers import WorkerPlan, _Children
    group = _Children(command=[sys.executable, "-c", sys.argv[1]])
    children = [group.start(WorkerPlan(f"tuner{i}"), [sys.argv[2] + str(i)]) for i in range(2)]
    print(" ".join(str(child.process.pid) for child in children), flush=True)
    time.sleep(600)
""")


@linux_only
def test_children_die_with_a_killed_launcher(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, CHILD, str(tmp_path / "child")], cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        pids = [int(pid) for pid in launcher.stdout.readline().split()]
        for i in range(2):
            _wait_for(tmp_path / f"child{i}")
        launcher.kill()  # SIGKILL: no chance to stop its children
        launcher.wait()
        deadline = time.monotonic() + 10
        while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(pid) for pid in pids)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for pid in locals().get("pids", []):
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
