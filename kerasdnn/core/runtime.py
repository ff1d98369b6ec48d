"""What the library needs of the running process: the Keras backend it runs on
(:func:`check_backend`: checked; :func:`configured_backend`: as Keras decides it)
and quiet absl logs.

Nothing here imports Keras: the backend is read as Keras reads it
(:mod:`pipelines.backends`).

Example:
    >>> import os, sys
    >>> os.environ["KERAS_BACKEND"] = "jax"
    >>> check_backend() if "keras" not in sys.modules else "jax"
    'jax'
"""

from __future__ import annotations

from pipelines.backends import check_backend, configured_backend

__all__ = ["check_backend", "configured_backend", "quiet_tensorflow"]


def quiet_tensorflow() -> None:
    """Silence the absl (Python) log lines of TensorFlow, TFDS and KerasTuner.

    TensorFlow's C++ log level and its start-up lines are handled where it is
    imported (:mod:`pipelines.tf_setup`).
    """
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        pass
