"""Data parallelism of the PyTorch step over ``torch.distributed`` (one device per process).

Keras 3.15 has no data parallelism on PyTorch, so the step does what
``DistributedDataParallel`` does, inside the custom step, where the step's
contract stays whole: each process computes the gradients of its share of the
global batch (:func:`kerasdnn.training.distribute.padded_iterator`), and one
all-reduce (:func:`average_step`) averages them, with the loss and the real
rows, before anything reads them.  The global norm, the non-finite guard and
the clipping then see the global batch's gradients, identical on every process,
so every process keeps or skips the same steps and the weights stay replicas.
Shares are equal (the global batch is padded to a multiple of the processes),
so the mean of the shares' mean losses is the global batch's mean loss.

What each process keeps, and how it is read:

* the loss tracker, ``grad_norm`` and ``skipped_steps`` are updated with the
  global values, the same on every process;
* the compiled metrics (accuracy) count each process's own rows; their
  variables are summed across processes when the results are read
  (:func:`summed`), so the logs (and the callbacks that act on them: early
  stopping, the plateau schedule, the checkpoint) are the same everywhere;
* batch normalization normalizes with each process's share, as DDP without
  ``SyncBatchNorm`` does; its moving statistics are averaged after every kept
  step (:func:`average_state`), so they stay replicas too;
* dropout draws from a seed generator offset by the process's rank
  (:func:`replicate_first`), so the shares get independent masks.

Only between :func:`scope`'s entry and exit does the step talk to the other
processes: a model used outside it (process 0's evaluation after training) runs
alone.

Example:
    >>> processes()  # outside a data-parallel scope
    1
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist

from kerasdnn.core.errors import KerasDNNError

__all__ = [
    "PeerLostError",
    "average_state",
    "average_step",
    "processes",
    "replicate_first",
    "scope",
    "summed",
]

# The processes of the data-parallel scope in force (1: none).
_SCOPE = {"processes": 1}

# Dropout seeds of process r are offset by r times this (Keras's seed state is
# ``[seed, counter]``; the offset moves the seed, far from any user seed's neighbours).
SEED_STRIDE = 1_000_003


class PeerLostError(KerasDNNError):
    """Another process of a data-parallel run stopped or cannot be reached."""


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Train in data parallel with the processes of the default process group
    (``torch.distributed.init_process_group``, already joined).

    Example:
        >>> with scope():  # no process group: one process, nothing changes
        ...     processes()
        1
    """
    previous = _SCOPE["processes"]
    joined = dist.is_available() and dist.is_initialized()
    _SCOPE["processes"] = dist.get_world_size() if joined else 1
    try:
        yield
    finally:
        _SCOPE["processes"] = previous


def processes() -> int:
    """How many processes the step averages over (1 outside a :func:`scope`)."""
    return _SCOPE["processes"]


def average_step(gradients: Sequence[torch.Tensor], loss: torch.Tensor,
                 rows: int | torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """``(gradients, loss, rows)`` of the global batch from this process's share: the
    gradients and the loss averaged over the processes, the real rows summed; one
    all-reduce of one flat buffer (as DDP's buckets, for a model this size one).

    Example:
        >>> grads, loss, rows = average_step([torch.ones(2)], torch.tensor(3.0), 5)
        >>> grads[0].tolist(), float(loss), float(rows)  # one process
        ([1.0, 1.0], 3.0, 5.0)
    """
    rows = torch.as_tensor(rows, dtype=torch.float32, device=loss.device)
    count = processes()
    if count == 1:
        return list(gradients), loss, rows
    *gradients, loss, rows = _summed_over_processes(
        [*gradients, loss.detach().float(), rows], torch.float32)
    return [g / count for g in gradients], loss / count, rows


def average_state(variables: Sequence[Any]) -> None:
    """Average the values of Keras ``variables`` (float: batch normalization's moving
    statistics) over the processes, in place.

    Example:
        >>> import keras
        >>> mean = keras.Variable([2.0, 4.0])
        >>> average_state([mean]); mean.numpy().tolist()
        [2.0, 4.0]
    """
    if not variables or processes() == 1:
        return
    sums = _summed_over_processes([v.value for v in variables], torch.float32)
    for variable, total in zip(variables, sums, strict=True):
        variable.assign(total / processes())


@contextlib.contextmanager
def summed(variables: Sequence[Any]) -> Iterator[None]:
    """Within, ``variables`` (the compiled metrics' counts) hold their sums over the
    processes; afterwards, this process's own values again.

    Example:
        >>> import keras
        >>> total = keras.Variable(3.0)
        >>> with summed([total]):
        ...     float(total.numpy())
        3.0
    """
    if not variables or processes() == 1:
        yield
        return
    own = [v.value.detach().clone() for v in variables]
    for variable, total in zip(variables, _summed_over_processes(own, torch.float64),
                               strict=True):
        variable.assign(total)
    try:
        yield
    finally:
        for variable, value in zip(variables, own, strict=True):
            variable.assign(value)


def replicate_first(model: Any) -> None:
    """Make every process's ``model`` process 0's (its weights, as DDP does when it
    wraps a module), then offset each process's dropout seeds by its rank.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> replicate_first(model)  # one process: nothing to do
    """
    if processes() == 1:
        return
    for variable in model.variables:
        value = variable.value.detach().clone()
        _guarded(dist.broadcast, value, src=0)
        variable.assign(value)
    rank = dist.get_rank()
    for layer in model._flatten_layers():
        generator = getattr(layer, "seed_generator", None)
        if generator is not None:
            state = generator.state.value.clone()
            state[0] += rank * SEED_STRIDE
            generator.state.assign(state)


def _summed_over_processes(tensors: Sequence[torch.Tensor],
                           dtype: torch.dtype) -> list[torch.Tensor]:
    """Each of ``tensors`` summed over the processes, in its own shape and dtype: one
    all-reduce of one flat buffer of ``dtype``."""
    flat = torch.cat([tensor.detach().reshape(-1).to(dtype) for tensor in tensors])
    _all_reduce(flat)
    parts = flat.split([tensor.numel() for tensor in tensors])
    return [part.view_as(tensor).to(tensor.dtype)
            for part, tensor in zip(parts, tensors, strict=True)]


def _all_reduce(tensor: torch.Tensor) -> None:
    _guarded(dist.all_reduce, tensor, op=dist.ReduceOp.SUM)


def _guarded(collective: Any, *args: Any, **kwargs: Any) -> None:
    """Run a collective; a process that left (killed, crashed) becomes one line."""
    try:
        collective(*args, **kwargs)
    except (RuntimeError, dist.DistBackendError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise PeerLostError(
            f"another process of the data-parallel run stopped or cannot be reached "
            f"({type(error).__name__}: {first[:160]}); start all the processes again "
            "with --resume"
        ) from None
