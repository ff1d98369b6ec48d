"""N tuning workers on one host: ``python -m tuning.search --workers N``.

Starts KerasTuner's own chief/worker mode on this host (the same commands as
``--chief 127.0.0.1:PORT`` and ``--chief 127.0.0.1:PORT --worker tunerI`` on a
free loopback port), each worker on its own GPU when there are several
(``CUDA_VISIBLE_DEVICES``) and on its share of the CPU cores (CPU affinity,
``OMP_NUM_THREADS``, ``TF_NUM_INTRAOP_THREADS``).  Relays the chief's line per
ended trial (naming the worker that ran it) and the workers' other output, and
stops every child on Ctrl-C, on SIGTERM or when one fails: each child leads its
own process group, which gets SIGTERM, then SIGKILL after a grace period.  The
chief writes ``trials.csv`` and ``best/`` as a serial search does.

Example:
    >>> [plan.name for plan in plan_workers(2, gpus=[], cpus=[0, 1, 2, 3])]
    ['tuner1', 'tuner2']
    >>> run_local_search(["--dataset", "digits", "--workers", "2"], 2,
    ...                  ["--dataset", "--workers"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from kerasdnn.core.errors import KerasDNNError

__all__ = [
    "WorkerPlan",
    "adopt_launch_settings",
    "available_cpus",
    "child_argv",
    "discover_gpus",
    "free_port",
    "plan_chief",
    "plan_workers",
    "run_local_search",
]

PROG = "python -m tuning.search"
HOST = "127.0.0.1"
PARENT_ENV = "KERASDNN_TUNING_PARENT"  # the launcher's pid: a child dies with it
CPUS_ENV = "KERASDNN_TUNING_CPUS"  # a child's CPU cores, comma-separated
SERVING = "chief: serving the search on "  # what tuning.chief prints once it listens
GRACE_SECONDS = 10.0  # SIGTERM, then SIGKILL after this long
POLL_SECONDS = 0.2
# A GPU shared by several processes: each allocates as it goes instead of most of it.
SHARED_GPU_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


@dataclass(frozen=True)
class WorkerPlan:
    """Where one process of a local search runs: its name, environment and CPU cores."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    cpus: tuple[int, ...] = ()

    def describe(self, pid: int | None = None) -> str:
        where = [] if pid is None else [f"pid {pid}"]
        if "CUDA_VISIBLE_DEVICES" in self.env:
            where.append(f"GPU {self.env['CUDA_VISIBLE_DEVICES']}")
        if self.cpus:
            where.append(f"CPU {_ranges(self.cpus)}")
        return f"{self.name} ({', '.join(where)})" if where else self.name


def discover_gpus() -> list[str]:
    """The GPUs this host offers, as ``CUDA_VISIBLE_DEVICES`` entries (empty: none).

    ``CUDA_VISIBLE_DEVICES`` when set (the ones the user allows), else what
    ``nvidia-smi`` lists; no backend is imported.

    Example:
        >>> discover_gpus()  # doctest: +SKIP
        ['0', '1']
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.splitlines() if line.strip().isdigit()]


def available_cpus() -> list[int]:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def plan_workers(count: int, gpus: Sequence[str], cpus: Sequence[int]) -> list[WorkerPlan]:
    """Pin ``count`` workers: its own GPU each when there are several (round robin when
    fewer than workers), and an equal share of ``cpus`` each.

    Example:
        >>> plans = plan_workers(2, gpus=["0", "1"], cpus=[0, 1, 2, 3])
        >>> [(p.env["CUDA_VISIBLE_DEVICES"], p.cpus) for p in plans]
        [('0', (0, 1)), ('1', (2, 3))]
    """
    share = max(1, len(cpus) // count)
    plans = []
    for index in range(count):
        if len(cpus) >= count:
            mine = tuple(cpus[index * share:(index + 1) * share])
        else:  # more workers than cores: one core each, shared
            mine = (cpus[index % len(cpus)],) if cpus else ()
        env = {}
        if mine:
            threads = str(len(mine))
            env.update(OMP_NUM_THREADS=threads, TF_NUM_INTRAOP_THREADS=threads)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
            if len(gpus) < count:
                env.update(SHARED_GPU_ENV)
        plans.append(WorkerPlan(f"tuner{index + 1}", env, mine))
    return plans


def plan_chief(gpus: Sequence[str]) -> WorkerPlan:
    """The chief serves the search, then retrains the best trial: on the first GPU (shared
    with the first worker, so allocating as it goes), on every CPU core once the workers
    are done."""
    env = {"CUDA_VISIBLE_DEVICES": gpus[0], **SHARED_GPU_ENV} if gpus else {}
    return WorkerPlan("chief", env)


def free_port(host: str = HOST) -> int:
    """A TCP port free on ``host`` now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def child_argv(argv: Sequence[str], option_strings: Sequence[str], drop: Sequence[str]
               ) -> list[str]:
    """``argv`` without the flags in ``drop`` (and their values), abbreviations included.

    Example:
        >>> child_argv(["--workers", "2", "--over", "--seed", "3"],
        ...            ["--workers", "--worker", "--overwrite", "--seed"],
        ...            ["--workers", "--overwrite"])
        ['--seed', '3']
    """
    kept: list[str] = []
    skip_value = False
    for token in argv:
        if skip_value:
            skip_value = False
            continue
        name = token.split("=", 1)[0]
        full = _full_option(name, option_strings) if token.startswith("--") else None
        if full in drop:
            skip_value = full != "--overwrite" and "=" not in token  # --overwrite takes none
            continue
        kept.append(token)
    return kept


def run_local_search(argv: Sequence[str], count: int, option_strings: Sequence[str], *,
                     gpus: Callable[[], list[str]] = discover_gpus,
                     cpus: Callable[[], list[int]] = available_cpus) -> int:
    """Run the search ``argv`` describes with a chief and ``count`` workers on this host.

    ``option_strings`` are the search command's flags (to drop ``--workers`` and,
    for the workers, ``--overwrite`` from ``argv``, abbreviations included).
    ``gpus`` and ``cpus`` find the devices to pin the workers to (swappable for tests).
    Returns the chief's exit status (0); raises :class:`KerasDNNError` when a child
    fails, after stopping all of them.
    """
    args = child_argv(argv, option_strings, ["--workers"])
    worker_args = child_argv(args, option_strings, ["--overwrite"])  # the chief's flag only
    port = free_port()
    address = f"{HOST}:{port}"
    found = gpus()
    plans = plan_workers(count, found, cpus())
    group = _Children()
    with group.stopped_on_exit():
        chief = group.start(plan_chief(found), [*args, "--chief", address])
        while not chief.serving.wait(POLL_SECONDS):
            group.check()
        started = [group.start(plan, [*worker_args, "--chief", address, "--worker", plan.name])
                   for plan in plans]
        _say(f"local search: chief (pid {chief.process.pid}) on {address}, {count} worker(s): "
             + ", ".join(plan.describe(child.process.pid)
                         for plan, child in zip(plans, started, strict=True)))
        while chief.process.poll() is None:
            group.check()
            time.sleep(POLL_SECONDS)
        group.check([chief])  # the search is over: workers still connecting are just stopped
    return 0


# --------------------------------------------------------------------------- helpers


@dataclass
class _Child:
    name: str
    process: subprocess.Popen
    serving: threading.Event = field(default_factory=threading.Event)
    error: str = ""  # its one-line user error, if it printed one
    relays: list[threading.Thread] = field(default_factory=list)


class _Children:
    """The processes of a local search; all stopped together."""

    def __init__(self, command: Sequence[str] = (sys.executable, "-m", "tuning.search")
                 ) -> None:
        self.command = list(command)
        self.children: list[_Child] = []
        self.lock = threading.Lock()
        self.stopped = False

    def start(self, plan: WorkerPlan, args: list[str]) -> _Child:
        """Start ``python -m tuning.search ARGS`` (:attr:`command`) as ``plan`` says.

        No ``preexec_fn``: forking with one from a process whose relay threads run can
        deadlock (Python's ``subprocess`` documentation).  The child leads its own
        session (``start_new_session``) and pins itself to its cores and to this
        process's life at start-up (:func:`adopt_launch_settings`, from ``LAUNCH_ENV``).
        """
        env = {**os.environ, **plan.env, "PYTHONUNBUFFERED": "1",
               PARENT_ENV: str(os.getpid()), CPUS_ENV: ",".join(map(str, plan.cpus))}
        process = subprocess.Popen(
            [*self.command, *args], env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: Ctrl-C reaches the parent only
        )
        child = _Child(plan.name, process)
        with self.lock:
            self.children.append(child)
        for stream, out in ((process.stdout, sys.stdout), (process.stderr, sys.stderr)):
            relay = threading.Thread(target=self._relay, args=(child, stream, out), daemon=True)
            relay.start()
            child.relays.append(relay)
        return child

    def check(self, children: Sequence[_Child] | None = None) -> None:
        """Raise when a child (of ``children``, default all) has failed (exit status not 0)."""
        for child in self.children if children is None else children:
            status = child.process.poll()
            if status not in (None, 0):
                for relay in child.relays:
                    relay.join(timeout=5)  # its last words first
                how = (f"was killed by {signal.Signals(-status).name}" if status < 0
                       else f"exited with status {status}")
                why = f": {child.error}" if child.error else ""
                raise KerasDNNError(
                    f"{child.name} {how}{why}; stopped the chief and the workers; rerun the "
                    "same command to continue the search"
                )

    @contextlib.contextmanager
    def stopped_on_exit(self) -> Iterator[None]:
        """Stop every child when the block ends, however (Ctrl-C and SIGTERM included)."""
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            yield
        except KeyboardInterrupt:
            self.stop()
            raise KerasDNNError("interrupted: stopped the chief and the workers; rerun the "
                                "same command to continue the search") from None
        finally:
            self.stop()
            signal.signal(signal.SIGTERM, previous)

    def stop(self) -> None:
        """SIGTERM each child's process group (workers first: the chief may be answering
        them), SIGKILL what is left after the grace period, and reap them all."""
        if self.stopped:
            return
        self.stopped = True
        workers_first = sorted(self.children, key=lambda c: c.name == "chief")
        for child in workers_first:
            if child.process.poll() is None:  # not reaped: its group id is still its own
                _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in workers_first:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        for child in self.children:
            for relay in child.relays:
                relay.join(timeout=5)

    def _relay(self, child: _Child, stream: IO[str], out: IO[str]) -> None:
        for line in stream:
            shown = self._shown(child, line.rstrip("\n"), stream is child.process.stderr)
            if shown is not None:
                with self.lock:
                    print(shown, file=out, flush=True)
        stream.close()

    def _shown(self, child: _Child, line: str, stderr: bool) -> str | None:
        """What the parent prints of a child's line (``None``: nothing)."""
        if stderr and line.startswith(f"{PROG}: error: "):
            child.error = line.removeprefix(f"{PROG}: error: ")  # in the parent's own error
            return None
        if child.name == "chief":
            if line.startswith(SERVING):
                child.serving.set()
                return None  # its advice to start workers by hand does not apply
            return line
        if line.startswith(f"[{child.name}] trial "):
            return None  # the chief prints each trial as it ends, with its worker
        return line if line.startswith(f"worker {child.name}:") else f"[{child.name}] {line}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)  # the child leads its group (start_new_session)


def adopt_launch_settings() -> None:
    """In a child of a local search, at start-up: its CPU cores, and death with its parent.

    Read from ``KERASDNN_TUNING_CPUS`` and ``KERASDNN_TUNING_PARENT`` (then removed, so
    that no grandchild takes them): ``sched_setaffinity`` and libc's
    ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (the standard library has no wrapper), then a
    check that the parent is still there (it may have died before the ``prctl``).
    Nothing happens without those variables.

    Example:
        >>> adopt_launch_settings()  # not started by a local search: nothing to do
    """
    cpus = os.environ.pop(CPUS_ENV, "")
    parent = os.environ.pop(PARENT_ENV, "")
    if cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(0, [int(cpu) for cpu in cpus.split(",")])
    if not parent:
        return
    prctl = _find_prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # no orphan if the parent is SIGKILLed
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGTERM)  # the parent died before the prctl


def _find_prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PR_SET_PDEATHSIG = 1


def _full_option(name: str, option_strings: Sequence[str]) -> str | None:
    if name in option_strings:
        return name
    matches = [option for option in option_strings if option.startswith(name)]
    return matches[0] if len(matches) == 1 else None  # argparse's own abbreviation rule


def _ranges(numbers: Sequence[int]) -> str:
    return f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 and \
        list(numbers) == list(range(numbers[0], numbers[-1] + 1)) else \
        ",".join(map(str, numbers))


def _say(text: str) -> None:
    print(text, flush=True)
