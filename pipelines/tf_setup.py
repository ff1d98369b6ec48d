"""Import TensorFlow quietly, and keep it off the GPU unless it is the Keras backend.

tf.data is the input pipeline on every backend, but only the TensorFlow backend
should let TensorFlow own the GPU: with JAX or PyTorch, TensorFlow would
otherwise reserve most of the accelerator's memory for nothing.  Every module of
:mod:`pipelines` that needs TensorFlow imports it from here.

TensorFlow's start-up lines are held back and filtered by
:mod:`pipelines.tf_import_log`, which ``pipelines`` installs for the first
``import tensorflow`` of the process, wherever it comes from.

Example:
    >>> from pipelines.tf_setup import tf
    >>> tf.data.Dataset.range(3).cardinality().numpy()
    np.int64(3)
"""

from __future__ import annotations

import contextlib

from pipelines import tf_import_log
from pipelines.backends import TABLE

__all__ = ["keras_backend", "tf"]

tf_import_log.install()  # done by pipelines/__init__.py already; here for clarity
import tensorflow as tf  # noqa: E402


def keras_backend() -> str:
    """The Keras backend in use (``KERAS_BACKEND`` or Keras's own config).

    Example:
        >>> keras_backend() in ("tensorflow", "jax", "torch", "numpy", "openvino")
        True
    """
    import keras  # lazily: pipelines does not need keras for anything else

    return keras.backend.backend()


def _hide_gpus_from_tensorflow() -> None:
    """With a JAX or PyTorch backend, TensorFlow must not claim any GPU."""
    spec = TABLE.get(keras_backend())
    if spec is not None and spec.tensorflow_gpu:
        return
    # RuntimeError: the devices were initialised before pipelines was imported;
    # TensorFlow already holds them and nothing can be changed any more.
    with contextlib.suppress(RuntimeError):
        tf.config.set_visible_devices([], "GPU")


_hide_gpus_from_tensorflow()
