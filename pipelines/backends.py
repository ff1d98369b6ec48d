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

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipelines.errors import InvalidArgumentError

__all__ = [
    "BACKENDS",
    "TABLE",
    "BackendSpec",
    "backend_spec",
    "check_backend",
    "configured_backend",
    "keras_json_path",
]


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


def configured_backend() -> str:
    """The backend Keras runs (or will run) on, decided as Keras decides it, without
    importing Keras: ``keras.config.backend()`` once Keras is imported; else a
    non-empty ``KERAS_BACKEND``; else the ``"backend"`` of ``keras.json`` in
    ``KERAS_HOME`` (default ``~/.keras``, ``/tmp/.keras`` where home is not
    writable); else ``"tensorflow"``.  Not checked against :data:`BACKENDS`.

    Example:
        >>> os.environ["KERAS_BACKEND"] = "jax"
        >>> configured_backend() if "keras" not in sys.modules else "jax"
        'jax'
    """
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "config"):
        return keras.config.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    return _keras_json().get("backend", "tensorflow")


def check_backend() -> str:
    """:func:`configured_backend`, refused with one line unless it is in :data:`BACKENDS`:
    what ``config.json`` records is the backend that runs.

    Example:
        >>> os.environ["KERAS_BACKEND"] = "jax"
        >>> check_backend() if "keras" not in sys.modules else "jax"
        'jax'
    """
    name = configured_backend()
    if name not in BACKENDS:
        known = ", ".join(BACKENDS)
        raise InvalidArgumentError(
            f"unknown KERAS_BACKEND {name!r}; set it to one of {known}"
            if os.environ.get("KERAS_BACKEND") else
            f"unknown backend {name!r} in {keras_json_path()}; set KERAS_BACKEND to one of {known}"
        )
    return name


def keras_json_path() -> Path:
    """Where Keras reads its ``keras.json`` (the rule of ``keras.src.backend.config``)."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser() / "keras.json"
    home = os.path.expanduser("~")
    return Path(home if os.access(home, os.W_OK) else "/tmp", ".keras", "keras.json")


def _keras_json() -> dict:
    try:
        found = json.loads(keras_json_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):  # Keras ignores a missing or unreadable file too
        return {}
    return found if isinstance(found, dict) else {}
