"""Seconds per training epoch of the seed network (784-500-250-10, ReLU,
SGD lr 0.01 momentum 0.9, batch 100) on MNIST-shaped data made in memory
(uint8 images, 10 classes), side by side:

- **kerasdnn**: the real path: ``pipelines.load`` (uint8 images → scaling,
  cache, a seeded permutation per epoch, one gather per batch, prefetch) →
  ``pipelines.feed.for_fit`` → ``fit`` of ``kerasdnn.build_model()`` with the
  custom step;
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
import time
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
from kerasdnn.config import ModelConfig

BATCH_SIZE = 100
DEFAULT_STEPS_PER_EXECUTION = ModelConfig().steps_per_execution
SEED = 1337
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
HIDDEN_UNITS = (500, 250)
# Weights and biases of 784-500-250-10.
PARAMETERS = sum(
    fan_in * fan_out + fan_out
    for fan_in, fan_out in zip((784, *HIDDEN_UNITS), (*HIDDEN_UNITS, NUM_CLASSES), strict=True)
)
# Forward (2 FLOPs per multiply-add) + backward (twice the forward) per example.
FLOPS_PER_EXAMPLE = 6 * PARAMETERS
PURE_TORCH = "pytorch"  # the worker that runs the Keras-free PyTorch loop

STOCK_STEPS_PER_EXECUTION = 10  # what a Keras user who reads the docs sets
FLOOR, KERASDNN, STOCK_KERAS, PURE_LOOP = "FLOP floor", "kerasdnn", "stock Keras", "pure PyTorch"
STOCK_KERAS_SPE = f"stock Keras, {STOCK_STEPS_PER_EXECUTION} steps/execution"
STOCK_PATHS = (STOCK_KERAS, STOCK_KERAS_SPE)
EXPECTED_PATHS = {
    PURE_TORCH: (FLOOR, PURE_LOOP),
    "tensorflow": (FLOOR, STOCK_KERAS, STOCK_KERAS_SPE, KERASDNN),
    "jax": (FLOOR, STOCK_KERAS, STOCK_KERAS_SPE, KERASDNN),
    "torch": (FLOOR, STOCK_KERAS, KERASDNN),  # Keras 3.15: steps_per_execution 1 on PyTorch
}


# --------------------------------------------------------------------------- worker side


def make_data(examples: int, seed: int = SEED) -> tuple[Any, Any]:
    """MNIST-shaped data: ``(examples, 28, 28)`` uint8 images, int64 labels in [0, 10).

    Example:
        >>> images, labels = make_data(5)
        >>> images.shape, images.dtype.name, bool(labels.max() < 10)
        ((5, 28, 28), 'uint8', True)
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(examples, *IMAGE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=examples)
    return images, labels


def gemm_gflops(matmul: Callable[[Any, Any], Any], to_tensor: Callable[[Any], Any],
                sync: Callable[[Any], Any], size: int, min_seconds: float = 1.0) -> float:
    """Best float32 rate, in GFLOP/s, of ``size``×``size`` GEMMs after a warm-up call.

    ``sync`` waits for a result (asynchronous backends); calls repeat until
    ``min_seconds`` have passed (at least 3).
    """
    import numpy as np

    rng = np.random.default_rng(SEED)
    a = to_tensor(rng.standard_normal((size, size), dtype=np.float32))
    b = to_tensor(rng.standard_normal((size, size), dtype=np.float32))
    sync(matmul(a, b))  # compile and warm up
    times: list[float] = []
    while len(times) < 3 or sum(times) < min_seconds:
        start = time.perf_counter()
        sync(matmul(a, b))
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def keras_device(backend: str) -> str:
    """``"gpu"`` when the backend computes on an accelerator, else ``"cpu"``."""
    if backend == "jax":
        import jax

        return jax.default_backend()
    if backend == "torch":
        return torch_device()
    import tensorflow as tf

    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def keras_gemm_gflops(backend: str, device: str, min_seconds: float) -> float:
    """GEMM rate through ``keras.ops.matmul``, compiled as Keras's ``jit_compile="auto"`` does:
    ``jax.jit`` on JAX, ``tf.function`` (XLA on GPU only) on TensorFlow, eager on PyTorch."""
    import keras

    matmul: Callable[[Any, Any], Any] = keras.ops.matmul
    if backend == "jax":
        import jax

        matmul = jax.jit(keras.ops.matmul)
    elif backend == "tensorflow":
        import tensorflow as tf

        matmul = tf.function(keras.ops.matmul, jit_compile=device != "cpu")

    def sync(result: Any) -> None:
        keras.ops.convert_to_numpy(result[0, 0])

    return gemm_gflops(matmul, keras.ops.convert_to_tensor, sync,
                       size=2048 if device == "cpu" else 8192, min_seconds=min_seconds)


def fit_epoch_seconds(model: Any, data: Any, repeats: int, **fit_kwargs: Any) -> list[float]:
    """Seconds of each epoch of ``model.fit`` after a first, warm-up epoch.

    Keras turns the logs into Python numbers before ``on_epoch_end``, so each
    epoch is timed until its last step has finished, also on asynchronous backends.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    timer = EpochTimer()
    model.fit(data, epochs=repeats + 1, verbose=0, callbacks=[timer], **fit_kwargs)
    return timer.seconds[1:]


def time_stock_keras(images: Any, labels: Any, repeats: int,
                     steps_per_execution: int = 1) -> dict[str, Any]:
    """Stock Keras: a plain ``keras.Sequential`` fitted on in-memory float32 arrays
    (``steps_per_execution``: Keras's default, 1, or what the user sets)."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(SEED)
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    y = labels.astype(np.int32)
    model = keras.Sequential(
        [keras.Input((x.shape[1],))]
        + [keras.layers.Dense(units, activation="relu") for units in HIDDEN_UNITS]
        + [keras.layers.Dense(NUM_CLASSES)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    if model.count_params() != PARAMETERS:
        raise AssertionError(f"stock model has {model.count_params()} parameters, not {PARAMETERS}")
    seconds = fit_epoch_seconds(model, x, repeats, y=y, batch_size=BATCH_SIZE, shuffle=True)
    return {"examples": len(x), "steps_per_execution": steps_per_execution,
            **summarize(seconds)}


def kerasdnn_stream(images: Any, labels: Any, workdir: Path) -> tuple[Any, int]:
    """``(splits, steps_per_epoch)``: the endless stream of the uint8 images, loaded
    as ``kerasdnn.train`` loads them (:func:`kerasdnn.data.load_splits`), from an
    ``npz:`` file in ``workdir``.

    The file holds the images plus a tenth more, so that the validation split
    leaves (about) ``len(images)`` to train on.
    """
    import numpy as np

    from kerasdnn.config import TrainConfig
    from kerasdnn.data import load_splits

    extra = max(len(images) // 10, NUM_CLASSES)
    more_images, more_labels = make_data(extra, seed=SEED + 1)
    path = workdir / "mnist_like.npz"
    np.savez(
        path,
        x_train=np.concatenate([images, more_images]),
        y_train=np.concatenate([labels, more_labels]),
        x_test=more_images,
        y_test=more_labels,
    )
    # Just under extra / total: scikit-learn rounds the held-out count up.
    fraction = (extra - 0.5) / (len(images) + extra)
    settings = TrainConfig(dataset=f"npz:{path}", batch_size=BATCH_SIZE,
                           validation_split=fraction, seed=SEED, scale="unit")
    splits = load_splits(settings, repeat=True)
    return splits, splits.stream.batches_per_epoch


def kerasdnn_model(steps_per_epoch: int, steps_per_execution: int) -> Any:
    """``kerasdnn.build_model()`` with the steps per execution ``kerasdnn.train`` would use."""
    import kerasdnn
    from kerasdnn.train import steps_per_execution_for

    model = kerasdnn.build_model(steps_per_execution=steps_per_execution)
    model.steps_per_execution = steps_per_execution_for(steps_per_epoch,
                                                        model.steps_per_execution)
    return model


def time_kerasdnn(images: Any, labels: Any, repeats: int, device_prefetch: bool,
                  workdir: Path, steps_per_execution: int) -> dict[str, Any]:
    """kerasdnn as ``kerasdnn.train`` runs it: the endless stream of
    :func:`kerasdnn_stream` → ``pipelines.feed.for_fit`` → ``fit`` with
    ``steps_per_epoch`` and ``steps_per_execution``; the row reports how many
    examples were actually trained on.
    """
    import pipelines.feed

    splits, steps = kerasdnn_stream(images, labels, workdir)
    model = kerasdnn_model(steps, steps_per_execution)
    train = pipelines.feed.for_fit(splits.stream, device_prefetch=device_prefetch)
    seconds = fit_epoch_seconds(model, train, repeats, steps_per_epoch=steps)
    return {"examples": int(splits.info.num_examples["train"]),
            "steps_per_execution": model.steps_per_execution, **summarize(seconds)}


def time_pure_torch(images: Any, labels: Any, repeats: int) -> dict[str, Any]:
    """The classic PyTorch loop users would otherwise write (no Keras, no tf.data)."""
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.from_numpy(images.reshape(len(images), -1)).to(device).float().div_(255)
    y = torch.from_numpy(labels).to(device)
    order = torch.randperm(len(x), device=device)
    x, y = x[order], y[order]  # pre-made, shuffled once
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip((x.shape[1], *HIDDEN_UNITS[:-1]), HIDDEN_UNITS, strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(HIDDEN_UNITS[-1], NUM_CLASSES)).to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def epoch() -> float:
        start = time.perf_counter()
        for first in range(0, len(x), BATCH_SIZE):
            optimizer.zero_grad()
            loss = loss_fn(model(x[first:first + BATCH_SIZE]), y[first:first + BATCH_SIZE])
            loss.backward()
            optimizer.step()
        loss.item()  # wait for the last step
        return time.perf_counter() - start

    epoch()  # warm-up
    return {"examples": len(x), **summarize([epoch() for _ in range(repeats)])}


def torch_device() -> str:
    """``"gpu"`` when PyTorch sees CUDA, else ``"cpu"``."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def torch_gemm_gflops(device: str, min_seconds: float) -> float:
    """GEMM rate through ``torch.matmul`` on ``device`` (``"cpu"`` or ``"gpu"``)."""
    import torch

    return gemm_gflops(
        torch.matmul,
        lambda array: torch.from_numpy(array).to("cuda" if device == "gpu" else "cpu"),
        lambda result: result[0, 0].item(), size=2048 if device == "cpu" else 8192,
        min_seconds=min_seconds,
    )


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
    if name == PURE_TORCH:
        device = torch_device()
        rows: dict[str, Callable[[], dict[str, Any]]] = {
            FLOOR: lambda: {"gflops": torch_gemm_gflops(device, min_seconds)},
            PURE_LOOP: lambda: time_pure_torch(images, labels, args.repeats),
        }
    else:
        device = keras_device(name)
        workdir = Path(tempfile.mkdtemp(prefix="kerasdnn-bench-"))
        rows = {
            FLOOR: lambda: {"gflops": keras_gemm_gflops(name, device, min_seconds)},
            STOCK_KERAS: lambda: time_stock_keras(images, labels, args.repeats),
            STOCK_KERAS_SPE: lambda: time_stock_keras(images, labels, args.repeats,
                                                      STOCK_STEPS_PER_EXECUTION),
            KERASDNN: lambda: time_kerasdnn(
                images, labels, args.repeats, args.device_prefetch == "on", workdir,
                args.steps_per_execution),
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
        for name in ("device", "examples", "steps_per_execution"):
            if name in row:
                into[name] = row[name]
        if "gflops" in row:
            into.setdefault("gflops_rounds", []).append(row["gflops"])
        if "seconds" in row:
            into.setdefault("seconds", []).extend(row["seconds"])
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
    by.  ``÷ stock Keras`` (stock and kerasdnn rows) divides by the faster stock
    row of the same backend.

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
        if row["path"] not in (KERASDNN, *STOCK_PATHS):
            references.pop("stock_keras")
        if row["path"] == PURE_LOOP:
            references.pop("pure_pytorch")
        row["ratios"] = {name: mine / ref for name, ref in references.items() if ref}


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The one table: a row per (backend, path), ratios where they apply."""
    header = ["backend", "path", "s/epoch: median [min–max]", "examples/s", "GEMM GFLOP/s",
              "÷ floor", "÷ pure PyTorch", "÷ stock Keras"]
    lines = []
    for row in rows:
        backend = row["backend"] if row["backend"] != PURE_TORCH else "torch (no Keras)"
        if "device" in row:
            backend += f" ({row['device']})"
        if "error" in row:
            error = row["error"] if len(row["error"]) <= 110 else row["error"][:107] + "..."
            lines.append([backend, row["path"], f"error: {error}", "", "", "", "", ""])
            continue
        ratios = row.get("ratios", {})
        lines.append([
            backend, row["path"], seconds_cell(row), f"{row['examples_per_second']:,.0f}",
            f"{row['gflops']:,.1f}" if "gflops" in row else "",
            *(f"{ratios[name]:.2f}" if name in ratios else ""
              for name in ("floor", "pure_pytorch", "stock_keras")),
        ])
    return markdown_table(header, lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.epoch",
        description="Seconds per epoch of the seed network: kerasdnn, stock Keras, pure PyTorch, "
                    "and the FLOP floor, one subprocess per backend.",
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), type=parse_backends,
                        help="comma-separated Keras backends (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds: each times one epoch of every row after a warm-up "
                             "epoch, in a fresh subprocess per backend (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=60_000,
                        help="training examples per epoch (default: %(default)s)")
    parser.add_argument("--device-prefetch", choices=("on", "off"), default="on",
                        help="pipelines.device.prefetch_to_device on the kerasdnn path")
    parser.add_argument("--steps-per-execution", type=int, default=DEFAULT_STEPS_PER_EXECUTION,
                        help="kerasdnn's steps per compiled call (TensorFlow, JAX; default: "
                             "kerasdnn's own, %(default)s)")
    add_worker_arguments(parser, [*BACKENDS, PURE_TORCH])
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.examples < BATCH_SIZE or args.steps_per_execution < 1:
        parser.error(f"--repeats and --steps-per-execution must be >= 1 "
                     f"and --examples >= {BATCH_SIZE}")
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
                     "batch_size": BATCH_SIZE, "parameters": PARAMETERS,
                     "flops_per_example": FLOPS_PER_EXAMPLE,
                     "device_prefetch": args.device_prefetch,
                     "steps_per_execution": args.steps_per_execution,
                     "stock_steps_per_execution": STOCK_STEPS_PER_EXECUTION,
                     "threads": args.threads or "libraries' defaults"},
        "machine_floor_gflops": best,
        "rows": rows,
    }
    print(f"\nSeed network 784-500-250-10, batch {BATCH_SIZE}, {args.examples:,} examples/epoch, "
          f"device prefetch {args.device_prefetch}, {args.repeats} round(s), "
          f"{args.threads or 'default'} thread(s); "
          f"machine floor {best or 0:,.1f} GFLOP/s; {machine_line(machine)}\n")
    print(format_table(rows))
    if args.json:
        from kerasdnn.io import atomic_write_json

        atomic_write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
