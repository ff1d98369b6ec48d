"""kerasdnn: dense classifiers trained identically on the TensorFlow, JAX and
PyTorch backends of Keras 3.

The public names are imported lazily, so that ``python -m kerasdnn.train --help``
and ``import kerasdnn`` stay fast and do not start a backend before it is needed.

Example:
    >>> import kerasdnn
    >>> model = kerasdnn.build_model(hidden_units=(64,), input_shape=(64,))
    >>> model.count_params()  # 64*64 + 64 + 64*10 + 10
    4810
"""

from __future__ import annotations

import importlib
from typing import Any

import pipelines  # noqa: F401  (TensorFlow's log level, and a quiet first TF import, whoever imports it)

__version__ = "0.1.0"

_EXPORTS = {
    "ModelConfig": "kerasdnn.config",
    "TrainConfig": "kerasdnn.config",
    "KerasDNNError": "kerasdnn.errors",
    "ConfigError": "kerasdnn.errors",
    "DNN": "kerasdnn.models",
    "DNNClassifier": "kerasdnn.estimator",
    "build_model": "kerasdnn.models",
    "classification_report": "kerasdnn.reports",
    "predict_proba": "kerasdnn.predict",
}

__all__ = [*sorted(_EXPORTS), "compare", "evaluate", "export", "train"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in ("train", "evaluate", "compare", "export"):
        # Callable modules: kerasdnn.train(...) runs a training, kerasdnn.evaluate(...) a
        # report, kerasdnn.compare(...) a training on each backend, kerasdnn.export(...) a
        # serving artifact.
        return importlib.import_module(f"kerasdnn.{name}")
    raise AttributeError(f"module 'kerasdnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
