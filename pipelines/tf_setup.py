"""Import TensorFlow quietly, and keep it off the GPU unless it is the Keras backend.

tf.data is the input pipeline on every backend, but only the TensorFlow backend
should let TensorFlow own the GPU: with JAX or PyTorch, TensorFlow would
otherwise reserve most of the accelerator's memory for nothing.  Every module of
:mod:`pipelines` that needs TensorFlow imports it from here, and every command
line reaches TensorFlow through :mod:`pipelines`, so this is the one place where
its start-up lines are silenced.

TensorFlow 2.21's C++ side logs a few lines while it loads, before absl's
logging is set up and so whatever ``TF_CPP_MIN_LOG_LEVEL`` says (``All log
messages before absl::InitializeLog() ...`` and, where oneDNN's optimizations
are on, ``port.cc ... oneDNN custom operations are on`` twice).  The import
runs with file descriptor 2 sent to a temporary file; the lines that
``TF_CPP_MIN_LOG_LEVEL`` would have dropped are left out and everything else is
written to stderr afterwards.  Nothing TensorFlow computes changes (oneDNN stays
as TensorFlow decides).

Example:
    >>> from pipelines.tf_setup import tf
    >>> tf.data.Dataset.range(3).cardinality().numpy()
    np.int64(3)
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from pipelines.backends import TABLE

__all__ = ["keras_backend", "tf"]

# glog's prefix, "I0000 00:00:1795972319.646892    6812 port.cc:153] ": severity I/W/E/F
# (before absl is set up, the time is seconds since the epoch, not HH:MM:SS).
_GLOG_LINE = re.compile(rb"^([IWEF])\d{4} \d+:\d+:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}


def _log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def _below_log_level(line: bytes, level: int) -> bool:
    """A C++ log line that ``TF_CPP_MIN_LOG_LEVEL`` would have dropped after start-up.

    Example:
        >>> _below_log_level(b"I0000 00:00:17.6 6812 port.cc:153] oneDNN custom ...", 2)
        True
        >>> _below_log_level(b"E0000 00:00:17.6 6812 x.cc:1] a real error", 2)
        False
    """
    if level > 0 and line.startswith(_ABSL_PREAMBLE):
        return True
    match = _GLOG_LINE.match(line)
    return match is not None and _SEVERITY[match.group(1)] < level


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


@contextlib.contextmanager
def _stderr_at_log_level() -> Iterator[None]:
    """Hold back what is written to file descriptor 2 meanwhile, then write it
    out without the lines below ``TF_CPP_MIN_LOG_LEVEL``.

    Hand-written: the lines come from C++ straight to the descriptor, before
    TensorFlow's own filter exists.  Without a descriptor 2 or a temporary
    folder it does nothing.
    """
    level = _log_level()
    with contextlib.ExitStack() as stack:
        try:
            sys.stderr.flush()
            capture = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            capture = None
        if capture is None:
            yield
            return
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().splitlines(keepends=True)
            _write_all(2, b"".join(line for line in lines if not _below_log_level(line, level)))


with _stderr_at_log_level():
    import tensorflow as tf


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
