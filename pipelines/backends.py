"""The one table of Keras backends: what each one takes from the rest of the project.

Every module that treats backends differently reads this table, so a fourth
backend is one row here, its step file (``kerasdnn/network/steps/<name>.py``), its extra
in ``setup.cfg`` and its env in ``tox.ini``.  It lives in :mod:`pipelines`, the
bottom package, because both ``pipelines`` and ``kerasdnn`` read it (``pipelines``
may not import ``kerasdnn``).  It imports nothing heavy.

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
from importlib.machinery import PathFinder
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
    "installed",
    "keras_json_path",
    "step_files",
    "with_feature",
]


@dataclass(frozen=True)
class BackendSpec:
    """One backend's row.

    Attributes:
        name: the ``KERAS_BACKEND`` value.
        step: ``"module:Class"`` of its custom-step mixin (:mod:`kerasdnn.network.steps`).
        steps_per_execution: whether stock Keras runs several steps per call
            (Keras 3.15: not on PyTorch, where kerasdnn's own step does).
        feed: how :func:`pipelines.feed.for_fit` hands an endless stream to
            ``fit``: ``"dataset"`` (the ``tf.data`` dataset itself, read
            in-graph) or ``"host"`` (a Python iterator of NumPy blocks).
        device_prefetch: how batches reach an accelerator ahead of the step
            (:func:`pipelines.device.prefetch_to_device`): ``"tf"``
            (``prefetch_to_device``), ``"keras"`` (Keras's trainer already
            does it) or ``"torch_loader"`` (a side-stream copy loader).
        data_parallel: the data-parallel engine (``kerasdnn.training.distribute``), or
            ``None`` where there is none.
        module: the framework's own import name (for versions and memory).
        label: the framework's name in messages.
        multi_process: whether a run can span processes (``--coordinator``; its
            engine's ``initialize``, :func:`kerasdnn.training.distribute.initialize_processes`).
        tensorflow_gpu: whether TensorFlow may claim the GPU (it is the backend's
            own engine); elsewhere the input pipeline's TensorFlow is kept off it.
        exports: whether Keras's ``model.export`` writes every serving format
            (SavedModel and ONNX) here: ``python -m kerasdnn.export`` runs on it.
        jit: ``"module:function"`` that compiles a function as Keras's
            ``jit_compile="auto"`` does, for the benchmarks; ``None``: the step is
            eager, so its batches may change structure (data-parallel padding
            weights only the padded ones there).
        keras_iterator: the method of Keras's data adapter that ``fit`` iterates.
    """

    name: str
    step: str
    steps_per_execution: bool
    feed: Literal["dataset", "host"]
    device_prefetch: Literal["tf", "keras", "torch_loader"]
    data_parallel: str | None
    module: str
    label: str
    multi_process: bool
    tensorflow_gpu: bool
    exports: bool
    jit: str | None
    keras_iterator: str


TABLE: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("tensorflow", "kerasdnn.network.steps.tensorflow:TensorFlowStep", True,
                    "dataset", "tf", "tf.distribute.MirroredStrategy", "tensorflow",
                    label="TensorFlow",
                    multi_process=False, tensorflow_gpu=True, exports=True,
                    jit="tensorflow:function", keras_iterator="get_tf_dataset"),
        BackendSpec("jax", "kerasdnn.network.steps.jax:JAXStep", True, "host", "keras",
                    "keras.distribution.DataParallel", "jax", label="JAX",
                    multi_process=True, tensorflow_gpu=False, exports=False,
                    jit="jax:jit", keras_iterator="get_jax_iterator"),
        BackendSpec("torch", "kerasdnn.network.steps.torch:TorchStep", False, "host",
                    "torch_loader", "torch.distributed", "torch", label="PyTorch",
                    multi_process=True,
                    tensorflow_gpu=False,
                    exports=False, jit=None, keras_iterator="get_torch_dataloader"),
    )
}
BACKENDS: tuple[str, ...] = tuple(TABLE)


def backend_spec(name: str) -> BackendSpec:
    """The row of backend ``name``; ``KeyError`` names the known ones.

    Example:
        >>> backend_spec("jax").step
        'kerasdnn.network.steps.jax:JAXStep'
    """
    try:
        return TABLE[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None


def with_feature(field: str) -> tuple[str, ...]:
    """The backends whose row has a true (non-``None``) ``field``, in table order.

    Example:
        >>> with_feature("multi_process"), with_feature("data_parallel")
        (('jax', 'torch'), ('tensorflow', 'jax', 'torch'))
    """
    return tuple(name for name, spec in TABLE.items() if getattr(spec, field))


def step_files(name: str) -> str:
    """The glob of backend ``name``'s step files (its step module and the modules
    beside it that share its name, such as ``torch_native.py``): they import the
    framework.

    Example:
        >>> step_files("torch")
        'kerasdnn/network/steps/torch*.py'
    """
    return backend_spec(name).step.split(":")[0].replace(".", "/") + "*.py"


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
    """:func:`configured_backend`, refused with one line unless it is in :data:`BACKENDS`
    and its framework is installed (else importing Keras fails with a traceback):
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
    spec = backend_spec(name)
    if "keras" not in sys.modules and not installed(name):
        where = "KERAS_BACKEND is" if os.environ.get("KERAS_BACKEND") else (
            f"the backend in {keras_json_path()} is")
        raise InvalidArgumentError(
            f"{where} {name}, but {spec.label} is not installed; install it "
            f"(pip install -e \".[{name}]\") or set KERAS_BACKEND to an installed backend")
    return name


def installed(name: str) -> bool:
    """Whether backend ``name``'s framework can be imported here (nothing is imported).

    Example:
        >>> installed("tensorflow") == (PathFinder.find_spec("tensorflow") is not None)
        True
    """
    # On sys.path, past the meta-path finders: the one of pipelines.tf_import_log
    # quiets the first import of TensorFlow, and a look-up must not use it up.
    return PathFinder.find_spec(backend_spec(name).module) is not None


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
