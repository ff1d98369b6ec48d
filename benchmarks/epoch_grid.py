"""``benchmarks.epoch`` over a grid of epoch sizes and batch sizes, in one table.

For each (examples per epoch, batch size) the rounds of :mod:`benchmarks.epoch` run
as they do there (its :func:`~benchmarks.epoch.run_all`, one subprocess per backend
and round, rows interleaved), and the table keeps, per backend:

- **kerasdnn (PATH)**: what ``kerasdnn.train`` runs, PATH the input path it took
  (resident where the examples fit and, on TensorFlow, no GPU is seen; else the stream);
- **kerasdnn, tf.data stream**: the input path forced to the stream;
- **stock Keras, best**: the faster of stock Keras at one and at 10 steps per
  execution (its ``÷ stock`` cell says which);
- **pure PyTorch**: the Keras-free loop, once.

Each (size, batch) has two columns: examples/s (median over the rounds) and
``÷ stock``: the row's time per example ÷ stock Keras at its best on the same
backend (lower is better; 1.00 equal).  ``--json`` keeps every cell's full rows
(written after each cell, so an interrupted run keeps what it measured).

Example:
    python -m benchmarks.epoch_grid --sizes 10000,30000,60000 --batch-sizes 100,1000 \\
        --backends tensorflow,jax,torch --repeats 2 --json grid.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from benchmarks import epoch
from benchmarks._common import (
    BACKENDS,
    command_line,
    machine_info,
    machine_line,
    markdown_table,
    parse_backends,
)
from benchmarks.epoch_paths import (
    BATCH_SIZE,
    KERASDNN,
    KERASDNN_STREAM,
    PURE_LOOP,
    PURE_TORCH,
    STOCK_KERAS_SPE,
    STOCK_PATHS,
    STOCK_STEPS_PER_EXECUTION,
)

STOCK_BEST = "stock Keras, best"


def parse_counts(text: str) -> list[int]:
    """Comma-separated positive integers.

    Example:
        >>> parse_counts("10000, 60000")
        [10000, 60000]
    """
    try:
        counts = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return counts


def _per_example(row: dict[str, Any] | None) -> float | None:
    return row["median"] / row["examples"] if row and "median" in row else None


def stock_best(rows: Sequence[dict[str, Any]], backend: str) -> dict[str, Any] | None:
    """The faster of ``backend``'s stock rows (per example), ``None`` when neither was
    measured; the first of them with its error when both failed."""
    stock = [row for row in rows if row["backend"] == backend and row["path"] in STOCK_PATHS]
    measured = [row for row in stock if _per_example(row) is not None]
    if measured:
        return min(measured, key=_per_example)
    return stock[0] if stock else None


def grid_cells(cell: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """The two cells (examples/s, ``÷ stock``) of every grid row in one (size, batch)
    run, by ``(backend, grid path)``; a grid path is ``kerasdnn``,
    :data:`~benchmarks.epoch_paths.KERASDNN_STREAM`, :data:`STOCK_BEST` or
    :data:`~benchmarks.epoch_paths.PURE_LOOP`."""
    rows = cell["rows"]
    out: dict[tuple[str, str], tuple[str, str]] = {}

    def speed(row: dict[str, Any]) -> str:
        return "error" if "error" in row else f"{row['examples_per_second']:,.0f}"

    for row in rows:
        if row["path"] in (KERASDNN, KERASDNN_STREAM):
            ratio = row.get("ratios", {}).get("stock_keras")
            out[(row["backend"], row["path"])] = (
                speed(row), f"{ratio:.2f}" if ratio is not None else "")
        elif row["path"] == PURE_LOOP:
            out[(row["backend"], PURE_LOOP)] = (speed(row), "")
    for backend in dict.fromkeys(row["backend"] for row in rows if row["backend"] != PURE_TORCH):
        best = stock_best(rows, backend)
        if best is not None:
            which = (f"{STOCK_STEPS_PER_EXECUTION} steps/exec" if best["path"] == STOCK_KERAS_SPE
                     else "1 step/exec")
            out[(backend, STOCK_BEST)] = (speed(best), "" if "error" in best else which)
    return out


def format_grid(cells: Sequence[dict[str, Any]]) -> str:
    """One table: a row per (backend, path), two columns per (size, batch) cell.

    ``cells``: ``{"examples", "batch_size", "rows"}`` each, the rows of
    :func:`benchmarks.epoch.run_all` after :func:`benchmarks.epoch.add_derived`.
    """
    per_cell = [grid_cells(cell) for cell in cells]
    backends = list(dict.fromkeys(row["backend"] for cell in cells for row in cell["rows"]
                                  if row["backend"] != PURE_TORCH))
    order = [(backend, path) for backend in backends
             for path in (KERASDNN, KERASDNN_STREAM, STOCK_BEST)]
    order.append((PURE_TORCH, PURE_LOOP))
    header = ["backend", "path"]
    for cell in cells:
        header += [f"{cell['examples']:,} × batch {cell['batch_size']}: ex/s", "÷ stock"]
    lines = []
    for backend, path in order:
        if not any((backend, path) in found for found in per_cell):
            continue
        label = path
        if path == KERASDNN:  # the input path each cell took
            taken = list(dict.fromkeys(row["input_path"] for cell in cells
                                       for row in cell["rows"] if row["backend"] == backend
                                       and row["path"] == KERASDNN and "input_path" in row))
            label = f"{KERASDNN} ({'/'.join(taken) or '?'})"
        seen = [row for cell in cells for row in cell["rows"]
                if row["backend"] == backend and "device" in row]
        line = [epoch.backend_label(seen[0] if seen else {"backend": backend}), label]
        for found in per_cell:
            line += found.get((backend, path), ("", ""))
        lines.append(line)
    return markdown_table(header, lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.epoch_grid",
        description="benchmarks.epoch over epoch sizes × batch sizes: examples/s of kerasdnn "
                    "(both input paths), stock Keras at its best and pure PyTorch, one table.",
    )
    parser.add_argument("--sizes", type=parse_counts, default=[10_000, 30_000, 60_000],
                        help="comma-separated training examples per epoch "
                             "(default: 10000,30000,60000)")
    parser.add_argument("--batch-sizes", type=parse_counts, default=[BATCH_SIZE, 1000],
                        help=f"comma-separated batch sizes (default: {BATCH_SIZE},1000)")
    parser.add_argument("--backends", default=",".join(BACKENDS), type=parse_backends,
                        help="comma-separated Keras backends (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="rounds per cell, as benchmarks.epoch's --repeats "
                             "(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="compute threads of every library (0: their defaults)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds each backend's subprocess may run (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="also write every cell's rows as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1 or any(size < batch for size in args.sizes
                               for batch in args.batch_sizes):
        parser.error("--repeats must be >= 1 and every size >= every batch size")
    return args


def epoch_args(args: argparse.Namespace, examples: int, batch_size: int) -> argparse.Namespace:
    """``benchmarks.epoch``'s options for one cell (its defaults for the rest)."""
    return epoch.parse_args(["--backends", ",".join(args.backends), "--examples", str(examples),
                             "--batch-size", str(batch_size), "--repeats", str(args.repeats),
                             "--threads", str(args.threads), "--timeout", str(args.timeout)])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_info()
    grid = [(size, batch) for size in args.sizes for batch in args.batch_sizes]
    cells: list[dict[str, Any]] = []
    for number, (size, batch) in enumerate(grid, 1):
        print(f"benchmarks.epoch_grid: cell {number}/{len(grid)}: {size:,} examples, "
              f"batch {batch}", file=sys.stderr, flush=True)
        rows = epoch.run_all(epoch_args(args, size, batch))
        epoch.add_derived(rows, size)
        cells.append({"examples": size, "batch_size": batch, "rows": rows})
        if args.json:  # after every cell: an interrupted grid keeps what it measured
            from kerasdnn.core.io import atomic_write_json

            atomic_write_json(args.json, {
                "command": command_line("benchmarks.epoch_grid", argv), "machine": machine,
                "settings": {"sizes": args.sizes, "batch_sizes": args.batch_sizes,
                             "repeats": args.repeats,
                             "threads": args.threads or "libraries' defaults"},
                "load_average_after": list(os.getloadavg()), "cells": cells})
    print(f"\nSeed network 784-500-250-10, {args.repeats} round(s) per cell, "
          f"{args.threads or 'default'} thread(s); {machine_line(machine)}; "
          f"load after {os.getloadavg()[0]:.1f}\n")
    print(format_grid(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
