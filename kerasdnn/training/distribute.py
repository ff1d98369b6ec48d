"""Data-parallel training on Keras's and TensorFlow's own distribution engines.

``kerasdnn.train(..., data_parallel=True, devices=N)`` (``--data-parallel
--devices N``) keeps one model replica per device and splits every global batch
evenly across them:

* JAX: ``keras.distribution.DataParallel`` over the first N devices (GSPMD
  shards the batch and all-reduces the gradients inside the one jitted step);
* TensorFlow: ``tf.distribute.MirroredStrategy`` over the first N GPUs, or N
  logical CPU devices;
* PyTorch: one device per process, over ``torch.distributed`` (gloo on CPUs,
  NCCL on GPUs): launched by ``torchrun --nproc-per-node N -m kerasdnn.train
  --data-parallel`` or with ``--coordinator/--num-processes/--process-id``; the
  step averages the gradients itself (:mod:`kerasdnn.network.steps.torch_parallel`).

On a host without accelerators, N > 1 splits the CPU into N virtual devices
(:func:`configure_devices`, before the backend starts its devices).

Every batch is made divisible by the device count, exactly
(:func:`pad_batch`): the short last batch of an epoch gets zero-weight filler
rows and its real rows the weight ``padded / real``, so the loss (Keras's
``sum_over_batch_size``: weighted sum over the padded size) is the real rows'
mean, and the weighted metrics see only the real rows.  Full batches get weight 1.

Example:
    >>> pad_batch(np.ones((3, 2)), np.arange(3), 2)[2]
    array([1.3333334, 1.3333334, 1.3333334, 0.       ], dtype=float32)
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from kerasdnn.core.errors import ConfigError
from pipelines.backends import backend_spec, with_feature

__all__ = [
    "Processes",
    "configure_devices",
    "distribution_record",
    "initialize_processes",
    "launched_processes",
    "pad_batch",
    "padded_dataset",
    "padded_iterator",
    "process_group_setup",
    "replicas",
    "replication_callback",
    "strategy_scope",
]

# Variables that launch a process into a multi-process run, by engine; the first
# one that says how many processes there are.
_PROCESS_ENV = {
    "keras.distribution.DataParallel": ("KERAS_DISTRIBUTION_NUM_PROCESSES",
                                        "KERAS_DISTRIBUTION_JOB_ADDRESSES",
                                        "KERAS_DISTRIBUTION_PROCESS_ID"),
    "torch.distributed": ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"),  # torchrun's
}
# How long a PyTorch process waits for the others to join, or to reach the same
# collective, before it gives up (torch's own default for gloo is 30 minutes).
JOIN_TIMEOUT = datetime.timedelta(minutes=10)

def _refusal(backend: str) -> str:
    """The one line for a backend whose row in :mod:`pipelines.backends` has no
    data-parallel engine."""
    others = " or ".join(f"KERAS_BACKEND={name}" for name in with_feature("data_parallel"))
    return (f"--data-parallel is not available on the {backend} backend: Keras 3.15 has no "
            f"data parallelism for {backend_spec(backend).label}; use "
            f"{others} for data-parallel training, or train on one device without "
            "--data-parallel")


@dataclasses.dataclass(frozen=True)
class Processes:
    """This process's place in a multi-process run: ``index`` of ``count``."""

    index: int = 0
    count: int = 1

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory (process 0 only)."""
        return self.index == 0


def initialize_processes(backend: str, coordinator: str | None = None,
                         num_processes: int | None = None,
                         process_id: int | None = None) -> Processes:
    """Join a multi-process run before the backend starts its devices, by the
    backend's engine: JAX through ``keras.distribution.initialize`` (which also
    reads ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` / ``_NUM_PROCESSES`` /
    ``_PROCESS_ID``; CPU devices talk over gloo), PyTorch through
    ``torch.distributed.init_process_group`` (the three flags, or torchrun's
    ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``).  Without flags or
    variables, a single process: nothing is started.

    Example:
        >>> initialize_processes("jax")
        Processes(index=0, count=1)
    """
    spec = backend_spec(backend)
    given = (coordinator, num_processes, process_id)
    if all(value is None for value in given) and not any(
            os.environ.get(name) for name in _PROCESS_ENV.get(spec.data_parallel, ())):
        return Processes()
    if not spec.multi_process:
        needs = " or ".join(f"KERAS_BACKEND={name}" for name in with_feature("multi_process"))
        raise ConfigError(
            f"multi-process training (--coordinator/--num-processes/--process-id) needs "
            f"{needs}, not {backend}; on one host use --data-parallel, which "
            "spans all its devices"
        )
    return _ENGINES[spec.data_parallel].join(coordinator, num_processes, process_id)


def launched_processes(backend: str) -> int:
    """How many processes the launcher's variables say this run has (1 without them):
    ``WORLD_SIZE`` (torchrun) on PyTorch, ``KERAS_DISTRIBUTION_NUM_PROCESSES`` on JAX.

    Example:
        >>> launched_processes("tensorflow")
        1
    """
    names = _PROCESS_ENV.get(backend_spec(backend).data_parallel)
    value = os.environ.get(names[0], "") if names else ""
    return int(value) if value.strip().isdigit() else 1


def _join_jax(coordinator: str | None, num_processes: int | None,
              process_id: int | None) -> Processes:
    import jax
    import keras
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        raise ConfigError(
            "multi-process training must start before JAX starts its devices; "
            "run it in a fresh process (`python -m kerasdnn.train --coordinator ...`)"
        )
    # CPU devices of different processes reduce through gloo (no effect on GPUs).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        keras.distribution.initialize(coordinator, num_processes, process_id)
    except (RuntimeError, ValueError) as error:
        raise _not_joined(coordinator, error) from None
    return Processes(jax.process_index(), jax.process_count())


def _join_torch(coordinator: str | None, num_processes: int | None,
                process_id: int | None) -> Processes:
    # Keras 3.15 has no data parallelism on PyTorch. When a Keras release brings its
    # own (keras-team/keras#23316 wraps the model in DistributedDataParallel), this
    # engine defers to it: join through keras.distribution.initialize, drop the step's
    # all-reduce (kerasdnn.network.steps.torch_parallel) and keep the padding rule.
    import torch
    import torch.distributed as dist

    given = (coordinator, num_processes, process_id)
    if any(value is not None for value in given):
        if any(value is None for value in given):
            raise ConfigError("on PyTorch a multi-process run needs all of --coordinator "
                              "HOST:PORT, --num-processes N and --process-id I (or launch "
                              "it with torchrun, whose variables say the same)")
        join = {"init_method": f"tcp://{coordinator}", "world_size": num_processes,
                "rank": process_id}
    else:
        missing = [name for name in _PROCESS_ENV["torch.distributed"] if not os.environ.get(name)]
        if missing:
            raise ConfigError(f"launched without {', '.join(missing)}: start the processes "
                              "with torchrun, or give --coordinator, --num-processes and "
                              "--process-id")
        join = {"init_method": "env://"}
    rank = process_id if process_id is not None else int(os.environ.get("RANK", "0"))
    group_backend, device = process_group_setup(
        torch.cuda.device_count(), os.environ.get("LOCAL_RANK"), rank)
    if device is not None:
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(group_backend, timeout=JOIN_TIMEOUT, **join)
    except (RuntimeError, ValueError) as error:
        raise _not_joined(coordinator, error) from None
    atexit.register(_leave_process_group)
    return Processes(dist.get_rank(), dist.get_world_size())


def process_group_setup(cuda_devices: int, local_rank: str | None,
                        rank: int) -> tuple[str, int | None]:
    """``(torch.distributed backend, CUDA device index or None)`` of a PyTorch
    process: NCCL on the GPU its launcher's ``LOCAL_RANK`` names (else its rank
    modulo the host's GPUs) where there are GPUs, gloo on the CPU where not.

    Example:
        >>> process_group_setup(0, None, 3), process_group_setup(4, "1", 5)
        (('gloo', None), ('nccl', 1))
    """
    if cuda_devices == 0:
        return "gloo", None
    return "nccl", int(local_rank) if local_rank is not None else rank % cuda_devices


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _not_joined(coordinator: str | None, error: Exception) -> ConfigError:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return ConfigError(
        f"could not join the multi-process run at {coordinator or 'the coordinator'} "
        f"({type(error).__name__}: {first_line[:200]}); check --coordinator, "
        "--num-processes and --process-id, and that every process was started"
    )


def configure_devices(backend: str, devices: int | None) -> int:
    """Make ``devices`` devices visible to ``backend`` and return how many data-parallel
    replicas there are (all visible devices when ``devices`` is None).

    With accelerators, the first ``devices`` of them; without, the host CPU split
    into ``devices`` virtual devices, which the backend allows only before it
    starts its devices: a process that started them with fewer gets a one-line
    :class:`ConfigError`.
    """
    engine = backend_spec(backend).data_parallel
    if engine is None:
        raise ConfigError(_refusal(backend))
    return _ENGINES[engine].devices(devices)


def _jax_devices(devices: int | None) -> int:
    """With several processes, ``devices`` counts this process's devices and all
    processes' devices are the replicas."""
    import jax
    from jax._src import xla_bridge

    if devices is not None and devices > 1 and not xla_bridge.backends_are_initialized():
        # Without accelerators this is the device count of the CPU backend (of each
        # process); with them it leaves the accelerators alone.
        jax.config.update("jax_num_cpu_devices", devices)
    if jax.process_count() > 1:
        local = len(jax.local_devices())
        if devices is not None and devices != local:
            raise ConfigError(
                f"--devices {devices}: this process has {local} device(s); give "
                f"--devices {local} or leave it out (all of them)"
            )
        return len(jax.devices())
    available = len(jax.devices())
    if devices is None:
        return available
    if devices > available:
        raise ConfigError(
            f"--devices {devices}: JAX sees only {available} device(s) in this process "
            f"({jax.devices()[0].platform}); start a fresh process (JAX fixes its CPU device "
            "count when it starts its devices) or ask for fewer --devices"
        )
    return devices


def _tensorflow_devices(devices: int | None) -> int:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and devices is not None and devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        with contextlib.suppress(RuntimeError):  # already started: checked below
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    available = len(tf.config.list_logical_devices("GPU" if gpus else "CPU"))
    if devices is None:
        return available
    if devices > available:
        raise ConfigError(
            f"--devices {devices}: TensorFlow sees only {available} device(s) in this "
            "process; start a fresh process (TensorFlow fixes its logical CPU devices "
            "when it starts) or ask for fewer --devices"
        )
    return devices


def _torch_devices(devices: int | None) -> int:
    """One device per process: the replicas are the processes."""
    if devices is not None and devices > 1:
        raise ConfigError(
            f"--devices {devices}: on PyTorch each process trains on one device; start "
            f"{devices} processes instead (torchrun --nproc-per-node {devices} -m "
            "kerasdnn.train --data-parallel ...) and leave out --devices"
        )
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_initialized() else 1


def strategy_scope(backend: str, devices: int) -> contextlib.AbstractContextManager[None]:
    """Where to build, compile, fit and evaluate the model: the first ``devices``
    devices as one data-parallel distribution, by the backend's engine
    (``keras.distribution`` on JAX, a ``MirroredStrategy`` on TensorFlow, the
    processes' ``torch.distributed`` group on PyTorch)."""
    return _ENGINES[backend_spec(backend).data_parallel].scope(devices)


@contextlib.contextmanager
def _keras_distribution_scope(devices: int) -> Iterator[None]:
    import jax
    import keras

    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=jax.devices()[:devices], auto_shard_dataset=False))
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


@contextlib.contextmanager
def _mirrored_strategy_scope(devices: int) -> Iterator[None]:
    import tensorflow as tf

    kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    names = [device.name for device in tf.config.list_logical_devices(kind)[:devices]]
    with tf.distribute.MirroredStrategy(names).scope():
        yield


@contextlib.contextmanager
def _torch_scope(devices: int) -> Iterator[None]:
    from kerasdnn.network.steps import torch_parallel

    with torch_parallel.scope():
        yield


class _Engine(NamedTuple):
    """A data-parallel engine of the backend table."""

    join: Callable[[str | None, int | None, int | None], Processes] | None
    """Join a multi-process run (``None``: one process only)."""
    devices: Callable[[int | None], int]
    """Make the devices visible and count the replicas."""
    scope: Callable[[int], contextlib.AbstractContextManager[None]]
    """The scope the model is built, compiled and fitted in."""


_ENGINES = {
    "keras.distribution.DataParallel": _Engine(_join_jax, _jax_devices,
                                               _keras_distribution_scope),
    "tf.distribute.MirroredStrategy": _Engine(None, _tensorflow_devices,
                                              _mirrored_strategy_scope),
    "torch.distributed": _Engine(_join_torch, _torch_devices, _torch_scope),
}


def replication_callback(backend: str, model: Any) -> Any:
    """A Keras callback that makes every process's ``model`` process 0's when training
    begins, where the engine does not (PyTorch's); ``None`` elsewhere.

    Example:
        >>> replication_callback("jax", model=None) is None
        True
    """
    if backend_spec(backend).data_parallel != "torch.distributed":
        return None
    import keras

    from kerasdnn.network.steps import torch_parallel

    return keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: torch_parallel.replicate_first(model))


def replicas() -> int:
    """Devices of the active JAX ``keras.distribution`` (1 without one), the
    divisor every input batch needs there.

    Example:
        >>> replicas()
        1
    """
    import keras

    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    return int(np.prod(distribution.device_mesh.shape))


def pad_batch(x: np.ndarray, y: np.ndarray, replicas: int) -> tuple[Any, Any, np.ndarray]:
    """``(x, y, sample_weight)`` with the rows padded to a multiple of ``replicas``
    (zeros, weight 0) and the real rows weighted ``padded / real`` (1 when nothing
    is padded).

    Example:
        >>> x, y, w = pad_batch(np.ones((3, 2)), np.arange(3), 4)
        >>> x.shape, y.tolist(), float(w.sum())
        ((4, 2), [0, 1, 2, 0], 4.0)
    """
    real = len(y)
    padded = -(-real // replicas) * replicas
    weight = np.zeros(padded, np.float32)
    weight[:real] = padded / real
    if padded != real:
        x = np.concatenate([x, np.zeros((padded - real, *x.shape[1:]), x.dtype)])
        y = np.concatenate([y, np.zeros((padded - real, *y.shape[1:]), y.dtype)])
    return x, y, weight


def padded_iterator(batches: Iterator[Any], replicas: int,
                    processes: Processes = Processes(),
                    full_weights: bool = True) -> Iterator[Any]:
    """:func:`pad_batch` over an iterator of ``(x, y)`` NumPy batches; with several
    processes, this process's equal share of each padded global batch (every
    process reads the same batches, the seed decides them, and keeps its rows).
    ``full_weights=False`` leaves a batch that needs no padding ``(x, y)`` (its
    weights would all be 1): for an eager step, which may take either."""
    for x, y in batches:
        padded = pad_batch(x, y, replicas)
        if not full_weights and len(padded[2]) == len(y):
            padded = padded[:2]
        if processes.count == 1:
            yield padded
            continue
        share = len(padded[0]) // processes.count
        rows = slice(processes.index * share, (processes.index + 1) * share)
        yield tuple(array[rows] for array in padded)


def padded_dataset(dataset: Any, replicas: int, processes: Processes = Processes()) -> Any:
    """:func:`pad_batch` over a ``tf.data`` dataset of ``(x, y)`` batches, and this
    process's share of each as in :func:`padded_iterator`.

    Example:
        >>> import tensorflow as tf
        >>> data = tf.data.Dataset.from_tensor_slices((np.ones((3, 2)), np.arange(3))).batch(3)
        >>> [w.tolist() for *_, w in padded_dataset(data, 2).as_numpy_iterator()]
        [[1.3333333730697632, 1.3333333730697632, 1.3333333730697632, 0.0]]
    """
    import tensorflow as tf

    def pad(x: Any, y: Any) -> tuple[Any, Any, Any]:
        real = tf.shape(y)[0]
        padded = (real + replicas - 1) // replicas * replicas
        extra = padded - real

        def rows(tensor: Any) -> Any:
            widths = tf.concat([[[0, extra]], tf.zeros([tf.rank(tensor) - 1, 2], tf.int32)], 0)
            return tf.pad(tensor, widths)

        scale = tf.cast(tf.cast(padded, tf.float64) / tf.cast(real, tf.float64), tf.float32)
        weight = tf.concat([tf.fill([real], scale), tf.zeros([extra], tf.float32)], 0)
        share = padded // processes.count
        start = processes.index * share
        return tuple(tensor[start:start + share] for tensor in (rows(x), rows(y), weight))

    return dataset.map(pad, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def distribution_record(data_parallel: bool, devices: int, processes: int) -> dict[str, Any]:
    """The ``"distribution"`` entry of ``config.json``.

    Example:
        >>> distribution_record(True, 2, 1)
        {'kind': 'data_parallel', 'devices': 2, 'processes': 1}
    """
    if not data_parallel:
        return {"kind": "none", "devices": 1, "processes": 1}
    return {"kind": "data_parallel", "devices": devices, "processes": processes}
