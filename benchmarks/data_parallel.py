"""What JAX data parallelism costs kerasdnn's multi-step path: seconds per epoch of
the seed network (784-500-250-10, batch 100, MNIST-shaped data in memory) with 10
steps per execution and with 1, on

- **1 device**: no distribution, so 10 steps run as one compiled ``lax.scan``;
- **1 device, DataParallel**: ``keras.distribution.DataParallel`` over that one
  device: the step is the same, but ``JAXStep.make_train_function`` falls back to
  Keras 3.15's own loop (one jitted step per batch, called from Python);
- **2 virtual devices, DataParallel**: as ``kerasdnn.train --data-parallel
  --devices 2`` runs on a host without accelerators (the host CPU split in two),
  with the same fallback.

Each (setting, round) is one fresh subprocess (JAX fixes its device count when it
starts) that builds the data as ``benchmarks.epoch``'s kerasdnn row does, then
times two epochs after two warm-up epochs (a ``DataParallel`` fit compiles its
step once more in its second epoch) for each steps-per-execution value (their
order reversed every other round, and so is the order of the subprocesses).
Rows show median [min–max] over the rounds' epochs.

Example:
    python -m benchmarks.data_parallel --repeats 3 --examples 20000 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    add_worker_arguments,
    command_line,
    limit_threads,
    machine_info,
    machine_line,
    markdown_table,
    run_worker_process,
    seconds_cell,
    summarize,
)
from benchmarks.epoch_paths import (
    BATCH_SIZE,
    fit_epoch_seconds,
    kerasdnn_model,
    kerasdnn_stream,
    make_data,
)

# worker name -> (what the table calls it, devices, under DataParallel)
SETTINGS = {
    "single": ("1 device", 1, False),
    "dp1": ("1 device, DataParallel", 1, True),
    "dp2": ("2 virtual devices, DataParallel", 2, True),
}
STEPS_PER_EXECUTION = (10, 1)
TIMED_EPOCHS = 2


def run_worker(name: str, args: argparse.Namespace) -> None:
    """Time one epoch per steps-per-execution value in setting ``name``; append each
    row as a JSON line to ``args.result``."""
    from kerasdnn.training.distribute import configure_devices, padded_iterator, strategy_scope

    label, devices, distributed = SETTINGS[name]
    replicas = configure_devices("jax", devices)  # before JAX starts its devices
    import pipelines.feed

    images, labels = make_data(args.examples)
    workdir = Path(tempfile.mkdtemp(prefix="kerasdnn-bench-"))
    scope = strategy_scope("jax", replicas) if distributed else contextlib.nullcontext()
    values = STEPS_PER_EXECUTION if args.round % 2 == 0 else STEPS_PER_EXECUTION[::-1]
    try:
        with scope:
            splits, steps = kerasdnn_stream(images, labels, workdir)
            for wanted in values:
                model = kerasdnn_model(steps, wanted)
                fed = pipelines.feed.for_fit(splits.train)
                if distributed:  # as kerasdnn.train feeds it
                    fed = padded_iterator(fed, replicas)
                seconds = fit_epoch_seconds(model, fed, 1 + TIMED_EPOCHS,
                                            steps_per_epoch=steps)[1:]  # 2 warm-up epochs
                scanned = "_scanned_steps" in getattr(model.train_function, "__qualname__", "")
                row = {"setting": name, "label": label, "devices": replicas, "asked": wanted,
                       "threads": max(args.threads, devices) if args.threads else "default",
                       "steps_per_execution": model.steps_per_execution,
                       "runs_as": _runs_as(model.steps_per_execution, scanned),
                       "load_average_after": list(os.getloadavg()), **summarize(seconds)}
                with open(args.result, "a") as stream:
                    stream.write(json.dumps(row) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _runs_as(steps_per_execution: int, scanned: bool) -> str:
    if scanned:
        return f"{steps_per_execution} steps as one lax.scan"
    if steps_per_execution > 1:
        return f"Keras's Python loop: {steps_per_execution} jitted steps per call"
    return "one jitted step per call"


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``args.repeats`` rounds of one subprocess per setting; the rounds merged per row."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    names = list(SETTINGS)
    for round_ in range(args.repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            done, text = run_worker_process(
                "benchmarks.data_parallel", name,
                ["--examples", str(args.examples), "--round", str(round_),
                 "--threads", str(args.threads)],
                backend="jax", timeout=args.timeout)
            print(f"benchmarks.data_parallel: round {round_ + 1}/{args.repeats}, {name}: "
                  f"{done.seconds:.0f} s" + (f" ({done.failure})" if done.failure else ""),
                  file=sys.stderr, flush=True)
            if done.failure:
                print(done.stderr[-3000:], file=sys.stderr)
            written = [json.loads(line) for line in (text or "").splitlines()]
            for row in written:
                into = merged.setdefault((name, row["asked"]), {**row, "seconds": []})
                into["seconds"] += row["seconds"]
            for asked in set(STEPS_PER_EXECUTION) - {row["asked"] for row in written}:
                into = merged.setdefault((name, asked), {
                    "setting": name, "label": SETTINGS[name][0], "asked": asked,
                    "steps_per_execution": asked, "seconds": [], "errors": []})
                into.setdefault("errors", []).append(_reason(done))
    rows = [{**row, **(summarize(row["seconds"]) if row["seconds"] else {})}
            for row in merged.values()]
    order = {name: index for index, name in enumerate(SETTINGS)}
    return sorted(rows, key=lambda row: (order[row["setting"]], -row["asked"]))


def _reason(done: Any) -> str:
    """Why a worker wrote no row: XLA's own fatal line when there is one."""
    fatal = [line for line in done.stderr.splitlines() if line.startswith("F")]
    if fatal:
        return fatal[-1].split("] ", 1)[-1][:160]
    return done.failure or "no result written"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A row per (setting, steps per execution); ÷ the 1-device ``lax.scan`` row."""
    base = next((row["median"] for row in rows if "median" in row
                 and row["setting"] == "single" and row["steps_per_execution"] > 1), None)
    header = ["devices", "threads", "steps/execution", "how the steps run",
              "s/epoch: median [min–max]", "÷ 1 device, lax.scan", "rounds failed"]
    lines = []
    for row in rows:
        errors = row.get("errors", [])
        if "median" not in row:
            lines.append([row["label"], "", str(row["asked"]), f"error: {errors[0]}", "", "",
                          str(len(errors))])
            continue
        lines.append([row["label"], str(row["threads"]), str(row["steps_per_execution"]),
                      row["runs_as"], seconds_cell(row),
                      f"{row['median'] / base:.2f}" if base else "",
                      f"{len(errors)}: {errors[0]}" if errors else "0"])
    return markdown_table(header, lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.data_parallel",
        description="Seconds per epoch on JAX: 1 device vs DataParallel, 10 vs 1 steps per "
                    "execution, one subprocess per setting and round.")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds, each a fresh subprocess per setting (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=30_000,
                        help="training examples per epoch (default: %(default)s)")
    add_worker_arguments(parser, list(SETTINGS))
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.examples < BATCH_SIZE:
        parser.error(f"--repeats must be >= 1 and --examples >= {BATCH_SIZE}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:  # launched by run_worker_process
        # A thread per virtual device at least, so that the devices' halves of an
        # all-reduce can run at once (BENCHMARKS.md: XLA's CPU all-reduce aborted runs).
        devices = SETTINGS[args.worker][1]
        limit_threads(max(args.threads, devices) if args.threads else 0)
        run_worker(args.worker, args)
        return 0
    machine = machine_info()
    rows = run_all(args)
    print(f"\nJAX, seed network 784-500-250-10, batch {BATCH_SIZE}, {args.examples:,} "
          f"examples/epoch, {args.repeats} round(s), {args.threads or 'default'} thread(s); "
          f"{machine_line(machine)}\n")
    print(format_table(rows))
    if args.json:
        from kerasdnn.core.io import atomic_write_json

        atomic_write_json(args.json, {"command": command_line("benchmarks.data_parallel", argv),
                                      "machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
