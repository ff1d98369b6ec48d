"""What data parallelism costs, per backend: one process against two processes on
loopback with one device each, in seconds per epoch and the share of an epoch that
goes to communication and synchronisation.

Every run is ``python -m kerasdnn.train`` (the seed network 784-500-250-10, its
defaults: 10 % of the training examples held out for validation, 10 steps per
execution) on MNIST-shaped random data (:func:`benchmarks.epoch_paths.make_data`)
written once to an ``npz:`` file of ``--examples`` training images, launched
through this module's worker, which sets the run's compute threads
(:func:`benchmarks._common.limit_threads`) before any backend is imported.  The
rows of each backend, each a fresh subprocess (or two) per round:

- **1 process, 1 thread**: no ``--data-parallel``; batch 100, all the examples;
- **1 process, 2 threads**: the same with two compute threads (the machine's two
  cores, where the two processes below have one each);
- **1 process, the per-process share**: batch 50 on half the examples, so the same
  steps per epoch as a process of the two-process run, 1 thread: its compute alone;
- **2 processes × 1 thread** (JAX, PyTorch): ``--data-parallel --coordinator
  127.0.0.1:PORT --num-processes 2 --process-id I``, one CPU device each (JAX:
  ``keras.distribution`` with gloo collectives; PyTorch: ``torch.distributed``
  over gloo); the global batch of 100 split into two shares of 50;
- **TensorFlow instead: 1 process, 2 logical devices, 2 threads**: kerasdnn has no
  multi-process mode on TensorFlow, so its row is ``--data-parallel --devices 2``
  (``MirroredStrategy`` over two logical CPU devices) in one process with two
  threads, one per replica.

Seconds per epoch are what the run's own ``epoch_times.json`` says (process 0's
``EpochTimer``: training and validation, no start-up), the first epoch of each run
left out (compilation); each cell is median [min–max] of the other epochs of all
rounds.

**communication + sync share** = (two-process epoch − per-process-share epoch) /
two-process epoch, medians: whatever a process of the two-process run spends beyond
computing its share (the all-reduces, waiting for its peer, and the data-parallel
step path itself: on JAX Keras's loop of one jitted step per batch instead of
kerasdnn's 10-step ``lax.scan``, which ``keras.distribution`` turns off).

**all-reduce, timed** (PyTorch only): the seconds process 0 spends in
``kerasdnn.network.steps.torch_parallel._all_reduce`` (gradients, loss and rows of
every training and validation step, the metrics when read; each call blocks until
the peer has joined it, so waiting is counted too), wrapped with a timer by this
module's worker, per epoch, as a share of the epoch.  JAX's all-reduce runs inside
the compiled step and TensorFlow's inside the strategy's graph: not timed there.

This process imports no backend.  Each backend needs an interpreter with it
installed: this one unless ``--python BACKEND=PATH`` names another.

Example (a few minutes a backend):
    python -m benchmarks.processes --examples 20000 --epochs 4 --repeats 1 \\
        --python jax=.tox/jax/bin/python --python torch=.tox/torch/bin/python \\
        --python tensorflow=.tox/tensorflow/bin/python --json processes.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BACKENDS,
    REPO_ROOT,
    Completed,
    command_line,
    interpreters,
    limit_threads,
    machine_info,
    machine_line,
    markdown_table,
    parse_backends,
    run_python,
    seconds_cell,
    summarize,
)
from kerasdnn.core.rundir import CONFIG_FILE, EPOCH_TIMES_FILE
from pipelines.constants import BATCH_SIZE

MODULE = "benchmarks.processes"
ONE, ONE_TWO_THREADS, SHARE, TWO = "one", "one-2-threads", "share", "two"
RUNS = (ONE, ONE_TWO_THREADS, SHARE, TWO)
SHARE_BATCH = BATCH_SIZE // 2  # a process's share of the global batch of two processes
TEST_EXAMPLES = 500  # the test split: evaluated after training, outside the epochs
HOST = "127.0.0.1"


def plan(backend: str, run: str) -> dict[str, Any]:
    """How ``run`` runs on ``backend``: its label, processes, threads per process,
    batch (global), the data (``full`` or ``half``) and its own flags.

    Example:
        >>> plan("torch", TWO)["processes"], plan("tensorflow", TWO)["flags"]
        (2, ['--data-parallel', '--devices', '2'])
    """
    if run == ONE:
        return {"label": "1 process", "processes": 1, "threads": 1, "batch": BATCH_SIZE,
                "data": "full", "flags": []}
    if run == ONE_TWO_THREADS:
        return {**plan(backend, ONE), "threads": 2}
    if run == SHARE:
        return {"label": "1 process, the per-process share (half the examples)",
                "processes": 1, "threads": 1, "batch": SHARE_BATCH, "data": "half",
                "flags": []}
    if run != TWO:
        raise ValueError(f"unknown run {run!r}; choose from {', '.join(RUNS)}")
    if backend == "tensorflow":  # no multi-process mode: one process, two replicas
        return {"label": "1 process, 2 logical devices (MirroredStrategy; TensorFlow has "
                         "no multi-process mode)",
                "processes": 1, "threads": 2, "batch": BATCH_SIZE, "data": "full",
                "flags": ["--data-parallel", "--devices", "2"]}
    return {"label": "2 processes on loopback, --data-parallel", "processes": 2,
            "threads": 1, "batch": BATCH_SIZE, "data": "full", "flags": ["--data-parallel"]}


def train_args(run_plan: dict[str, Any], data: Path, out: Path, epochs: int) -> list[str]:
    """The ``python -m kerasdnn.train`` arguments of one run (a multi-process run's
    coordinator flags come on top).

    Example:
        >>> train_args(plan("jax", SHARE), Path("d.npz"), Path("run"), 3)[:6]
        ['--dataset', 'npz:d.npz', '--epochs', '3', '--batch-size', '50']
    """
    return ["--dataset", f"npz:{data}", "--epochs", str(epochs), "--batch-size",
            str(run_plan["batch"]), "--out", str(out), "--quiet", *run_plan["flags"]]


# --------------------------------------------------------------------------- the data


def write_data(path: Path, examples: int) -> Path:
    """``examples`` MNIST-shaped training images and :data:`TEST_EXAMPLES` test images
    as an ``npz:`` dataset (``np.savez``) at ``path``."""
    import numpy as np

    from benchmarks.epoch_paths import make_data

    x_train, y_train = make_data(examples)
    x_test, y_test = make_data(TEST_EXAMPLES, seed=2)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def halve_data(full: Path, path: Path) -> Path:
    """The first half of ``full``'s training images (its test images whole) at ``path``."""
    import numpy as np

    with np.load(full) as data:
        half = len(data["x_train"]) // 2
        np.savez(path, x_train=data["x_train"][:half], y_train=data["y_train"][:half],
                 x_test=data["x_test"], y_test=data["y_test"])
    return path


# --------------------------------------------------------------------------- the worker


def run_worker(args: argparse.Namespace) -> int:
    """``python -m kerasdnn.train TRAIN_ARGS`` in this process, with ``args.threads``
    compute threads; a PyTorch process of a multi-process run also times its
    all-reduces, per epoch, into ``args.result``."""
    limit_threads(args.threads)  # before any backend import
    if os.environ.get("KERAS_BACKEND") == "torch" and "--num-processes" in args.train_args \
            and args.result:
        time_all_reduces(Path(args.result))
    from kerasdnn.train import main as train_main

    return train_main(args.train_args)


def time_all_reduces(result: Path) -> None:
    """Wrap ``torch_parallel._all_reduce`` with a timer and ``EpochTimer`` with a count
    of it: after each epoch, ``result`` holds every epoch's all-reduce seconds and calls
    (between the same two moments as the epoch's own seconds)."""
    from kerasdnn.network.steps import torch_parallel
    from kerasdnn.training.callbacks import EpochTimer

    totals = {"seconds": 0.0, "calls": 0}
    epochs: list[dict[str, float]] = []
    reduce, begin, end = (torch_parallel._all_reduce, EpochTimer.on_epoch_begin,
                          EpochTimer.on_epoch_end)

    def timed_reduce(tensor: Any) -> None:
        start = time.perf_counter()
        try:
            reduce(tensor)
        finally:
            totals["seconds"] += time.perf_counter() - start
            totals["calls"] += 1

    def on_epoch_begin(self: Any, epoch: int, logs: dict | None = None) -> None:
        self.all_reduce_before = dict(totals)
        begin(self, epoch, logs)

    def on_epoch_end(self: Any, epoch: int, logs: dict | None = None) -> None:
        end(self, epoch, logs)
        epochs.append({key: totals[key] - self.all_reduce_before[key] for key in totals})
        result.write_text(json.dumps({"all_reduce": epochs}))

    torch_parallel._all_reduce = timed_reduce
    EpochTimer.on_epoch_begin = on_epoch_begin
    EpochTimer.on_epoch_end = on_epoch_end


# --------------------------------------------------------------------------- one run


def worker_command(threads: int, result: Path, args: Sequence[str]) -> list[str]:
    """The ``python`` arguments of one process of a run.

    Example:
        >>> worker_command(1, Path("r.json"), ["--epochs", "2"])
        ['-m', 'benchmarks.processes', '--worker', 'train', '--threads', '1', '--result', \
'r.json', '--', '--epochs', '2']
    """
    return ["-m", MODULE, "--worker", "train", "--threads", str(threads), "--result",
            str(result), "--", *args]


def run_pair(python: str, backend: str, commands: Sequence[Sequence[str]],
             timeout: float) -> list[Completed]:
    """Run the ``python`` commands at once (the processes of one run), as
    :func:`benchmarks._common.run_python` runs one; when one fails, the others are
    stopped (they would wait for it until their join timeout)."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg",
                   "KERAS_BACKEND": backend}
    with tempfile.TemporaryDirectory(prefix="kerasdnn-bench-") as tmp:
        logs = [(Path(tmp) / f"{i}.out", Path(tmp) / f"{i}.err") for i in range(len(commands))]
        start = time.perf_counter()
        processes = []
        for command, (out, err) in zip(commands, logs, strict=True):
            with out.open("w") as stdout, err.open("w") as stderr:
                processes.append(subprocess.Popen([python, *command], cwd=REPO_ROOT,
                                                  env=environment, stdout=stdout,
                                                  stderr=stderr, text=True))
        timed_out = False
        try:
            while None in (codes := [process.poll() for process in processes]):
                failed = any(code not in (None, 0) for code in codes)
                timed_out = time.perf_counter() - start > timeout
                if failed or timed_out:
                    for process in processes:
                        if process.poll() is None:
                            process.kill()
                    break
                time.sleep(0.2)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
        seconds = time.perf_counter() - start
        return [Completed(None if timed_out and process.returncode < 0 else process.returncode,
                          seconds, out.read_text(), err.read_text())
                for process, (out, err) in zip(processes, logs, strict=True)]


def run_once(python: str, backend: str, run: str, data: dict[str, Path], work: Path,
             args: argparse.Namespace) -> dict[str, Any]:
    """One run: its epochs' seconds (the first left out), steps per epoch and, on a
    PyTorch two-process run, process 0's all-reduce seconds per epoch; or its error."""
    run_plan = plan(backend, run)
    out = Path(tempfile.mkdtemp(prefix=f"{backend}-{run}-", dir=work))
    base = train_args(run_plan, data[run_plan["data"]], out / "run", args.epochs)
    results = [out / f"result-{index}.json" for index in range(run_plan["processes"])]
    if run_plan["processes"] == 1:
        done = [run_python(worker_command(run_plan["threads"], results[0], base),
                           backend=backend, timeout=args.timeout,
                           env={"MPLBACKEND": "Agg"}, python=python)]
    else:
        from tuning.workers import free_port

        join = ["--coordinator", f"{HOST}:{free_port(HOST)}", "--num-processes",
                str(run_plan["processes"])]
        done = run_pair(python, backend, [
            worker_command(run_plan["threads"], result, [*base, *join, "--process-id",
                                                         str(index)])
            for index, result in enumerate(results)], args.timeout)
    row: dict[str, Any] = {"backend": backend, "run": run, **run_plan,
                           "wall_seconds": max(d.seconds for d in done),
                           "load_after": os.getloadavg()[0]}
    # a process that failed first, not one that run_pair stopped after it (SIGKILL)
    failures = [d.failure for d in sorted(done, key=lambda d: d.returncode == -9)
                if d.failure]
    times = out / "run" / EPOCH_TIMES_FILE
    if failures or not times.exists():
        row["error"] = failures[0] if failures else "no epoch_times.json written"
        for completed in done:
            sys.stderr.write(completed.stderr[-3000:])
    else:
        seconds = json.loads(times.read_text())["epoch_seconds"]
        record = json.loads((out / "run" / CONFIG_FILE).read_text())
        train_examples = record["dataset"]["num_examples"]["train"]
        row.update(first_epoch=seconds[0], seconds=seconds[1:], train_examples=train_examples,
                   steps=math.ceil(train_examples / run_plan["batch"]),
                   distribution=record.get("distribution"))
        if results[0].exists():
            row["all_reduce"] = json.loads(results[0].read_text())["all_reduce"][1:]
    shutil.rmtree(out, ignore_errors=True)
    return row


def run_all(args: argparse.Namespace, data: dict[str, Path], work: Path
            ) -> dict[str, list[dict[str, Any]]]:
    """``args.repeats`` rounds of every run of every backend (the runs' order reversed
    every other round); each (backend, run) one row, its rounds' epochs merged."""
    merged: dict[str, dict[str, dict[str, Any]]] = {b: {} for b in args.backends}
    for round_ in range(args.repeats):
        for backend in args.backends:
            for run in RUNS if round_ % 2 == 0 else RUNS[::-1]:
                row = run_once(args.interpreters[backend], backend, run, data, work, args)
                print(f"{MODULE}: round {round_ + 1}/{args.repeats}, {backend}, {run}: "
                      f"{row['wall_seconds']:.0f} s"
                      + (f" ({row['error']})" if "error" in row else ""),
                      file=sys.stderr, flush=True)
                into = merged[backend].setdefault(run, {
                    **{key: row[key] for key in ("backend", "run", *plan(backend, run))},
                    "seconds": [], "all_reduce": [], "errors": [], "rounds": []})
                into["seconds"] += row.get("seconds", [])
                into["all_reduce"] += row.get("all_reduce", [])
                for key in ("train_examples", "steps", "distribution"):
                    if key in row:
                        into[key] = row[key]
                if "error" in row:
                    into["errors"].append(row["error"])
                into["rounds"].append({key: row[key] for key in (
                    "wall_seconds", "load_after", "first_epoch", "error") if key in row})
    return {backend: [{**row, **(summarize(row["seconds"]) if row["seconds"] else {})}
                      for run in RUNS if (row := runs.get(run))]
            for backend, runs in merged.items()}


# --------------------------------------------------------------------------- the table


def communication_share(two: float, share: float) -> float:
    """(two-process epoch − per-process-share epoch) / two-process epoch.

    Example:
        >>> round(communication_share(two=1.0, share=0.6), 3)
        0.4
    """
    return (two - share) / two


def all_reduce_cell(epochs: Sequence[dict[str, float]], seconds: Sequence[float]) -> str:
    """Process 0's all-reduce time as a share of its epochs (median [min–max] over
    the epochs), with the median seconds and calls per epoch.

    Example:
        >>> all_reduce_cell([{"seconds": 0.2, "calls": 40}, {"seconds": 0.3, "calls": 40}],
        ...                 [1.0, 1.0])
        '25% [20%–30%] (0.25 s, 40 calls/epoch)'
    """
    shares = [epoch["seconds"] / total for epoch, total in zip(epochs, seconds, strict=True)]
    stats = summarize(shares)
    middle = summarize([epoch["seconds"] for epoch in epochs])["median"]
    calls = summarize([epoch["calls"] for epoch in epochs])["median"]
    return (f"{stats['median']:.0%} [{stats['min']:.0%}–{stats['max']:.0%}] "
            f"({middle:.2f} s, {calls:.0f} calls/epoch)")


def format_table(results: dict[str, list[dict[str, Any]]]) -> str:
    """One Markdown table, a row per (backend, run); ÷ the backend's 1-process,
    1-thread row; the shares on the two-process (TensorFlow: two-device) row.

    Example:
        >>> rows = [{**plan("torch", run), "run": run, "steps": 36, "errors": [],
        ...          **summarize(seconds)}
        ...         for run, seconds in ((ONE, [1.0]), (ONE_TWO_THREADS, [0.8]),
        ...                              (SHARE, [0.6]), (TWO, [1.2]))]
        >>> rows[-1]["all_reduce"] = [{"seconds": 0.3, "calls": 80}]
        >>> table = format_table({"torch": rows}).splitlines()
        >>> [cell.strip() for cell in table[-1].split("|")[6:-1]]
        ['1.20 [1.20–1.20]', '1.20', '50%', '25% [25%–25%] (0.30 s, 80 calls/epoch)']
    """
    header = ["backend", "run", "processes × threads", "batch per replica", "steps/epoch",
              "s/epoch: median [min–max]", "÷ 1 process, 1 thread",
              "communication + sync share", "all-reduce, timed (process 0)"]
    lines = []
    for backend, rows in results.items():
        by_run = {row["run"]: row for row in rows}
        base = by_run.get(ONE, {}).get("median")
        share = by_run.get(SHARE, {}).get("median")
        for row in rows:
            run_plan = plan(backend, row["run"])
            per_replica = run_plan["batch"] // (2 if row["run"] == TWO else 1)
            cells = [backend, run_plan["label"],
                     f"{run_plan['processes']} × {run_plan['threads']}",
                     f"{per_replica}" + (f" (of {run_plan['batch']})"
                                         if per_replica != run_plan["batch"] else ""),
                     str(row.get("steps", ""))]
            if "median" not in row:
                errors = row.get("errors") or ["no epochs timed"]
                lines.append([*cells, f"error: {errors[0]}", "", "", ""])
                continue
            shared = communication_share(row["median"], share) \
                if row["run"] == TWO and share is not None else None
            timed = all_reduce_cell(row["all_reduce"], row["seconds"]) \
                if row.get("all_reduce") else ("not timed" if row["run"] == TWO else "")
            lines.append([*cells, seconds_cell(row),
                          f"{row['median'] / base:.2f}" if base else "",
                          "" if shared is None else f"{shared:.0%}",
                          timed])
    return markdown_table(header, lines)


def notes(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The lines under the table: steps per epoch that differ between a backend's
    runs (the shares compare equal steps) and errors of some rounds."""
    lines = []
    for backend, rows in results.items():
        steps = {row["steps"] for row in rows if "steps" in row}
        if len(steps) > 1:
            lines.append(f"{backend}: steps per epoch differ between the runs "
                         f"({sorted(steps)}): a multiple of 200 --examples keeps them equal")
        for row in rows:
            if row.get("errors") and "median" in row:
                lines.append(f"{backend}, {row['run']}: {len(row['errors'])} round(s) failed: "
                             f"{row['errors'][0]}")
    return lines


# --------------------------------------------------------------------------- the command


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="Seconds per epoch of one process against two processes on loopback "
                    "(TensorFlow: two logical devices in one process), and the share of "
                    "an epoch spent on communication and synchronisation, per backend.")
    parser.add_argument("--backends", default=",".join(BACKENDS), type=parse_backends,
                        help="comma-separated Keras backends (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=20_000,
                        help="training images, 10 %% of them held out for validation "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=4,
                        help="epochs per run, the first not counted (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds, each a fresh run of every row (default: %(default)s)")
    parser.add_argument("--python", action="append", default=[], metavar="BACKEND=PATH",
                        help="the interpreter of one backend (repeatable; default: this one)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds each run may take (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--worker", choices=["train"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("train_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return args
    if args.train_args:
        parser.error(f"unrecognized arguments: {' '.join(args.train_args)}")
    if args.epochs < 2 or args.repeats < 1 or args.examples < 2 * BATCH_SIZE:
        parser.error(f"--epochs must be >= 2 (the first is not counted), --repeats >= 1 and "
                     f"--examples >= {2 * BATCH_SIZE}")
    try:
        args.interpreters = interpreters(args.python, args.backends)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:  # launched by run_once
        return run_worker(args)
    machine = machine_info()
    work = Path(tempfile.mkdtemp(prefix="kerasdnn-processes-"))
    try:
        data = {"full": write_data(work / "full.npz", args.examples)}
        data["half"] = halve_data(data["full"], work / "half.npz")
        results = run_all(args, data, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nSeed network 784-500-250-10, global batch {BATCH_SIZE}, {args.examples:,} "
          f"MNIST-shaped examples (10 % held out for validation), {args.epochs} epochs per "
          f"run (the first not counted), {args.repeats} round(s); {machine_line(machine)}\n")
    print(format_table(results))
    for line in notes(results):
        print(f"- {line}")
    if args.json:
        from kerasdnn.core.io import atomic_write_json

        atomic_write_json(args.json, {"command": command_line(MODULE, argv),
                                      "machine": machine, "results": results})
    return 0 if all("median" in row for rows in results.values() for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
