"""Which input path a fit takes: ``"resident"`` (the training examples kept on the
device, each batch gathered there: :mod:`pipelines.resident`) or ``"stream"`` (the
``tf.data`` stream handed over per batch or block: :mod:`pipelines.feed`).

Both give the same batches in the same order, so the same numbers; ``"auto"``
takes the resident path wherever it can and the examples fit
(:func:`pipelines.resident.fits_on_device`).  It cannot:

* on TensorFlow, which reads its stream in-graph already;
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
from pipelines.backends import backend_spec

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.stream import EpochStream

__all__ = ["INPUT_PATHS", "check_requested", "resolve_input_path", "why_not_resident"]


def why_not_resident(backend: str, *, data_parallel: bool = False, stream: bool = False,
                     added: bool = False, jit: bool = True) -> str | None:
    """Why the resident path cannot run with these settings (``None``: it can):
    ``stream``, a streamed source; ``added``, a stream that adds to its stored examples
    (class or sample weights, per-batch scaling).

    Example:
        >>> why_not_resident("jax"), why_not_resident("tensorflow")
        (None, 'TensorFlow reads its stream in-graph')
    """
    if backend_spec(backend).feed != "host":
        return f"{backend_spec(backend).label} reads its stream in-graph"
    if data_parallel:
        return "data-parallel batches are padded and shared out"
    if stream:
        return "a streamed source (--stream) is never held whole"
    if added:
        return "the stream adds to its stored examples (class or sample weights)"
    if backend == "jax" and not jit:
        return "JAX gathers the batch inside its compiled step (jit_compile is off)"
    return None


def resolve_input_path(requested: str, backend: str, training: EpochStream, *,
                       data_parallel: bool = False, jit: bool = True) -> str:
    """``"resident"`` or ``"stream"``: the path a fit on ``training`` takes for the
    ``requested`` one (``"auto"``: resident where it can be and the examples fit).

    Raises:
        ConfigError: ``"resident"`` requested where it cannot run.

    Example:
        >>> import pipelines
        >>> training = pipelines.load("digits", batch_size=100, repeat=True).stream
        >>> resolve_input_path("auto", "tensorflow", training)
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
        >>> check_requested(TrainConfig(input_path="resident", class_weight="balanced"),
        ...                 ModelConfig(), "jax")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ConfigError: --input-path resident cannot run here: the stream adds to ...
    """
    if train_config.input_path == "resident":
        _refuse(why_not_resident(backend, data_parallel=train_config.data_parallel,
                                 stream=train_config.stream,
                                 added=train_config.class_weight is not None,
                                 jit=model_config.jit_compile is not False))


def _refuse(problem: str | None) -> None:
    if problem is not None:
        raise ConfigError(f"--input-path resident cannot run here: {problem}; "
                          "use --input-path auto or stream")
