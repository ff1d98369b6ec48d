"""What ``python -m benchmarks.epoch`` times, one function per path (its
worker runs them; :mod:`benchmarks.step_profile` and :mod:`benchmarks.data_parallel`
reuse them): the data, the FLOP floor, stock Keras, kerasdnn's real path (its input
path as ``kerasdnn.train`` resolves it, and the ``tf.data`` stream where that differs)
and the pure PyTorch loop, with the seed network's constants.  Every row takes the
batch size (default :data:`pipelines.constants.BATCH_SIZE`, 100).

Example:
    >>> PARAMETERS, FLOPS_PER_EXAMPLE  # of 784-500-250-10
    (520260, 3121560)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import compiled, summarize
from kerasdnn.core.config import ModelConfig
from pipelines.backends import TABLE, backend_spec
from pipelines.constants import BATCH_SIZE, SEED

DEFAULT_STEPS_PER_EXECUTION = ModelConfig().steps_per_execution
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
# kerasdnn with its input path forced to the tf.data stream (pipelines.feed's host
# blocks on JAX and PyTorch, the dataset read in-graph on TensorFlow), next to the
# "kerasdnn" row's resolved path
KERASDNN_STREAM = "kerasdnn, tf.data stream"
# TensorFlow: the "kerasdnn" row with jit_compile=True (Keras's "auto" leaves XLA off on
# a CPU); JAX always compiles with XLA, and PyTorch's steps run eagerly
KERASDNN_XLA = "kerasdnn, jit_compile=True"
KERASDNN_PATHS = (KERASDNN, KERASDNN_STREAM, KERASDNN_XLA)
STOCK_KERAS_SPE = f"stock Keras, {STOCK_STEPS_PER_EXECUTION} steps/execution"
STOCK_PATHS = (STOCK_KERAS, STOCK_KERAS_SPE)
EXPECTED_PATHS = {
    PURE_TORCH: (FLOOR, PURE_LOOP),
    **{name: (FLOOR, STOCK_KERAS, *((STOCK_KERAS_SPE,) if spec.steps_per_execution else ()),
              KERASDNN, KERASDNN_STREAM, *((KERASDNN_XLA,) if name == "tensorflow" else ()))
       for name, spec in TABLE.items()},  # steps/execution: not on PyTorch
}


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
    return _DEVICE_PROBES.get(backend, _tensorflow_device)()


def _jax_device() -> str:
    import jax

    return jax.default_backend()


def _tensorflow_device() -> str:
    import tensorflow as tf

    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def keras_gemm_gflops(backend: str, device: str, min_seconds: float) -> float:
    """GEMM rate through ``keras.ops.matmul``, compiled as Keras's ``jit_compile="auto"`` does:
    ``jax.jit`` on JAX, ``tf.function`` (XLA on GPU only) on TensorFlow, eager on PyTorch."""
    import keras

    matmul: Callable[[Any, Any], Any] = compiled(backend, keras.ops.matmul, xla=device != "cpu")

    def sync(result: Any) -> None:
        keras.ops.convert_to_numpy(result[0, 0])

    return gemm_gflops(matmul, keras.ops.convert_to_tensor, sync,
                       size=2048 if device == "cpu" else 8192, min_seconds=min_seconds)


def fit_epoch_seconds(model: Any, data: Any, repeats: int, *, warmup: list[float] | None = None,
                      **fit_kwargs: Any) -> list[float]:
    """Seconds of each epoch of ``model.fit`` after a first, warm-up epoch (whose seconds,
    tracing and compiling included, are appended to ``warmup`` when given).

    Keras turns the logs into Python numbers before ``on_epoch_end``, so each
    epoch is timed until its last step has finished, also on asynchronous backends.
    ``shuffle`` is ``False`` unless given: a dataset or generator is shuffled by its
    stream already (Keras warns that it ignores ``shuffle=True`` on them, the default
    of ``fit``); arrays (stock Keras) ask for ``shuffle=True`` themselves.
    """
    fit_kwargs.setdefault("shuffle", False)
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
    if warmup is not None:
        warmup.append(timer.seconds[0])
    return timer.seconds[1:]


def time_stock_keras(images: Any, labels: Any, repeats: int,
                     steps_per_execution: int = 1,
                     batch_size: int = BATCH_SIZE) -> dict[str, Any]:
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
    first: list[float] = []
    seconds = fit_epoch_seconds(model, x, repeats, warmup=first, y=y, batch_size=batch_size,
                                shuffle=True)
    return {"examples": len(x), "batch_size": batch_size, "first_epoch_seconds": first[0],
            "steps_per_execution": steps_per_execution, **summarize(seconds)}


def kerasdnn_stream(images: Any, labels: Any, workdir: Path,
                    batch_size: int = BATCH_SIZE) -> tuple[Any, int]:
    """``(splits, steps_per_epoch)``: the endless stream of the uint8 images, loaded
    as ``kerasdnn.train`` loads them (:func:`kerasdnn.training.data.load_splits`), from an
    ``npz:`` file in ``workdir``, ``batch_size`` examples a batch.

    The file holds the images plus a tenth more, so that the validation split
    leaves (about) ``len(images)`` to train on.
    """
    import numpy as np

    from kerasdnn.core.config import TrainConfig
    from kerasdnn.training.data import load_splits

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
    settings = TrainConfig(dataset=f"npz:{path}", batch_size=batch_size,
                           validation_split=fraction, seed=SEED, scale="unit")
    splits = load_splits(settings, repeat=True)
    return splits, splits.stream.batches_per_epoch


def kerasdnn_model(steps_per_epoch: int, steps_per_execution: int,
                   jit_compile: bool | str = "auto") -> Any:
    """``kerasdnn.build_model()`` with the steps per execution ``kerasdnn.train`` would use."""
    import kerasdnn
    from kerasdnn.train import steps_per_execution_for

    model = kerasdnn.build_model(steps_per_execution=steps_per_execution,
                                 jit_compile=jit_compile)
    model.steps_per_execution = steps_per_execution_for(steps_per_epoch,
                                                        model.steps_per_execution)
    return model


def time_kerasdnn(images: Any, labels: Any, repeats: int, device_prefetch: bool,
                  workdir: Path, steps_per_execution: int, batch_size: int = BATCH_SIZE,
                  input_path: str = "auto", jit_compile: bool | str = "auto") -> dict[str, Any]:
    """kerasdnn as ``kerasdnn.train`` runs it: the endless stream of
    :func:`kerasdnn_stream` → its input path resolved from ``input_path``
    (:func:`kerasdnn.training.input_path.resolve_input_path`: ``"auto"``, what
    ``kerasdnn.train`` takes by default, is the resident path where the examples fit,
    on TensorFlow under XLA only; ``"stream"``, the ``tf.data`` stream) → ``pipelines.feed.for_fit``
    → ``fit`` with ``steps_per_epoch`` and ``steps_per_execution``; the row reports
    the path taken (``input_path``) and how many examples were actually trained on.
    ``jit_compile``: the model's (``build_model``'s default, ``"auto"``, or XLA forced).
    """
    import keras

    import pipelines.feed
    from kerasdnn.training.input_path import resolve_input_path

    splits, steps = kerasdnn_stream(images, labels, workdir, batch_size)
    model = kerasdnn_model(steps, steps_per_execution, jit_compile)
    jit = bool(model.jit_compile) and not model.run_eagerly  # as kerasdnn.training.fitting
    path = resolve_input_path(input_path, keras.backend.backend(), splits.stream, jit=jit)
    train = pipelines.feed.for_fit(splits.stream, device_prefetch=device_prefetch,
                                   resident=path == "resident")
    first: list[float] = []
    seconds = fit_epoch_seconds(model, train, repeats, warmup=first, steps_per_epoch=steps)
    return {"examples": int(splits.info.num_examples["train"]), "batch_size": batch_size,
            "input_path": path, "steps_per_execution": model.steps_per_execution,
            "first_epoch_seconds": first[0],
            **summarize(seconds)}


def feeds_from_host(backend: str) -> bool:
    """Whether ``backend`` gets its stream's batches from the host (JAX, PyTorch), not
    as a ``tf.data`` dataset read in-graph (TensorFlow).

    Example:
        >>> feeds_from_host("jax"), feeds_from_host("tensorflow")
        (True, False)
    """
    return backend_spec(backend).feed == "host"


def time_pure_torch(images: Any, labels: Any, repeats: int,
                    batch_size: int = BATCH_SIZE) -> dict[str, Any]:
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
        for first in range(0, len(x), batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(x[first:first + batch_size]), y[first:first + batch_size])
            loss.backward()
            optimizer.step()
        loss.item()  # wait for the last step
        return time.perf_counter() - start

    epoch()  # warm-up
    return {"examples": len(x), "batch_size": batch_size,
            **summarize([epoch() for _ in range(repeats)])}


def torch_device() -> str:
    """``"gpu"`` when PyTorch sees CUDA, else ``"cpu"``."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


# How each framework says where it computes (the TensorFlow probe for any other).
_DEVICE_PROBES: dict[str, Callable[[], str]] = {"jax": _jax_device, "torch": torch_device}


def torch_gemm_gflops(device: str, min_seconds: float) -> float:
    """GEMM rate through ``torch.matmul`` on ``device`` (``"cpu"`` or ``"gpu"``)."""
    import torch

    return gemm_gflops(
        torch.matmul,
        lambda array: torch.from_numpy(array).to("cuda" if device == "gpu" else "cpu"),
        lambda result: result[0, 0].item(), size=2048 if device == "cpu" else 8192,
        min_seconds=min_seconds,
    )
