"""A whole run on a table several times larger than the memory it is allowed (issue 23):
``kerasdnn.train(dataset="csv:...", stream=True)`` under an enforced memory limit,
and the same run without ``stream`` under the same limit.

The limit is the kernel's, not a measurement: each run is a fresh process placed in a
memory cgroup of its own (cgroup v1 ``memory.limit_in_bytes``, or v2 ``memory.max``;
swap forbidden too where the kernel counts it) that holds its imports and everything
it allocates; above the limit the kernel reclaims what it can (the page cache of the
file read) and then kills the process (status -9, the OOM killer). Creating a cgroup
needs root on a writable cgroup file system; where it cannot, the benchmark says so
in one line and exits 2.

The table is :mod:`benchmarks.streaming`'s messy synthetic CSV (6 numeric columns
with 5 % missing, 2 text columns, a label of 3 classes), ``--rows`` rows. Each run is
``benchmarks.streaming``'s memory worker with ``--train``: the imports (TensorFlow,
pandas, Arrow, Keras's backend), then the peak reset, then ``kerasdnn.train(...,
target="label", epochs=1)`` (the seed network 500-250, batch 100; its statistics pass,
training, validation, the test predictions, the report and its plots, the model); it
reports its resident memory after the imports, its peak (``VmHWM``), the seconds and
the test accuracy. ``--unlimited`` also runs the in-memory run without a limit, to
show what it needs.

Usage:
    python -m benchmarks.memory_limit [--rows 8000000] [--limit-mb 2000] [--unlimited]
        [--quick] [--json memory_limit.json]

Example:
    >>> outcome(Completed(-9, 3.0, "", ""))
    'killed by the OOM killer at the limit (status -9)'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    REPO_ROOT,
    Completed,
    command_line,
    machine_info,
    machine_line,
    markdown_table,
)
from benchmarks.streaming import MODULE as STREAMING
from benchmarks.streaming import write_csv

MODULE = "benchmarks.memory_limit"
QUICK = {"rows": 200_000, "limit_mb": 1500}
_V1, _V2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")


class CannotLimit(RuntimeError):
    """No memory cgroup can be made here (not root, or no writable cgroup fs)."""


@contextlib.contextmanager
def memory_cgroup(limit_mb: int) -> Iterator[Path]:
    """A fresh memory cgroup limited to ``limit_mb`` MB (no swap), removed on exit:
    its ``cgroup.procs`` is what a process writes its pid to, to join it."""
    limit = str(limit_mb * 1024 * 1024)
    name = f"kerasdnn-benchmark-{os.getpid()}-{time.monotonic_ns()}"
    if (_V1 / "memory.limit_in_bytes").exists():
        group, files = _V1 / name, ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    elif "memory" in _read(_V2 / "cgroup.controllers").split():
        group, files = _V2 / name, ["memory.max", "memory.swap.max"]
    else:
        raise CannotLimit("no memory cgroup controller under /sys/fs/cgroup")
    try:
        group.mkdir()
        for file in files:  # the swap limit after the memory one (v1 needs memsw >= mem)
            if (group / file).exists():
                (group / file).write_text(limit if "swap" not in file else "0")
    except OSError as error:
        with contextlib.suppress(OSError):
            group.rmdir()
        raise CannotLimit(f"cannot make a memory cgroup at {group}: {error.strerror} "
                          "(run as root on a writable cgroup file system)") from error
    try:
        yield group
    finally:
        with contextlib.suppress(OSError):
            group.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def run_limited(arguments: Sequence[str], limit_mb: int | None, timeout: float) -> Completed:
    """``python ARGUMENTS`` from the repository root, in a memory cgroup of ``limit_mb``
    MB of its own (``None``: no limit); its status, seconds and output."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, *arguments]
    with contextlib.ExitStack() as stack:
        if limit_mb is not None:
            group = stack.enter_context(memory_cgroup(limit_mb))
            # joins before exec: the interpreter's own start-up counts against the limit
            command = ["sh", "-c", f'echo $$ > "{group}/cgroup.procs" && exec "$@"', "sh",
                       *command]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=REPO_ROOT, env=environment,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Completed(None, time.perf_counter() - start, "", "")
        return Completed(done.returncode, time.perf_counter() - start, done.stdout,
                         done.stderr)


def outcome(done: Completed) -> str:
    """What became of a run, in words."""
    if done.returncode == 0:
        return "completed"
    if done.returncode == -9:
        return "killed by the OOM killer at the limit (status -9)"
    if done.returncode is None:
        return "timed out"
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return f"failed (status {done.returncode}): {last[:160]}"


def measure(csv: Path, *, stream: bool, limit_mb: int | None, timeout: float
            ) -> dict[str, Any]:
    """One whole run (``benchmarks.streaming``'s memory worker with ``--train``)."""
    done = run_limited(["-m", STREAMING, "--worker", "memory", "--csv", str(csv), "--train",
                        *(["--stream"] if stream else [])], limit_mb, timeout)
    row: dict[str, Any] = {"mode": "streamed" if stream else "in memory",
                           "limit_mb": limit_mb, "outcome": outcome(done),
                           "wall_seconds": done.seconds}
    if done.returncode == 0:
        row.update(json.loads(done.stdout.strip().splitlines()[-1]))
    else:
        sys.stderr.write(done.stderr[-2000:])
    return row


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The runs as a Markdown table."""
    def mb(value: float | None) -> str:
        return "" if value is None else f"{value:,.0f}"

    body = []
    for row in rows:
        baseline, peak = row.get("baseline_mb"), row.get("peak_mb")
        limit = row["limit_mb"]
        body.append([
            f"kerasdnn.train, {row['mode']}", "none" if limit is None else f"{limit:,}",
            mb(baseline),
            "" if limit is None or baseline is None else mb(limit - baseline),
            "" if peak is None else f"{mb(peak)} (+{mb(peak - baseline)})",
            row["outcome"],
            "" if row.get("test_accuracy") is None else f"{row['test_accuracy']:.4f}",
            f"{row['wall_seconds']:.0f}"])
    return markdown_table(["run", "limit MB", "RSS after imports MB",
                           "allowed over the imports MB", "peak RSS MB (+ over imports)",
                           "outcome", "test accuracy", "s"], body)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="A streamed run and an in-memory run of the same CSV under an enforced "
                    "memory limit (a cgroup of their own; needs root).")
    parser.add_argument("--rows", type=int, default=8_000_000,
                        help="rows of the CSV (default: %(default)s)")
    parser.add_argument("--limit-mb", type=int, default=2000,
                        help="each run's memory limit, its imports included "
                             "(default: %(default)s)")
    parser.add_argument("--unlimited", action="store_true",
                        help="also run the in-memory run without a limit")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke test: --rows {QUICK['rows']} --limit-mb "
                             f"{QUICK['limit_mb']}")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds each run may take (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.limit_mb = QUICK["rows"], QUICK["limit_mb"]
    if args.rows < 10_000 or args.limit_mb < 100:
        parser.error("--rows must be >= 10000 and --limit-mb >= 100")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with memory_cgroup(args.limit_mb):
            pass
    except CannotLimit as error:
        print(f"python -m {MODULE}: error: {error}", file=sys.stderr)
        return 2
    machine = machine_info()
    work = Path(tempfile.mkdtemp(prefix="kerasdnn-memory-limit-"))
    started = time.perf_counter()
    try:
        csv = write_csv(work / "table.csv", args.rows)
        file_mb = csv.stat().st_size / 2**20
        rows = [measure(csv, stream=True, limit_mb=args.limit_mb, timeout=args.timeout),
                measure(csv, stream=False, limit_mb=args.limit_mb, timeout=args.timeout)]
        if args.unlimited:
            rows.append(measure(csv, stream=False, limit_mb=None, timeout=args.timeout))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    backend = os.environ.get("KERAS_BACKEND", "Keras's configured backend")
    print(f"\n{machine_line(machine)}; load after: {os.getloadavg()[0]:.1f}; backend "
          f"{backend}; {time.perf_counter() - started:.0f} s in all\n")
    print(f"A CSV of {args.rows:,} rows ({file_mb:,.0f} MB; 6 numeric, 2 text columns, a "
          f"label of 3 classes), one epoch, batch 100; each run in a memory cgroup of its "
          f"own\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"command": command_line(MODULE, argv), "machine": machine, "backend": backend,
             "rows": args.rows, "file_mb": file_mb, "runs": rows}, indent=2))
    return 0 if rows[0]["outcome"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
