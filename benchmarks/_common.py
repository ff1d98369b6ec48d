"""Helpers shared by the benchmarks: the machine record, timing statistics,
subprocess runs and Markdown tables.

Nothing here imports a backend: the parent process of every benchmark stays
light and launches one subprocess per backend.

Example:
    >>> summarize([3.0, 1.0, 2.0])["median"]
    2.0
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import inspect
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.backends import BACKENDS, backend_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
WATCHED_PACKAGES = (
    "keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "numpy",
    "tensorflow-datasets",
)


def add_worker_arguments(parser: argparse.ArgumentParser, workers: Sequence[str]) -> None:
    """The options of a harness that measures each backend in its own subprocess:
    ``--timeout``, ``--json``, and the hidden ``--worker``/``--result`` that the
    parent passes to each subprocess.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_worker_arguments(parser, BACKENDS)
        >>> parser.parse_args(["--json", "out.json"]).timeout
        900.0
    """
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds each backend's subprocess may run (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--threads", type=int, default=0,
                        help="compute threads of every library in each subprocess (OpenMP, "
                             "TensorFlow's and XLA's pools); 0: the libraries' defaults "
                             "(default). 1 keeps the rows comparable on a machine that other "
                             "work loads, where spinning thread pools slow down erratically")
    parser.add_argument("--worker", choices=list(workers), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)


def compiled(backend: str, function: Any, *, xla: bool | None = None) -> Any:
    """``function`` compiled by the backend's own compiler (the table's ``jit``:
    ``jax.jit``, ``tf.function``; eager where there is none), with ``jit_compile=xla``
    where the compiler takes it and ``xla`` is given.

    Example:
        >>> compiled("torch", abs)(-2)
        2
    """
    path = backend_spec(backend).jit
    if path is None:
        return function
    module, name = path.split(":")
    compile_ = getattr(importlib.import_module(module), name)
    takes_xla = xla is not None and "jit_compile" in inspect.signature(compile_).parameters
    return compile_(function, **({"jit_compile": xla} if takes_xla else {}))


def limit_threads(threads: int) -> None:
    """Ask every library for ``threads`` compute threads (nothing when 0), through the
    environment they read at import: call it in a worker before any backend import.

    Example:
        >>> limit_threads(0)  # the libraries' defaults: nothing set
    """
    if threads <= 0:
        return
    count = str(threads)
    os.environ.update(OMP_NUM_THREADS=count, MKL_NUM_THREADS=count,
                      TF_NUM_INTRAOP_THREADS=count, TF_NUM_INTEROP_THREADS=count)
    flags = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} " \
            f"intra_op_parallelism_threads={count}"
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"), flags]))


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command as the user typed it, for the JSON report.

    Example:
        >>> command_line("benchmarks.epoch", ["--repeats", "3"])
        'python -m benchmarks.epoch --repeats 3'
    """
    return " ".join(["python", "-m", module, *(argv if argv is not None else sys.argv[1:])])


def interpreters(given: Sequence[str], backends: Sequence[str]) -> dict[str, str]:
    """Each backend's interpreter: this one, unless ``--python BACKEND=PATH`` (``given``,
    repeatable) names another; a relative path made absolute (the runs start in the
    repository root, it names one from here).

    Example:
        >>> interpreters(["torch=/venv/bin/python"], ["torch"])
        {'torch': '/venv/bin/python'}
    """
    chosen = dict.fromkeys(backends, sys.executable)
    for item in given:
        backend, _, path = item.partition("=")
        if backend not in BACKENDS or not path:
            raise ValueError(f"--python takes BACKEND=PATH with a backend of "
                             f"{', '.join(BACKENDS)}, got {item!r}")
        chosen[backend] = os.path.abspath(path) if os.sep in path else path
    return chosen


def parse_backends(text: str) -> list[str]:
    """Comma-separated backend names, checked against ``BACKENDS``.

    Example:
        >>> parse_backends("jax, torch")
        ['jax', 'torch']
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise ValueError(
            f"unknown backend(s) {unknown or text!r}; choose from {', '.join(BACKENDS)}"
        )
    return names


def summarize(seconds: Sequence[float]) -> dict[str, Any]:
    """Median and spread (min, max) of repeated timings, in seconds.

    Example:
        >>> summarize([1.0, 4.0, 2.0])
        {'seconds': [1.0, 4.0, 2.0], 'median': 2.0, 'min': 1.0, 'max': 4.0}
    """
    values = [float(value) for value in seconds]
    return {
        "seconds": values,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_names() -> list[str]:
    """NVIDIA GPUs as ``nvidia-smi`` names them (empty without one)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
             "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in output.splitlines() if line.strip()]


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, GPUs, load and package versions, without importing any of them.

    Example:
        >>> sorted(machine_info())[:3]
        ['cores', 'cpu_model', 'gpus']
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {"python": platform.python_version()}
    for package in WATCHED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "gpus": gpu_names(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "usable_cores": usable,
        "versions": versions,
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One line naming the machine, for the top of a table."""
    versions = machine["versions"]
    shown = ", ".join(
        f"{name} {versions[name]}" for name in ("keras", "tensorflow", "tensorflow-cpu", "jax",
                                                 "torch") if name in versions
    )
    gpus = f"; GPU: {', '.join(machine['gpus'])}" if machine["gpus"] else "; no GPU"
    load = machine.get("load_average")
    load_text = f"; load {load[0]:.1f}" if load else ""
    return (f"{machine['usable_cores']} cores ({machine['cpu_model']}){gpus}{load_text}; "
            f"Python {versions['python']}, {shown}")


@dataclass
class Completed:
    """What a benchmark subprocess left: exit status, wall time, output tail."""

    returncode: int | None  # None: killed at the timeout
    seconds: float
    stdout: str
    stderr: str

    @property
    def failure(self) -> str | None:
        """One line saying why the process failed, or None when it exited 0."""
        if self.returncode is None:
            return f"timed out after {self.seconds:.0f} s"
        if self.returncode != 0:
            lines = [line for line in self.stderr.splitlines() if line.strip()]
            last = lines[-1].strip() if lines else "no output"
            return f"exit status {self.returncode}: {last}"
        return None


def run_python(args: Sequence[str], *, backend: str | None = None, timeout: float | None = None,
               env: dict[str, str] | None = None, python: str = sys.executable) -> Completed:
    """Run ``python ARGS`` (this interpreter unless ``python`` names another) from the
    repository root with ``KERAS_BACKEND`` set.

    Example:
        >>> run_python(["-c", "print(1)"]).stdout
        '1\\n'
    """
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    if backend is not None:
        environment["KERAS_BACKEND"] = backend
    start = time.perf_counter()
    try:
        process = subprocess.run(
            [python, *args], cwd=REPO_ROOT, env=environment,
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        return Completed(None, time.perf_counter() - start, _text(error.stdout),
                         _text(error.stderr))
    return Completed(process.returncode, time.perf_counter() - start, process.stdout,
                     process.stderr)


def run_worker_process(module: str, worker: str, options: Sequence[str], *, backend: str,
                       timeout: float | None) -> tuple[Completed, str | None]:
    """Run ``python -m MODULE --worker WORKER --result FILE OPTIONS`` (how each
    harness measures one backend in its own subprocess) and return the process
    and what it wrote to ``FILE`` (``None``: nothing, e.g. it crashed first).

    A benchmark's own tests run it (``tests/benchmarks``): a worker takes a minute.
    """
    with tempfile.TemporaryDirectory(prefix="kerasdnn-bench-") as tmp:
        result = Path(tmp) / "result"
        done = run_python(["-m", module, "--worker", worker, "--result", str(result), *options],
                          backend=backend, timeout=timeout)
        return done, result.read_text() if result.exists() else None


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, padded so it also reads well in a terminal.

    Example:
        >>> print(markdown_table(["a", "b"], [["1", "22"]]))
        | a | b  |
        |---|----|
        | 1 | 22 |
    """
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = (str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def seconds_cell(stats: dict[str, Any]) -> str:
    """``median [min–max]`` in seconds, as the tables show it.

    Example:
        >>> seconds_cell({"median": 1.234, "min": 1.2, "max": 1.31})
        '1.23 [1.20–1.31]'
    """
    return f"{stats['median']:.2f} [{stats['min']:.2f}–{stats['max']:.2f}]"
