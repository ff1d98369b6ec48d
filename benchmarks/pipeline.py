"""Input pipeline throughput next to the training step's consumption rate.

For MNIST-shaped data (60,000 x 28 x 28 uint8, made in memory) the pipeline of
:func:`pipelines.builder.make_dataset` (scale, flatten, cache, a seeded
permutation per epoch, one gather per batch of 100, prefetch) is iterated the
way ``fit`` consumes it on each backend (through Keras's own data adapter: a
``tf.data`` iterator on TensorFlow, NumPy batches on JAX, torch tensors on
PyTorch).  The training rate is that of ``fit`` on the seed network
(784-500-250-10, SGD momentum, batch 100) fed one batch repeated from memory, so
it measures the step alone.  Goal: ratio >= 10 (input never the bottleneck).
Each backend runs in its own subprocess.

Usage:
    python -m benchmarks.pipeline                      # all three backends
    python -m benchmarks.pipeline --backends jax --epochs 3 --steps 300

Example:
    >>> rate(600, 0.5)
    1200.0
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks._common import (
    BACKENDS,
    machine_info,
    machine_line,
    markdown_table,
    parse_backends,
    run_python,
)
from pipelines.backends import backend_spec
from pipelines.constants import BATCH_SIZE

NUM_EXAMPLES = 60_000
IMAGE_SHAPE = (28, 28)
GOAL = 10.0


def rate(examples: int, seconds: float) -> float:
    """Examples per second."""
    return examples / seconds


def _mnist_shaped_dataset(seed: int = 0):
    import numpy as np

    from pipelines.builder import make_dataset

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (NUM_EXAMPLES, *IMAGE_SHAPE), dtype=np.uint8)
    y = rng.integers(0, 10, NUM_EXAMPLES).astype(np.int64)
    return make_dataset(
        x, y, offset=np.zeros((), np.float32), multiplier=np.asarray(1 / 255, np.float32),
        flatten=True, batch_size=BATCH_SIZE, shuffle_seed=seed, cache=True,
    )


def _epoch_iterator(dataset, backend: str):
    """What fit iterates on this backend (Keras's data adapter), as a callable."""
    try:
        from keras.src.trainers.data_adapters import get_data_adapter

        adapter = get_data_adapter(dataset)
    except ImportError:  # Keras moved its adapters: plain NumPy batches
        return dataset.as_numpy_iterator
    return lambda: iter(getattr(adapter, backend_spec(backend).keras_iterator)())


def pipeline_rates(backend: str, epochs: int) -> dict[str, float]:
    """Examples/s of the first epoch (iterator start-up included) and the median later epoch."""
    epoch = _epoch_iterator(_mnist_shaped_dataset(), backend)
    rates = []
    for _ in range(epochs + 1):
        start, count = time.perf_counter(), 0
        for _, y in epoch():
            count += int(y.shape[0])
        rates.append(rate(count, time.perf_counter() - start))
    return {"first_epoch": rates[0], "steady": statistics.median(rates[1:])}


def _seed_model():
    try:
        from kerasdnn.network.models import build_model

        return build_model(), "kerasdnn.build_model"
    except ImportError:
        import keras

        model = keras.Sequential([
            keras.Input((784,)),
            keras.layers.Dense(500, activation="relu"),
            keras.layers.Dense(250, activation="relu"),
            keras.layers.Dense(10),
        ])
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model, "keras.Sequential"


def training_rate(steps: int) -> tuple[float, str]:
    """Examples/s that ``fit`` consumes on the seed network (input cost ~0)."""
    import numpy as np

    from pipelines.tf_setup import tf

    rng = np.random.default_rng(0)
    x = rng.random((BATCH_SIZE, 784), dtype=np.float32)
    y = rng.integers(0, 10, BATCH_SIZE).astype(np.int32)
    one_batch = tf.data.Dataset.from_tensors((x, y)).cache()
    model, how = _seed_model()
    model.fit(one_batch.repeat(20), epochs=1, verbose=0)  # compile and warm up
    start = time.perf_counter()
    model.fit(one_batch.repeat(steps), epochs=1, verbose=0)
    return rate(steps * BATCH_SIZE, time.perf_counter() - start), how


def worker(epochs: int, steps: int) -> dict[str, Any]:
    import keras

    backend = keras.backend.backend()
    pipe = pipeline_rates(backend, epochs)
    train, how = training_rate(steps)
    return {"backend": backend, **pipe, "train": train, "model": how}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), type=parse_backends)
    parser.add_argument("--epochs", type=int, default=3, help="pipeline epochs after the first")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.epochs, args.steps)))
        return 0

    print(machine_line(machine_info()))
    rows = []
    for backend in args.backends:
        done = run_python(["-m", "benchmarks.pipeline", "--worker", "--epochs", str(args.epochs),
                           "--steps", str(args.steps)], backend=backend, timeout=1800)
        if done.failure:
            rows.append([backend, "-", "-", "-", "-", done.failure])
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        ratio = result["steady"] / result["train"]
        verdict = "ok" if ratio >= GOAL else f"below {GOAL:.0f}x"
        rows.append([
            backend, f"{result['first_epoch']:,.0f}", f"{result['steady']:,.0f}",
            f"{result['train']:,.0f}", f"{ratio:,.1f}x", verdict,
        ])
    print(f"pipeline: {NUM_EXAMPLES:,} x {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} uint8 in memory, "
          f"batch {BATCH_SIZE}; training: seed network; examples/s")
    print(markdown_table(["backend", "pipeline 1st epoch", "pipeline steady", "training step",
                          "ratio", f"goal {GOAL:.0f}x"], rows))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
