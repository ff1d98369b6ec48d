"""The one table of Keras backends: what each one takes from the rest of the project.

Every module that treats backends differently reads this table, so a fourth
backend is one row here, one step file (``kerasdnn/steps/<name>.py``) and its
tests.  It lives in :mod:`pipelines`, the bottom package, because both
``pipelines`` and ``kerasdnn`` read it (``pipelines`` may not import ``kerasdnn``).
It imports nothing heavy.

Example:
    >>> BACKENDS
    ('tensorflow', 'jax', 'torch')
    >>> backend_spec("torch").steps_per_execution, backend_spec("jax").feed
    (False, 'host')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["BACKENDS", "TABLE", "BackendSpec", "backend_spec"]


@dataclass(frozen=True)
class BackendSpec:
    """One backend's row.

    Attributes:
        name: the ``KERAS_BACKEND`` value.
        step: ``"module:Class"`` of its custom-step mixin (:mod:`kerasdnn.steps`).
        steps_per_execution: whether Keras runs several steps per compiled call
            (Keras 3.15: not on PyTorch).
        feed: how :func:`pipelines.feed.for_fit` hands an endless stream to
            ``fit``: ``"dataset"`` (the ``tf.data`` dataset itself, read
            in-graph) or ``"host"`` (a Python iterator of NumPy blocks).
        device_prefetch: how batches reach an accelerator ahead of the step
            (:func:`pipelines.device.prefetch_to_device`): ``"tf"``
            (``prefetch_to_device``), ``"keras"`` (Keras's trainer already
            does it) or ``"torch_loader"`` (a side-stream copy loader).
        data_parallel: the data-parallel engine (``kerasdnn.distribute``), or
            ``None`` where this Keras has none.
        module: the framework's own import name (for versions and memory).
    """

    name: str
    step: str
    steps_per_execution: bool
    feed: Literal["dataset", "host"]
    device_prefetch: Literal["tf", "keras", "torch_loader"]
    data_parallel: str | None
    module: str


TABLE: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("tensorflow", "kerasdnn.steps.tensorflow:TensorFlowStep", True, "dataset",
                    "tf", "tf.distribute.MirroredStrategy", "tensorflow"),
        BackendSpec("jax", "kerasdnn.steps.jax:JAXStep", True, "host", "keras",
                    "keras.distribution.DataParallel", "jax"),
        BackendSpec("torch", "kerasdnn.steps.torch:TorchStep", False, "host", "torch_loader",
                    None, "torch"),
    )
}
BACKENDS: tuple[str, ...] = tuple(TABLE)


def backend_spec(name: str) -> BackendSpec:
    """The row of backend ``name``; ``KeyError`` names the known ones.

    Example:
        >>> backend_spec("jax").step
        'kerasdnn.steps.jax:JAXStep'
    """
    try:
        return TABLE[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None
