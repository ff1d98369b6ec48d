"""pipelines: named data sources → tf.data input pipelines for dense classifiers.

``load`` returns the train / validation / test ``tf.data.Dataset``s of a source
and a :class:`DatasetInfo`; ``python -m pipelines --list`` lists the sources.
Importing this package is cheap (``kerasdnn``'s ``--help`` imports its errors):
NumPy and TensorFlow are imported on first use of
``load`` (quietly, and kept off the GPU unless Keras runs on TensorFlow).

Example:
    >>> import pipelines
    >>> train, validation, test, info = pipelines.load("digits", batch_size=100)
    >>> info.source, info.input_shape, info.num_classes
    ('digits', (64,), 10)

A table (``csv:PATH``, ``parquet:PATH`` or a pandas DataFrame) needs its label
column: ``pipelines.load("csv:data.csv", target="label")`` (:mod:`pipelines.tables`).
"""

from __future__ import annotations

import os

# The one place that sets TensorFlow's C++ log level (kerasdnn and tuning import this
# package first): before any TensorFlow import, which pipelines.tf_import_log makes
# quiet whoever imports it (pipelines, Keras, KerasTuner or the user's code).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipelines import tf_import_log
from pipelines.errors import PipelineError

tf_import_log.install()

__all__ = ["DatasetInfo", "PipelineError", "Splits", "describe", "load", "prefetch_to_device"]


def __getattr__(name: str):  # PEP 562: heavy parts (NumPy, TensorFlow) load on first use
    if name in ("DatasetInfo", "Splits"):
        from pipelines import info

        return getattr(info, name)
    if name == "load":  # tables (csv:, parquet:, a DataFrame) or any other source
        from pipelines.tables.load import load

        return load
    if name == "describe":
        from pipelines.sources import describe

        return describe
    if name == "prefetch_to_device":
        from pipelines.device import prefetch_to_device

        return prefetch_to_device
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
