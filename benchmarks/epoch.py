"""Seconds per training epoch of the seed network (784-500-250-10, ReLU,
SGD lr 0.01 momentum 0.9, batch 100 or ``--batch-size``) on MNIST-shaped data made
in memory (uint8 images, 10 classes), side by side:

- **kerasdnn**: exactly what ``kerasdnn.train`` runs: ``pipelines.load`` (uint8
  images → scaling, cache, a seeded permutation per epoch, one gather per batch,
  prefetch) → the input path ``"auto"`` resolves to
  (:func:`kerasdnn.training.input_path.resolve_input_path`: resident where the
  examples fit, the row's label says which) →
  ``pipelines.feed.for_fit`` → ``fit`` of ``kerasdnn.build_model()`` with the
  custom step;
- **kerasdnn, tf.data stream**: the same with the input path forced to ``"stream"``:
  the ``tf.data`` stream's blocks handed over from the host (JAX, PyTorch), the
  dataset read in-graph (TensorFlow);
- **kerasdnn, jit_compile=True** (TensorFlow): the ``kerasdnn`` row with XLA, which
  Keras's ``"auto"`` leaves off on a CPU (its first, compiling epoch is not timed);
- **stock Keras**: ``fit`` of a plain ``keras.Sequential`` on in-memory float32
  arrays with Keras's own step, at Keras's defaults, and (TensorFlow, JAX) with
  ``steps_per_execution=10`` as a Keras user who reads the docs sets it;
- **pure PyTorch**: the classic loop (``nn.Linear`` ×3, ``CrossEntropyLoss``,
  ``optim.SGD``, slicing pre-made shuffled tensors), once, without Keras;
- **FLOP floor**: 6 × parameters × examples ÷ the float32 rate of a large GEMM.
  Each library's rate (through its own matmul) is shown on its floor row; every
  ``÷ floor`` divides by one machine-level floor, the best rate of any library in
  the run (the hardware's limit does not depend on the library).

``--repeats`` rounds; in each, every backend runs in its own subprocess
(``--worker``; this parent process imports none) and times each of its rows for
one epoch after a warm-up epoch.  The order of the subprocesses and of the rows
inside each is reversed every other round, so drift of the machine's speed does
not favour one row.  Rows show the median and [min–max] over the rounds;
``÷ stock Keras`` divides by the faster of the two stock rows.
:mod:`benchmarks.epoch_grid` runs all this over several sizes and batch sizes.

Example:
    python -m benchmarks.epoch --backends tensorflow,jax,torch --repeats 3 --json epoch.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BACKENDS,
    add_worker_arguments,
    command_line,
    limit_threads,
    machine_info,
    machine_line,
    markdown_table,
    parse_backends,
    run_worker_process,
    seconds_cell,
    summarize,
)
from benchmarks.epoch_paths import (
    BATCH_SIZE,
    DEFAULT_STEPS_PER_EXECUTION,
    EXPECTED_PATHS,
    FLOOR,
    FLOPS_PER_EXAMPLE,
    KERASDNN,
    KERASDNN_PATHS,
    KERASDNN_STREAM,
    KERASDNN_XLA,
    PARAMETERS,
    PURE_LOOP,
    PURE_TORCH,
    STOCK_KERAS,
    STOCK_KERAS_SPE,
    STOCK_PATHS,
    STOCK_STEPS_PER_EXECUTION,
    keras_device,
    keras_gemm_gflops,
    make_data,
    time_kerasdnn,
    time_pure_torch,
    time_stock_keras,
    torch_device,
    torch_gemm_gflops,
)

# --------------------------------------------------------------------------- worker side


def run_worker(name: str, args: argparse.Namespace) -> None:
    """Measure every row of one worker (one round: ``args.repeats`` timed epochs
    each, in reverse order on odd ``args.round``); append each as a JSON line to
    ``args.result``.

    A row that fails is written with its error, and the next row still runs.
    """
    images, labels = make_data(args.examples)
    result_file = Path(args.result)

    def emit(path: str, device: str, measure: Callable[[], dict[str, Any]]) -> None:
        row: dict[str, Any] = {"backend": name, "path": path, "device": device}
        try:
            row.update(measure())
        except Exception as error:  # reported as an error row
            traceback.print_exc()
            message = str(error).strip().splitlines()
            row["error"] = f"{type(error).__name__}: {message[0] if message else ''}".strip()
        row["load_average_after"] = list(os.getloadavg())  # other work on the machine skews rows
        with result_file.open("a") as stream:
            stream.write(json.dumps(row) + "\n")

    min_seconds = 0.3 if args.examples < 10_000 else 1.0
    batch = args.batch_size
    if name == PURE_TORCH:
        device = torch_device()
        rows: dict[str, Callable[[], dict[str, Any]]] = {
            FLOOR: lambda: {"gflops": torch_gemm_gflops(device, min_seconds)},
            PURE_LOOP: lambda: time_pure_torch(images, labels, args.repeats, batch),
        }
    else:
        device = keras_device(name)
        workdir = Path(tempfile.mkdtemp(prefix="kerasdnn-bench-"))

        def kerasdnn_row(input_path: str, jit_compile: bool | str = "auto"
                         ) -> Callable[[], dict[str, Any]]:
            return lambda: time_kerasdnn(
                images, labels, args.repeats, args.device_prefetch == "on", workdir,
                args.steps_per_execution, batch, input_path, jit_compile)

        rows = {
            FLOOR: lambda: {"gflops": keras_gemm_gflops(name, device, min_seconds)},
            STOCK_KERAS: lambda: time_stock_keras(images, labels, args.repeats, 1, batch),
            STOCK_KERAS_SPE: lambda: time_stock_keras(images, labels, args.repeats,
                                                      STOCK_STEPS_PER_EXECUTION, batch),
            KERASDNN: kerasdnn_row("auto"),  # what kerasdnn.train takes by default
            KERASDNN_STREAM: kerasdnn_row("stream"),
            KERASDNN_XLA: kerasdnn_row("auto", jit_compile=True),
        }
    paths = [path for path in rows if path in EXPECTED_PATHS[name]]
    try:
        for path in paths if args.round % 2 == 0 else paths[::-1]:
            emit(path, device, rows[path])
    finally:
        if name != PURE_TORCH:
            shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- parent side


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``args.repeats`` rounds of one subprocess per worker (in reverse order every
    other round), each timing one epoch per row; the rounds' rows merged
    (:func:`merge_rounds`); rows a worker could not write become error rows."""
    names = [*args.backends, PURE_TORCH]
    written: list[dict[str, Any]] = []
    for round_ in range(args.repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            print(f"benchmarks.epoch: round {round_ + 1}/{args.repeats}, {name} ...",
                  file=sys.stderr, flush=True)
            done, text = run_worker_process(
                "benchmarks.epoch", name,
                ["--examples", str(args.examples), "--repeats", "1", "--round", str(round_),
                 "--batch-size", str(args.batch_size),
                 "--device-prefetch", args.device_prefetch,
                 "--steps-per-execution", str(args.steps_per_execution),
                 "--threads", str(args.threads)],
                backend="torch" if name == PURE_TORCH else name, timeout=args.timeout,
            )
            rows = [json.loads(line) for line in (text or "").splitlines()]
            got = {row["path"] for row in rows}
            written += rows
            written += [{"backend": name, "path": path,
                         "error": done.failure or "no result written"}
                        for path in EXPECTED_PATHS[name] if path not in got]
            print(f"benchmarks.epoch: {name} done in {done.seconds:.0f} s"
                  + (f" ({done.failure})" if done.failure else ""), file=sys.stderr, flush=True)
            if done.failure or any("error" in row for row in rows):
                print(done.stderr[-3000:], file=sys.stderr)
    return merge_rounds(written)


def merge_rounds(written: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (backend, path), in first-seen order: the seconds of every round
    (median, min, max), the best GEMM rate of every round (each round's in
    ``gflops_rounds``); a row with no successful round keeps its first error.

    Example:
        >>> rows = merge_rounds([{"backend": "jax", "path": FLOOR, "gflops": 2.0},
        ...                      {"backend": "jax", "path": FLOOR, "gflops": 3.0}])
        >>> rows[0]["gflops"], rows[0]["gflops_rounds"]
        (3.0, [2.0, 3.0])
    """
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in written:
        key = (row["backend"], row["path"])
        into = merged.setdefault(key, {"backend": row["backend"], "path": row["path"]})
        if "error" in row:
            into.setdefault("errors", []).append(row["error"])
            continue
        for name in ("device", "examples", "batch_size", "steps_per_execution", "input_path"):
            if name in row:
                into[name] = row[name]
        if "gflops" in row:
            into.setdefault("gflops_rounds", []).append(row["gflops"])
        if "seconds" in row:
            into.setdefault("seconds", []).extend(row["seconds"])
        if "first_epoch_seconds" in row:  # tracing and compiling included: not in the median
            into.setdefault("first_epoch_seconds", []).append(row["first_epoch_seconds"])
        if "load_average_after" in row:
            into.setdefault("load_average_after", []).append(row["load_average_after"])
    for row in merged.values():
        if "gflops_rounds" in row:
            row["gflops"] = max(row["gflops_rounds"])
        elif "seconds" in row:
            row.update(summarize(row.pop("seconds")))
        else:
            row["error"] = row["errors"][0]
    return list(merged.values())


def machine_gflops(rows: Sequence[dict[str, Any]]) -> float | None:
    """The machine-level GEMM rate: the best of any library's floor row (``None``: none).

    Example:
        >>> machine_gflops([{"path": FLOOR, "gflops": 90.0}, {"path": FLOOR, "gflops": 120.0}])
        120.0
    """
    rates = [row["gflops"] for row in rows if row["path"] == FLOOR and "gflops" in row]
    return max(rates) if rates else None


def add_derived(rows: list[dict[str, Any]], examples: int) -> None:
    """Fill in examples/s, the floors in seconds and the ratios (per example, in place).

    Each floor row gets the seconds at its own library's GEMM rate, and its
    ``÷ floor``: that library's floor ÷ the machine-level floor (best rate of any
    library, :func:`machine_gflops`), which every other row's ``÷ floor`` divides
    by.  ``÷ stock Keras`` (stock and kerasdnn rows, both input paths) divides by
    the faster stock row of the same backend.

    Ratios compare seconds per example, so a row that trained on slightly fewer
    examples (the kerasdnn validation split) is still compared fairly; its
    seconds per epoch are scaled to ``examples``.
    """
    def per_example(backend: str, path: str) -> float | None:
        for row in rows:
            if row["backend"] == backend and row["path"] == path and "median" in row:
                return row["median"] / row["examples"]
        return None

    best = machine_gflops(rows)
    machine_floor = FLOPS_PER_EXAMPLE / (best * 1e9) if best else None
    for row in rows:
        if "gflops" in row:
            floor = FLOPS_PER_EXAMPLE * examples / (row["gflops"] * 1e9)
            row.update(examples=examples, **summarize([floor]))
        elif "median" in row and row["examples"] != examples:
            row["measured"] = {key: row[key]
                               for key in ("examples", "seconds", "median", "min", "max")}
            row.update(summarize([s * examples / row["examples"] for s in row["seconds"]]))
            row["examples"] = examples
        if "median" in row:
            row["examples_per_second"] = row["examples"] / row["median"]
    pure = per_example(PURE_TORCH, PURE_LOOP)
    for row in rows:
        if "median" not in row:
            continue
        mine = row["median"] / row["examples"]
        if row["path"] == FLOOR:
            row["ratios"] = {"floor": mine / machine_floor} if machine_floor else {}
            continue
        stock = [value for value in (per_example(row["backend"], path) for path in STOCK_PATHS)
                 if value]
        references = {"floor": machine_floor, "pure_pytorch": pure,
                      "stock_keras": min(stock) if stock else None}
        if row["path"] not in (*KERASDNN_PATHS, *STOCK_PATHS):
            references.pop("stock_keras")
        if row["path"] == PURE_LOOP:
            references.pop("pure_pytorch")
        row["ratios"] = {name: mine / ref for name, ref in references.items() if ref}


def path_label(row: dict[str, Any]) -> str:
    """A row's path as the tables show it: the kerasdnn row with the input path it
    took (the stream row names its own).

    Example:
        >>> path_label({"path": KERASDNN, "input_path": "resident"})
        'kerasdnn (resident)'
        >>> path_label({"path": KERASDNN_STREAM, "input_path": "stream"})
        'kerasdnn, tf.data stream'
    """
    if row["path"] == KERASDNN and "input_path" in row:
        return f"{KERASDNN} ({row['input_path']})"
    return row["path"]


def backend_label(row: dict[str, Any]) -> str:
    """A row's backend as the tables show it, with its device where known.

    Example:
        >>> backend_label({"backend": PURE_TORCH, "device": "cpu"})
        'torch (no Keras) (cpu)'
    """
    backend = row["backend"] if row["backend"] != PURE_TORCH else "torch (no Keras)"
    return backend + (f" ({row['device']})" if "device" in row else "")


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The one table: a row per (backend, path), ratios where they apply."""
    header = ["backend", "path", "s/epoch: median [min–max]", "examples/s", "GEMM GFLOP/s",
              "÷ floor", "÷ pure PyTorch", "÷ stock Keras"]
    lines = []
    for row in rows:
        backend, path = backend_label(row), path_label(row)
        if "error" in row:
            error = row["error"] if len(row["error"]) <= 110 else row["error"][:107] + "..."
            lines.append([backend, path, f"error: {error}", "", "", "", "", ""])
            continue
        ratios = row.get("ratios", {})
        lines.append([
            backend, path, seconds_cell(row), f"{row['examples_per_second']:,.0f}",
            f"{row['gflops']:,.1f}" if "gflops" in row else "",
            *(f"{ratios[name]:.2f}" if name in ratios else ""
              for name in ("floor", "pure_pytorch", "stock_keras")),
        ])
    return markdown_table(header, lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.epoch",
        description="Seconds per epoch of the seed network: kerasdnn (its input path as "
                    "kerasdnn.train resolves it, and the tf.data stream), stock Keras, pure "
                    "PyTorch, and the FLOP floor, one subprocess per backend.",
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), type=parse_backends,
                        help="comma-separated Keras backends (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds: each times one epoch of every row after a warm-up "
                             "epoch, in a fresh subprocess per backend (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=60_000,
                        help="training examples per epoch (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                        help="examples per batch of every row (default: %(default)s)")
    parser.add_argument("--device-prefetch", choices=("on", "off"), default="on",
                        help="pipelines.device.prefetch_to_device on the kerasdnn path")
    parser.add_argument("--steps-per-execution", type=int, default=DEFAULT_STEPS_PER_EXECUTION,
                        help="kerasdnn's steps per call (default: "
                             "kerasdnn's own, %(default)s)")
    add_worker_arguments(parser, [*BACKENDS, PURE_TORCH])
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (args.repeats < 1 or args.batch_size < 1 or args.examples < args.batch_size
            or args.steps_per_execution < 1):
        parser.error("--repeats, --batch-size and --steps-per-execution must be >= 1 "
                     "and --examples >= --batch-size")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:  # launched by run_worker_process, TensorFlow's log already quiet
        limit_threads(args.threads)
        run_worker(args.worker, args)
        return 0
    machine = machine_info()
    rows = run_all(args)
    add_derived(rows, args.examples)
    best = machine_gflops(rows)
    report = {
        "command": command_line("benchmarks.epoch", argv),
        "machine": machine,
        "settings": {"examples": args.examples, "repeats": args.repeats,
                     "batch_size": args.batch_size, "parameters": PARAMETERS,
                     "flops_per_example": FLOPS_PER_EXAMPLE,
                     "device_prefetch": args.device_prefetch,
                     "steps_per_execution": args.steps_per_execution,
                     "stock_steps_per_execution": STOCK_STEPS_PER_EXECUTION,
                     "threads": args.threads or "libraries' defaults"},
        "machine_floor_gflops": best,
        "rows": rows,
    }
    print(f"\nSeed network 784-500-250-10, batch {args.batch_size}, "
          f"{args.examples:,} examples/epoch, "
          f"device prefetch {args.device_prefetch}, {args.repeats} round(s), "
          f"{args.threads or 'default'} thread(s); "
          f"machine floor {best or 0:,.1f} GFLOP/s; {machine_line(machine)}\n")
    print(format_table(rows))
    if args.json:
        from kerasdnn.core.io import atomic_write_json

        atomic_write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
