"""Which input path a fit takes: ``"resident"`` (the training examples kept on the
device, each batch gathered there: :mod:`pipelines.resident`) or ``"stream"`` (the
``tf.data`` stream handed over per batch or block: :mod:`pipelines.feed`).

Both give the same batches in the same order, so the same numbers; ``"auto"``
takes the resident path wherever it can and the examples fit
(:func:`pipelines.resident.fits_on_device`).  It cannot:

* on TensorFlow without XLA (``jit_compile`` off, which Keras's ``"auto"`` resolves
  to on a CPU): its resident steps pay only as one XLA call of K steps; uncompiled,
  the stream read in-graph is faster (BENCHMARKS.md);
* on TensorFlow with a GPU: its resident examples ride in a ``tf.data`` dataset,
  which lives on the host, so every call would copy them to the GPU;
* with ``--data-parallel``, whose batches are padded and shared out;
* for a stream that is not the stored examples themselves: a streamed source
  (``--stream``), class weights, the estimator's sample weights;
* on JAX with ``jit_compile`` off (the gather runs inside the compiled step).

Example:
    >>> INPUT_PATHS
    ('auto', 'resident', 'stream')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasdnn.core.config import INPUT_PATHS, ModelConfig, TrainConfig
from kerasdnn.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.stream import EpochStream

__all__ = ["INPUT_PATHS", "check_requested", "resolve_input_path", "tensorflow_has_gpu",
           "why_not_resident", "xla_compiled"]


def why_not_resident(backend: str, *, data_parallel: bool = False, stream: bool = False,
                     added: bool = False, jit: bool = True) -> str | None:
    """Why the resident path cannot run with these settings (``None``: it can):
    ``stream``, a streamed source; ``added``, a stream that adds to its stored examples
    (class or sample weights, per-batch scaling); ``jit``, the step compiled by XLA.

    Example:
        >>> why_not_resident("jax"), why_not_resident("jax", data_parallel=True)
        (None, 'data-parallel batches are padded and shared out')
        >>> why_not_resident("tensorflow", jit=False)
        "TensorFlow's resident steps pay only under XLA (jit_compile is off; set it true)"
    """
    if backend == "tensorflow" and tensorflow_has_gpu():
        return ("TensorFlow keeps resident examples on the host (in a tf.data dataset): "
                "each call would copy them to the GPU")
    if data_parallel:
        return "data-parallel batches are padded and shared out"
    if stream:
        return "a streamed source (--stream) is never held whole"
    if added:
        return "the stream adds to its stored examples (class or sample weights)"
    if backend == "jax" and not jit:
        return "JAX gathers the batch inside its compiled step (jit_compile is off)"
    if backend == "tensorflow" and not jit:
        return "TensorFlow's resident steps pay only under XLA (jit_compile is off; set it true)"
    return None


def tensorflow_has_gpu() -> bool:
    """Whether TensorFlow sees a GPU (where its resident path would not pay).

    Example:
        >>> tensorflow_has_gpu()  # this project's test machines have none
        False
    """
    from pipelines.tf_setup import tf

    return bool(tf.config.list_logical_devices("GPU"))


def resolve_input_path(requested: str, backend: str, training: EpochStream, *,
                       data_parallel: bool = False, jit: bool = True) -> str:
    """``"resident"`` or ``"stream"``: the path a fit on ``training`` takes for the
    ``requested`` one (``"auto"``: resident where it can be and the examples fit).

    Raises:
        ConfigError: ``"resident"`` requested where it cannot run.

    Example:
        >>> import pipelines
        >>> training = pipelines.load("digits", batch_size=100, repeat=True).stream
        >>> resolve_input_path("auto", "tensorflow", training, jit=False)
        'stream'
        >>> resolve_input_path("stream", "jax", training)
        'stream'
    """
    from pipelines.resident import fits_on_device, keeps_examples

    if requested not in INPUT_PATHS:
        raise ConfigError(f"input_path must be one of {', '.join(INPUT_PATHS)}, "
                          f"got {requested!r}")
    if requested == "stream":
        return "stream"
    problem = why_not_resident(backend, data_parallel=data_parallel,
                               stream=training.python_reader, jit=jit,
                               added=not keeps_examples(training))
    if requested == "resident":
        _refuse(problem)
        return "resident"
    return "resident" if problem is None and fits_on_device(training, backend) else "stream"


def check_requested(train_config: TrainConfig, model_config: ModelConfig, backend: str) -> None:
    """Refuse a requested ``input_path="resident"`` that the run's settings rule out,
    before anything is written (what the data rules out is found when it is loaded).

    Example:
        >>> check_requested(TrainConfig(input_path="resident"), ModelConfig(), "jax")
        >>> check_requested(TrainConfig(input_path="resident"), ModelConfig(jit_compile=True),
        ...                 "tensorflow")
        >>> check_requested(TrainConfig(input_path="resident", class_weight="balanced"),
        ...                 ModelConfig(), "jax")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ConfigError: --input-path resident cannot run here: the stream adds to ...
    """
    if train_config.input_path == "resident":
        _refuse(why_not_resident(backend, data_parallel=train_config.data_parallel,
                                 stream=train_config.stream,
                                 added=train_config.class_weight is not None,
                                 jit=xla_compiled(model_config, backend)))


def xla_compiled(model_config: ModelConfig, backend: str) -> bool:
    """Whether ``backend`` compiles the step of a model built from ``model_config`` with
    XLA: ``jit_compile=True``, or ``"auto"`` on JAX (Keras's ``"auto"`` leaves XLA off
    on TensorFlow without a GPU, where its resident path is refused anyway).

    Example:
        >>> xla_compiled(ModelConfig(), "jax"), xla_compiled(ModelConfig(), "tensorflow")
        (True, False)
    """
    if model_config.jit_compile == "auto":
        return backend == "jax"
    return bool(model_config.jit_compile)


def _refuse(problem: str | None) -> None:
    if problem is not None:
        raise ConfigError(f"--input-path resident cannot run here: {problem}; "
                          "use --input-path auto or stream")
