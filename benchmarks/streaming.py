"""Reading tables larger than memory (issue 23): rows per second of a streamed table
against the same table read into memory, against ``tf.data``'s own CSV reader and
against what the training step consumes; and the peak resident memory of a
streamed pass as the file grows.

The data is a synthetic messy table (:func:`make_chunk`): 6 float columns with about
5 % of each missing (empty CSV fields, Parquet nulls), 2 text columns of 10 values
with about 3 % missing (``?`` in the CSV, nulls in Parquet) and an integer ``label``
of 3 classes that depends on both (learnable). It is written in chunks of
:data:`CHUNK_ROWS` rows into a temporary folder (CSV; Parquet in row groups of
:data:`ROW_GROUP_ROWS` rows), never held whole by this process, and deleted at the end.

**Throughput** (this process, on the backend ``KERAS_BACKEND`` names), ``--rows``
rows, batch 1000; first a small CSV is loaded both ways and read once (the imports
and first-call set-up left out of every row); then a row each:

- **kerasdnn streamed** (CSV and Parquet): ``pipelines.load("csv:PATH", target="label",
  stream=True, batch_size=1000, repeat=True)``; its own time is the statistics pass
  (one streaming pass that fits the preprocessing); then the training stream
  (``splits.stream``) is read through :func:`pipelines.feed.host_batches` (what JAX
  and PyTorch get), ``batches_per_epoch`` batches an epoch, two epochs, the second
  timed;
- **kerasdnn in memory** (CSV and Parquet): the same ``pipelines.load`` without
  ``stream``: pandas reads the whole file, then splits it (stratified; the streamed
  split is by a hash of the row number, in the same proportions), fits and encodes,
  and the stream permutes all the training rows each epoch (the streamed one within
  windows of 65,536 rows); read the same way;
- **tf.data make_csv_dataset** (CSV only): ``tf.data.experimental.make_csv_dataset(
  PATH, batch_size=1000, label_name="label", num_epochs=1, shuffle=True,
  shuffle_buffer_size=65536)``, iterated as NumPy twice, the second timed: it parses
  the columns and nothing more (a missing number becomes 0.0, ``?`` stays text; no
  standardizing, no one-hot encoding: a dict of raw columns, not the model's input);
- **the training step**: the seed network (``kerasdnn.build_model(input_shape=(WIDTH,),
  num_classes=3)``, hidden 500-250, SGD, its default ``steps_per_execution``) fitted
  for one epoch with ``model.fit`` on NumPy arrays of the encoded width (batch 1000,
  as many rows as a streamed epoch, rounded down to whole executions) after a
  warm-up fit that compiles the step: the rate the step consumes rows at;
- **fit_stream** (CSV, streamed and in memory): the same network trained on the
  table's training stream as ``kerasdnn.train`` trains it
  (:func:`kerasdnn.training.fitting.fit_stream`), two epochs, the second timed
  (:class:`kerasdnn.training.callbacks.EpochTimer`): reading and the step together.

Each reader's rows/s is also given ÷ the step's: above 1 the reader keeps up with
training, below 1 the step waits for it (on these 2 cores reading and the step share
the CPU, so even above 1 reading takes time from the step).

**Memory** (CSV, ``--sizes`` rows each): per size, a fresh subprocess per mode
(``--worker memory``) imports what it needs (pandas, Arrow, TensorFlow), notes its
resident memory (the baseline) and resets its peak to it, then runs
``pipelines.load(..., stream=True, batch_size=1000, repeat=True)`` and one epoch of
``splits.stream``, and notes its peak resident memory (``VmHWM``; not ``ru_maxrss``,
which in a child starts at the parent's size: :func:`memory_mb`); the in-memory mode
(no ``stream``) runs for the sizes up to ``--memory-cap-rows``.

Usage:
    python -m benchmarks.streaming [--rows 400000] [--sizes 500000,1000000,2000000,4000000]
        [--memory-cap-rows 2000000] [--quick] [--json streaming.json]

Example:
    >>> frame = make_chunk(300, seed=0)
    >>> list(frame.columns), sorted(frame["label"].unique().tolist())
    (['x0', 'x1', 'x2', 'x3', 'x4', 'x5', 'color', 'shape', 'label'], [0, 1, 2])
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    command_line,
    machine_info,
    machine_line,
    markdown_table,
    run_python,
)

MODULE = "benchmarks.streaming"
BATCH = 1000
CHUNK_ROWS = 250_000  # rows generated and written at a time
ROW_GROUP_ROWS = 65_536  # a Parquet row group: a piece of the streamed table
NUMERIC = tuple(f"x{i}" for i in range(6))
CATEGORIES = {"color": [f"color-{i}" for i in range(10)],
              "shape": [f"shape-{i}" for i in range(10)]}
NUMERIC_MISSING, CATEGORY_MISSING = 0.05, 0.03
SHUFFLE_BUFFER = 65_536
STREAMED, IN_MEMORY, MAKE_CSV, STEP = ("kerasdnn streamed", "kerasdnn in memory",
                                       "tf.data make_csv_dataset", "training step")
TRAINED_STREAMED, TRAINED_IN_MEMORY = ("fit_stream on the streamed table",
                                       "fit_stream on the table in memory")
QUICK = {"rows": 50_000, "sizes": [50_000, 100_000], "memory_cap_rows": 100_000}


# --------------------------------------------------------------------------- the data


def make_chunk(rows: int, seed: int) -> Any:
    """``rows`` rows of the messy table as a DataFrame (missing values as NaN/None).

    The label is the tercile of a score of three numeric columns (one product) and
    the two categories' effects, plus noise: learnable, about a third each.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([seed, rows])
    numbers = rng.normal(size=(rows, len(NUMERIC)))
    codes = {name: rng.integers(0, len(values), rows) for name, values in CATEGORIES.items()}
    effects = np.random.default_rng(12345).normal(size=(len(CATEGORIES), 10))  # fixed
    score = (numbers[:, 0] - 0.8 * numbers[:, 1] + 0.6 * numbers[:, 2] * numbers[:, 3]
             + effects[0][codes["color"]] + effects[1][codes["shape"]]
             + rng.normal(0.0, 0.3, rows))
    label = np.digitize(score, [-0.88, 0.87])  # its terciles: about a third each
    frame = pd.DataFrame(np.round(numbers, 4), columns=list(NUMERIC))
    frame[list(NUMERIC)] = frame[list(NUMERIC)].mask(
        rng.random((rows, len(NUMERIC))) < NUMERIC_MISSING)
    for name, values in CATEGORIES.items():
        text = np.asarray(values, dtype=object)[codes[name]]
        text[rng.random(rows) < CATEGORY_MISSING] = None
        frame[name] = text
    frame["label"] = label.astype(np.int64)
    return frame


def chunks(rows: int, seed: int = 0) -> Iterator[Any]:
    """The table of ``rows`` rows, :data:`CHUNK_ROWS` at a time (each chunk its own seed)."""
    for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
        yield make_chunk(min(CHUNK_ROWS, rows - start), seed=seed * 1_000_003 + index)


def write_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """The table as CSV: missing numbers empty, missing text ``?``."""
    for index, frame in enumerate(chunks(rows, seed)):
        for name in CATEGORIES:
            frame[name] = frame[name].fillna("?")
        frame.to_csv(path, mode="w" if index == 0 else "a", header=index == 0, index=False)
    return path


def write_parquet(path: Path, rows: int, seed: int = 0) -> Path:
    """The table as one Parquet file, row groups of :data:`ROW_GROUP_ROWS` rows,
    missing values null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for frame in chunks(rows, seed):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    finally:
        if writer is not None:
            writer.close()
    return path


# --------------------------------------------------------------------------- reading


def memory_mb() -> dict[str, float]:
    """This process's resident memory now and its peak (``VmRSS``, ``VmHWM`` of
    /proc/self/status), MB; elsewhere both ``ru_maxrss``.

    Not ``ru_maxrss`` on Linux: a child's ``ru_maxrss`` starts at its parent's
    resident memory when it was forked (the kernel carries it over ``exec``), so a
    worker launched by this benchmark's parent, TensorFlow and JAX loaded, read
    its parent's size as its baseline; ``VmHWM`` is the process's own.
    """
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text()
                      .splitlines() if line.startswith(("VmRSS:", "VmHWM:")))
        return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
                "peak_mb": int(fields["VmHWM"].split()[0]) / 1024}
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return {"rss_mb": peak, "peak_mb": peak}


def reset_peak() -> bool:
    """Set the peak resident memory (``VmHWM``) to the current (Linux >= 4.0), so that
    what the imports touched and freed again is not counted; False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def load(path: Path, fmt: str, *, stream: bool) -> Any:
    """``pipelines.load`` of the file with the benchmark's arguments."""
    import pipelines

    extra = {"stream": True} if stream else {}
    return pipelines.load(f"{fmt}:{path}", target="label", batch_size=BATCH, repeat=True,
                          **extra)


def read_epochs(stream: Any, epochs: int) -> list[tuple[int, float]]:
    """``(rows, seconds)`` of each of ``epochs`` epochs of an ``EpochStream``, read
    through :func:`pipelines.feed.host_batches` (one iterator throughout)."""
    from pipelines.feed import host_batches

    batches = host_batches(stream)
    measured = []
    for _ in range(epochs):
        rows, start = 0, time.perf_counter()
        for _ in range(stream.batches_per_epoch):
            _, labels = next(batches)
            rows += len(labels)
        measured.append((rows, time.perf_counter() - start))
    return measured


def kerasdnn_row(path: Path, fmt: str, stream: bool) -> dict[str, Any]:
    """One kerasdnn row: the ``pipelines.load`` seconds, then the second epoch's."""
    start = time.perf_counter()
    splits = load(path, fmt, stream=stream)
    load_seconds = time.perf_counter() - start
    rows, seconds = read_epochs(splits.stream, 2)[-1]
    return {"source": STREAMED if stream else IN_MEMORY, "format": fmt, "rows": rows,
            "load_seconds": load_seconds, "epoch_seconds": seconds,
            "width": int(splits.info.input_shape[0]),
            "num_examples": dict(splits.info.num_examples)}


def make_csv_row(path: Path) -> dict[str, Any]:
    """``tf.data.experimental.make_csv_dataset`` made, then iterated twice, the second timed."""
    from pipelines.tf_setup import tf

    start = time.perf_counter()
    dataset = tf.data.experimental.make_csv_dataset(
        str(path), batch_size=BATCH, label_name="label", num_epochs=1, shuffle=True,
        shuffle_buffer_size=SHUFFLE_BUFFER)
    made = time.perf_counter() - start
    measured = []
    for _ in range(2):
        rows, start = 0, time.perf_counter()
        for _, labels in dataset.as_numpy_iterator():
            rows += len(labels)
        measured.append((rows, time.perf_counter() - start))
    rows, seconds = measured[-1]
    return {"source": MAKE_CSV, "format": "csv", "rows": rows, "load_seconds": made,
            "epoch_seconds": seconds}


def step_row(width: int, rows: int) -> dict[str, Any]:
    """The seed network's ``model.fit`` on premade NumPy batches of ``width`` columns:
    one epoch of ``rows`` rows (whole executions of ``steps_per_execution`` full
    batches, so nothing is compiled again) after a warm-up fit of one execution."""
    import numpy as np

    import kerasdnn

    model = kerasdnn.build_model(input_shape=(width,), num_classes=3)
    per_call = BATCH * max(1, int(model.model_config.steps_per_execution))
    rows = max(per_call, rows // per_call * per_call)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, width)).astype(np.float32)
    y = rng.integers(0, 3, rows).astype(np.int32)
    model.fit(x[:per_call], y[:per_call], batch_size=BATCH, epochs=1, verbose=0,
              shuffle=False)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    return {"source": STEP, "format": f"NumPy, width {width}", "rows": rows,
            "load_seconds": None, "epoch_seconds": time.perf_counter() - start,
            "steps_per_execution": per_call // BATCH}


def training_row(path: Path, fmt: str, stream: bool, work: Path) -> dict[str, Any]:
    """The seed network trained on the table's stream, as ``kerasdnn.train`` trains
    (:func:`kerasdnn.training.fitting.fit_stream`), two epochs, the second timed:
    reading and the step together."""
    import kerasdnn
    from kerasdnn.training.callbacks import EpochTimer
    from kerasdnn.training.fitting import fit_stream

    splits = load(path, fmt, stream=stream)
    model = kerasdnn.build_model(input_shape=splits.info.input_shape, num_classes=3)
    timer = EpochTimer(work / f"epoch-times-{fmt}-{stream}.json")
    fit_stream(model, splits.stream, epochs=2, verbose=0, callbacks=[timer])
    rows = read_epochs(splits.stream, 1)[0][0]  # the rows of an epoch, counted
    return {"source": TRAINED_STREAMED if stream else TRAINED_IN_MEMORY, "format": fmt,
            "rows": rows, "load_seconds": None, "epoch_seconds": timer.seconds[-1],
            "steps_per_execution": int(model.steps_per_execution)}


def _guarded(source: str, fmt: str, measure: Any, *arguments: Any) -> dict[str, Any]:
    """``measure(*arguments)``, or the row of its error (the other rows still run)."""
    try:
        return measure(*arguments)
    except Exception as error:  # a failed reader is a row of the table
        message = f"{type(error).__name__}: {error}".splitlines()[0][:200]
        print(f"{MODULE}: {source}, {fmt} failed: {message}", file=sys.stderr, flush=True)
        return {"source": source, "format": fmt, "error": message}


def warm_up(work: Path) -> None:
    """Import TensorFlow, pandas and Arrow and load a small CSV once (in memory, then
    streamed), so that no timed row pays the imports or first-call set-up."""
    path = write_csv(work / "warm-up.csv", 5 * BATCH, seed=99)
    for stream in (False, True):
        _guarded("warm-up", "csv", lambda stream=stream: read_epochs(
            load(path, "csv", stream=stream).stream, 1))
    path.unlink()


def throughput(rows: int, work: Path) -> list[dict[str, Any]]:
    """The rows of the throughput table (the files written into ``work``, then deleted)."""
    warm_up(work)
    csv = write_csv(work / "table.csv", rows)
    parquet = write_parquet(work / "table.parquet", rows)
    results = []
    for path, fmt in ((csv, "csv"), (parquet, "parquet")):
        for stream in (True, False):
            name = STREAMED if stream else IN_MEMORY
            results.append(_guarded(name, fmt, kerasdnn_row, path, fmt, stream))
            print(f"{MODULE}: {name}, {fmt}: done", file=sys.stderr, flush=True)
    results.append(_guarded(MAKE_CSV, "csv", make_csv_row, csv))
    measured = [row for row in results if "width" in row]
    if measured:
        width = measured[0]["width"]
        epoch_rows = max(row["rows"] for row in measured)
        results.append(_guarded(STEP, f"NumPy, width {width}", step_row, width, epoch_rows))
        for stream in (True, False):
            name = TRAINED_STREAMED if stream else TRAINED_IN_MEMORY
            results.append(_guarded(name, "csv", training_row, csv, "csv", stream, work))
    for path in (csv, parquet):
        path.unlink(missing_ok=True)
    return results


def throughput_table(results: Sequence[dict[str, Any]]) -> str:
    """The throughput rows as Markdown, each reader's rows/s also ÷ the step's.

    Example:
        >>> rows = [{"source": STREAMED, "format": "csv", "rows": 1000, "load_seconds": 2.0,
        ...          "epoch_seconds": 0.5},
        ...         {"source": STEP, "format": "NumPy", "rows": 1000, "load_seconds": None,
        ...          "epoch_seconds": 0.25}]
        >>> [cell.strip() for cell in throughput_table(rows).splitlines()[2].split("|")[3:-1]]
        ['1,000', '2.000', '0.500', '2,000', '0.50']
    """
    step = next((row for row in results if row["source"] == STEP and "error" not in row), None)
    step_rate = step["rows"] / step["epoch_seconds"] if step else None
    lines = []
    for row in results:
        if "error" in row:
            lines.append([row["source"], row["format"], "", "", "", f"error: {row['error']}",
                          ""])
            continue
        rate = row["rows"] / row["epoch_seconds"]
        loaded = "" if row["load_seconds"] is None else f"{row['load_seconds']:.3f}"
        ratio = "" if step_rate is None or row["source"] == STEP else f"{rate / step_rate:.2f}"
        lines.append([row["source"], row["format"], f"{row['rows']:,}", loaded,
                      f"{row['epoch_seconds']:.3f}", f"{rate:,.0f}", ratio])
    return markdown_table(["source", "format", "rows", "load / stats pass s", "epoch s",
                           "rows/s", "÷ step rows/s"], lines)


# --------------------------------------------------------------------------- memory


def memory_worker(path: str, stream: bool, train: bool = False) -> dict[str, Any]:
    """In a fresh process: the resident memory after the imports (the baseline; the
    peak reset to it), then a load and one epoch of the training stream, then the
    peak resident memory.  With ``train``: a whole run instead (``kerasdnn.train``,
    streamed or not, the seed network, one epoch, its report and model written)."""
    # the imports a load needs (TensorFlow through pipelines.feed), counted in the baseline
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    import pipelines.feed
    import pipelines.tables.load  # noqa: F401

    if train:
        import kerasdnn

        out = Path(tempfile.mkdtemp(prefix="kerasdnn-streaming-run-")) / "run"
        reset = reset_peak()
        baseline = memory_mb()
        start = time.perf_counter()
        result = kerasdnn.train(dataset=f"csv:{path}", target="label", stream=stream,
                                epochs=1, out=str(out), verbose=0)
        seconds = time.perf_counter() - start
        shutil.rmtree(out.parent, ignore_errors=True)
        return {"baseline_mb": baseline["rss_mb"], "peak_mb": memory_mb()["peak_mb"],
                "peak_reset": reset, "run_seconds": seconds,
                "test_accuracy": result.report.get("accuracy")}
    reset = reset_peak()
    baseline = memory_mb()
    start = time.perf_counter()
    splits = load(Path(path), "csv", stream=stream)
    loaded = time.perf_counter() - start
    rows, seconds = read_epochs(splits.stream, 1)[0]
    return {"baseline_mb": baseline["rss_mb"], "peak_mb": memory_mb()["peak_mb"],
            "peak_reset": reset, "rows_read": rows, "load_seconds": loaded,
            "epoch_seconds": seconds,
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure_memory(path: Path, stream: bool, timeout: float,
                   train: bool = False) -> dict[str, Any]:
    """:func:`memory_worker` in a fresh subprocess; its JSON, or its error."""
    done = run_python(["-m", MODULE, "--worker", "memory", "--csv", str(path),
                       *(["--stream"] if stream else []), *(["--train"] if train else [])],
                      timeout=timeout)
    if done.failure:
        sys.stderr.write(done.stderr[-2000:])
        return {"error": done.failure[:200]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_seconds": done.seconds}


def memory(sizes: Sequence[int], cap: int, work: Path, timeout: float) -> list[dict[str, Any]]:
    """One row per size: the file's MB and each mode's peak RSS (in memory up to ``cap``)."""
    results = []
    for rows in sizes:
        path = write_csv(work / f"table-{rows}.csv", rows)
        row: dict[str, Any] = {"rows": rows, "file_mb": path.stat().st_size / 2**20,
                               "streamed": measure_memory(path, True, timeout),
                               "streamed_run": measure_memory(path, True, timeout, train=True)}
        if rows <= cap:
            row["in_memory"] = measure_memory(path, False, timeout)
        path.unlink()
        print(f"{MODULE}: memory, {rows:,} rows: done", file=sys.stderr, flush=True)
        results.append(row)
    return results


def _memory_cell(measured: dict[str, Any] | None) -> str:
    if measured is None:
        return "not run (over --memory-cap-rows)"
    if "error" in measured:
        return f"error: {measured['error']}"
    return (f"{measured['peak_mb']:,.0f} (+{measured['peak_mb'] - measured['baseline_mb']:,.0f})")


def _seconds_cell(measured: dict[str, Any] | None) -> str:
    if measured is None or "error" in measured:
        return ""
    return f"{measured['load_seconds']:.1f} + {measured['epoch_seconds']:.1f}"


def memory_table(results: Sequence[dict[str, Any]]) -> str:
    """The memory rows as Markdown: peak RSS MB (growth over the baseline after imports).

    Example:
        >>> run = {"baseline_mb": 500.0, "peak_mb": 620.0, "load_seconds": 3.0,
        ...        "epoch_seconds": 2.0}
        >>> table = memory_table([{"rows": 1000, "file_mb": 0.1, "streamed": run}])
        >>> [cell.strip() for cell in table.splitlines()[2].split("|")[1:-1]][:5]
        ['1,000', '0.1', '620 (+120)', '3.0 + 2.0', 'not run (over --memory-cap-rows)']
        >>> _run_cell({"baseline_mb": 500.0, "peak_mb": 700.0, "run_seconds": 12.0})
        '700 (+200), 12 s'
    """
    lines = [[f"{row['rows']:,}", f"{row['file_mb']:,.1f}", _memory_cell(row["streamed"]),
              _seconds_cell(row["streamed"]), _memory_cell(row.get("in_memory")),
              _seconds_cell(row.get("in_memory")), _run_cell(row.get("streamed_run"))]
             for row in results]
    return markdown_table(["rows", "file MB", "streamed: peak RSS MB (+ over baseline)",
                           "streamed s: load + epoch", "in memory: peak RSS MB (+ over baseline)",
                           "in memory s: load + epoch",
                           "streamed run (kerasdnn.train, 1 epoch): peak RSS MB (+), s"], lines)


def _run_cell(measured: dict[str, Any] | None) -> str:
    if measured is None or "error" in measured:
        return "" if measured is None else f"error: {measured['error']}"
    return f"{_memory_cell(measured)}, {measured['run_seconds']:.0f} s"


# --------------------------------------------------------------------------- the command


def _sizes(text: str) -> list[int]:
    sizes = [int(item) for item in text.split(",") if item.strip()]
    if not sizes or min(sizes) < 1000:
        raise argparse.ArgumentTypeError(f"--sizes takes row counts of 1000 or more, got {text!r}")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="Rows per second of a streamed table (CSV, Parquet) against the table "
                    "in memory, tf.data's make_csv_dataset and the training step; peak "
                    "resident memory of a streamed pass as the file grows.")
    parser.add_argument("--rows", type=int, default=400_000,
                        help="rows of the throughput table (default: %(default)s)")
    parser.add_argument("--sizes", type=_sizes, default=[500_000, 1_000_000, 2_000_000,
                                                         4_000_000],
                        help="comma-separated rows of the memory table's CSV files "
                             "(default: 500000,1000000,2000000,4000000)")
    parser.add_argument("--memory-cap-rows", type=int, default=2_000_000,
                        help="the largest file also loaded into memory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke test: --rows {QUICK['rows']}, --sizes "
                             f"{','.join(map(str, QUICK['sizes']))}, --memory-cap-rows "
                             f"{QUICK['memory_cap_rows']}")
    parser.add_argument("--skip-memory", action="store_true", help="the throughput table only")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds each memory subprocess may run (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--worker", choices=["memory"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--train", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.sizes = QUICK["rows"], QUICK["sizes"]
        args.memory_cap_rows = QUICK["memory_cap_rows"]
    if args.rows < 10 * BATCH:
        parser.error(f"--rows must be >= {10 * BATCH}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:  # launched by measure_memory
        print(json.dumps(memory_worker(args.csv, args.stream, args.train)))
        return 0
    machine = machine_info()
    work = Path(tempfile.mkdtemp(prefix="kerasdnn-streaming-"))
    started = time.perf_counter()
    try:
        rates = throughput(args.rows, work)
        sizes = [] if args.skip_memory else memory(args.sizes, args.memory_cap_rows, work,
                                                   args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    backend = os.environ.get("KERAS_BACKEND", "Keras's configured backend")
    print(f"\n{machine_line(machine)}; load after: {os.getloadavg()[0]:.1f}; backend "
          f"{backend}; {time.perf_counter() - started:.0f} s in all\n")
    print(f"Throughput: {args.rows:,} rows (6 numeric, 2 text columns, label of 3 classes), "
          f"batch {BATCH}; the second epoch timed\n")
    print(throughput_table(rates))
    print("\n- rows: what one epoch gives (kerasdnn: the training split; make_csv_dataset: "
          "every row, parsed but not encoded: a missing number becomes 0.0, no "
          "standardizing or one-hot columns)")
    if sizes:
        print(f"\nMemory: CSV, a fresh process per cell; peak RSS (VmHWM) over a load and "
              f"one epoch of batch {BATCH}, + over the same process's RSS after its "
              f"imports\n")
        print(memory_table(sizes))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"command": command_line(MODULE, argv), "machine": machine, "backend": backend,
             "throughput": rates, "memory": sizes}, indent=2))
    failed = any("error" in row for row in rates) or any(
        "error" in (row.get(mode) or {}) for row in sizes for mode in ("streamed", "in_memory"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
