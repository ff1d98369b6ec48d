"""CPU seconds per epoch of the training stream, read the way each backend's feed reads it.

The input pipeline runs on the cores that train, so every CPU second it takes
is taken from the training step.  On MNIST-shaped data (uint8 images made in
memory, batch 100) one epoch of an endless training stream is read, after a
warm-up epoch, side by side in one process:

- **pipelines.load**: kerasdnn's stream (scaled examples kept in memory, one
  seeded permutation per epoch, one gather per batch);
- **classic tf.data**: the pipeline of the TFDS Keras example and the tf.data
  performance guide, made endless the same way (scaled examples cached, then
  per epoch ``shuffle`` over all examples → ``batch`` → ``prefetch``), as
  kerasdnn built it until 2026-11-29.

Each is read **in-graph** (a ``tf.function`` loop over the iterator, as Keras's
TensorFlow trainer reads it), through **pipelines.feed.host_batches** (what
JAX and PyTorch get: 10 batches per ``next()``; the stream of
``pipelines.load`` as its own blocks) and through the feed's **padded** path
(what it does with any other dataset).  CPU is the process's user + system
time around the epoch (``resource.getrusage``), so ``tf.data``'s own threads
count; no backend other than TensorFlow's ``tf.data`` is involved.

Usage:
    python -m benchmarks.stream [--examples 54000] [--repeats 3] [--json stream.json]

Example:
    >>> [reader for reader, _ in READERS]
    ['in-graph', 'host blocks', 'host padded']
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._common import (
    command_line,
    machine_info,
    machine_line,
    markdown_table,
    seconds_cell,
    summarize,
)
from pipelines.constants import BATCH_SIZE

BATCHES_PER_FETCH = 10
SEED = 1
PIPELINES = "pipelines.load"
CLASSIC = "classic tf.data"
_ENDLESS = 2**62


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pipelines_stream(images: Any, labels: Any) -> Any:
    """kerasdnn's endless training stream of the images (scaled to [0, 1], flattened)."""
    import numpy as np

    from pipelines.builder import make_stream

    return make_stream(images, labels, offset=np.zeros((), np.float32),
                       multiplier=np.asarray(1 / 255, np.float32), flatten=True,
                       batch_size=BATCH_SIZE, shuffle_seed=SEED, cache=True)


def classic_stream(images: Any, labels: Any) -> Any:
    """The classic per-example pipeline, endless: cache → shuffle(all) → batch → prefetch."""
    import numpy as np

    from pipelines.tf_setup import tf

    scaled = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    examples = tf.data.Dataset.from_tensor_slices((scaled, labels.astype(np.int32))).cache()
    return tf.data.Dataset.range(_ENDLESS).flat_map(
        lambda epoch: examples.shuffle(len(labels), seed=SEED + epoch).batch(BATCH_SIZE)
    ).prefetch(tf.data.AUTOTUNE)


def in_graph_reader(dataset: Any, batches: int) -> Callable[[], None]:
    """Reads ``batches`` elements per call inside one ``tf.function``."""
    from pipelines.tf_setup import tf

    iterator = iter(dataset)

    @tf.function
    def read(count: Any) -> Any:
        total = tf.constant(0, tf.int64)
        for _ in tf.range(count):
            _, labels = next(iterator)
            total += tf.cast(tf.size(labels), tf.int64)
        return total

    return lambda: read(tf.constant(batches)).numpy()


def host_reader(batches_of: Callable[[Any], Any], dataset: Any,
                batches: int) -> Callable[[], None]:
    """Takes ``batches`` NumPy batches per call from ``batches_of(dataset)``."""
    iterator = batches_of(dataset)

    def read() -> None:
        for _ in range(batches):
            next(iterator)

    return read


def _host_blocks(dataset: Any) -> Any:
    from pipelines.feed import host_batches

    return host_batches(dataset, batches_per_fetch=BATCHES_PER_FETCH)


def _host_padded(dataset: Any) -> Any:
    # A dataset, not an EpochStream: the feed pads it into blocks.
    return _host_blocks(as_dataset(dataset))


def as_dataset(stream: Any) -> Any:
    """The ``tf.data.Dataset`` of a stream (an ``EpochStream``'s ``dataset``)."""
    return getattr(stream, "dataset", stream)


READERS: tuple[tuple[str, Callable[..., Callable[[], None]]], ...] = (
    ("in-graph", lambda dataset, batches: in_graph_reader(as_dataset(dataset), batches)),
    ("host blocks", lambda dataset, batches: host_reader(_host_blocks, dataset, batches)),
    ("host padded", lambda dataset, batches: host_reader(_host_padded, dataset, batches)),
)


def measure(examples: int, repeats: int) -> list[dict[str, Any]]:
    """One row per (stream, reader): CPU and wall seconds of each timed epoch."""
    import math

    from benchmarks.epoch_paths import make_data

    images, labels = make_data(examples)
    batches = math.ceil(examples / BATCH_SIZE)
    rows = []
    for name, make in ((PIPELINES, pipelines_stream), (CLASSIC, classic_stream)):
        for reader_name, reader in READERS:
            if name == CLASSIC and reader_name == "host blocks":
                continue  # the same as padded: only pipelines.load's stream has blocks
            read = reader(make(images, labels), batches)
            read()  # warm-up epoch: tracing, cache fill
            cpu, wall = [], []
            for _ in range(repeats):
                cpu_start, wall_start = cpu_seconds(), time.perf_counter()
                read()
                wall.append(time.perf_counter() - wall_start)
                cpu.append(cpu_seconds() - cpu_start)
            rows.append({"stream": name, "reader": reader_name, "cpu": summarize(cpu),
                         "wall": summarize(wall)})
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table; CPU also as a ratio to the classic pipeline
    read the same way (in-graph, or padded for the host readers).

    Example:
        >>> row = {"cpu": summarize([0.2]), "wall": summarize([0.1])}
        >>> print(table([{**row, "stream": CLASSIC, "reader": "in-graph"}]).splitlines()[2])
        | classic tf.data | in-graph | 0.20 [0.20–0.20] | 0.10 [0.10–0.10] | 1.00          |
    """
    classic = {row["reader"]: row["cpu"]["median"] for row in rows if row["stream"] == CLASSIC}
    cells = []
    for row in rows:
        reference = classic.get("in-graph" if row["reader"] == "in-graph" else "host padded")
        ratio = f"{row['cpu']['median'] / reference:.2f}" if reference else ""
        cells.append([row["stream"], row["reader"], seconds_cell(row["cpu"]),
                      seconds_cell(row["wall"]), ratio])
    return markdown_table(["stream", "read", "CPU s/epoch", "wall s/epoch", "CPU ÷ classic"],
                          cells)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=54_000,
                        help="examples per epoch (default: %(default)s, MNIST's training "
                             "split less its validation tenth)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per row")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.examples < 1 or args.repeats < 1:
        parser.error("--examples and --repeats must be positive")
    machine = machine_info()
    rows = measure(args.examples, args.repeats)
    print(machine_line(machine))
    print(f"\n{args.examples:,} examples/epoch, batch {BATCH_SIZE}, "
          f"median [min–max] of {args.repeats} epochs after a warm-up epoch\n")
    print(table(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"command": command_line("benchmarks.stream", argv), "machine": machine,
                       "settings": {"examples": args.examples, "repeats": args.repeats,
                                    "batch_size": BATCH_SIZE,
                                    "batches_per_fetch": BATCHES_PER_FETCH},
                       "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
