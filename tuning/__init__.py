"""tuning: KerasTuner search over the kerasdnn model factory.

``python -m tuning.search`` is the command line over :func:`tuning.run.search`;
:class:`DNNHyperModel` is the KerasTuner hypermodel it uses (trials train on the
data path of ``kerasdnn.train``), :mod:`tuning.space` the search space,
:mod:`tuning.chief` and :mod:`tuning.workers` KerasTuner's distributed mode.
Names are imported lazily so that ``--help`` does not start a backend.

Example:
    >>> import tuning
    >>> tuning.DEFAULT_SPACE.names[:2]
    ['num_layers', 'units']
"""

from __future__ import annotations

import importlib
from typing import Any

import pipelines  # noqa: F401  (sets TensorFlow's log level before any TF import)

_EXPORTS = {
    "DNNHyperModel": "tuning.hypermodel",
    "make_tuner": "tuning.hypermodel",
    "DEFAULT_SPACE": "tuning.space",
    "Space": "tuning.space",
    "load_space": "tuning.space",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tuning' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
