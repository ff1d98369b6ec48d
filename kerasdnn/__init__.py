"""kerasdnn: dense classifiers trained identically on the TensorFlow, JAX and
PyTorch backends of Keras 3.

The public names are imported lazily, so that ``python -m kerasdnn.train --help``
and ``import kerasdnn`` stay fast and do not start a backend before it is needed.

``kerasdnn.train``, ``kerasdnn.evaluate``, ``kerasdnn.compare`` and
``kerasdnn.export`` are the library functions (:func:`kerasdnn.training.run.train`,
:func:`kerasdnn.evaluation.saved_run.evaluate`, :func:`kerasdnn.training.crossbackend.compare`,
:func:`kerasdnn.serving.artifact.export`).  The commands of the same names
(``python -m kerasdnn.train``, ...) are modules reached by their import path only
(``from kerasdnn.train import main``).

Example:
    >>> import kerasdnn
    >>> model = kerasdnn.build_model(hidden_units=(64,), input_shape=(64,))
    >>> model.count_params()  # 64*64 + 64 + 64*10 + 10
    4810
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

import pipelines  # noqa: F401  (TensorFlow's log level, and a quiet first TF import, whoever imports it)

__version__ = "0.1.0"

_EXPORTS = {
    "ModelConfig": "kerasdnn.core.config",
    "TrainConfig": "kerasdnn.core.config",
    "KerasDNNError": "kerasdnn.core.errors",
    "ConfigError": "kerasdnn.core.errors",
    "DNN": "kerasdnn.network.models",
    "DNNClassifier": "kerasdnn.training.estimator",
    "build_model": "kerasdnn.network.models",
    "classification_report": "kerasdnn.evaluation.reports",
    "predict_proba": "kerasdnn.evaluation.predict",
}

# The library function behind each command's name.
_RUNS = {
    "compare": "kerasdnn.training.crossbackend",
    "evaluate": "kerasdnn.evaluation.saved_run",
    "export": "kerasdnn.serving.artifact",
    "train": "kerasdnn.training.run",
}

__all__ = sorted([*_EXPORTS, *_RUNS])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kerasdnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _run_function(name: str, module: str) -> property:
    """``kerasdnn.<name>``: always the function ``<module>.<name>``.  Importing the
    command module of the same name (``from kerasdnn.train import main``) makes Python
    bind that module here; the binding is ignored, so the name stays the function."""

    def get(package: types.ModuleType) -> Callable[..., Any]:
        return getattr(importlib.import_module(module), name)

    def set_(package: types.ModuleType, value: Any) -> None:
        if getattr(value, "__name__", None) != f"kerasdnn.{name}":
            raise AttributeError(f"kerasdnn.{name} is the function {module}.{name}")

    return property(get, set_, doc=f"{module}.{name}")


class _Package(types.ModuleType):
    """The type of the ``kerasdnn`` package: a module whose run functions are properties
    (a module has no other way to keep a name that a submodule import rebinds)."""


for _name, _module in _RUNS.items():
    setattr(_Package, _name, _run_function(_name, _module))
del _name, _module
sys.modules[__name__].__class__ = _Package
