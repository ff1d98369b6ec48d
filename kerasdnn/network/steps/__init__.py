"""One custom training step per Keras backend.

``kerasdnn/network/steps/tensorflow.py``, ``jax.py`` and ``torch.py`` each define a
mixin (:class:`~kerasdnn.network.steps.tensorflow.TensorFlowStep`,
:class:`~kerasdnn.network.steps.jax.JAXStep`, :class:`~kerasdnn.network.steps.torch.TorchStep`)
with the same two methods, ``train_step`` and ``test_step``, laid out like
Keras's own ``keras/src/backend/<backend>/trainer.py``.  :func:`step_class`
picks the one of the active backend; :class:`kerasdnn.network.models.DNN` inherits it.

Each ``train_step`` does exactly what Keras's stock step does (``compute_loss``
with ``training=True``, regularization losses, ``optimizer.scale_loss`` and the
``LossScaleOptimizer`` kept), plus:

* ``grad_norm``: the global norm of the *unscaled* gradients, before clipping,
  computed once per step and logged as the running mean over the epoch (a
  ``keras.metrics.Mean`` named ``grad_norm``; one batch's value after
  ``train_on_batch``);
* global-norm clipping when the model's ``clipnorm`` is set (the same formula
  as Keras's ``global_clipnorm``, applied with the norm already computed);
* a non-finite guard: when the loss or the gradient norm is NaN/Inf, no weight
  (trainable or not: batch-norm statistics are put back), no optimizer
  variable (``iterations`` and slots included) and no metric changes, and the
  model's ``skipped_steps_tracker`` (a :class:`~kerasdnn.network.step_metrics.SkippedSteps`
  metric that is never reset, logged as ``skipped_steps``: the running total)
  goes up by one.  With mixed precision, a finite loss whose scaled gradients
  overflow also makes the ``LossScaleOptimizer`` halve its loss scale (its
  stock behaviour; its inner optimizer and the weights do not change); such a
  step is counted as skipped too.

The backend-neutral pieces live here, in ``keras.ops``: the global norm, and
:func:`guard_gradients` (the norm unscaled, the finite test, the clipping) that
every step runs on its gradients (the eager PyTorch step takes its global norm
from PyTorch's fused ``get_total_norm``, as it pays per op).  The backend table
:mod:`pipelines.backends` names each backend's step class; one backend file never
imports another.

Example:
    >>> from kerasdnn.network.steps import step_class
    >>> step_class().__name__ in ("TensorFlowStep", "JAXStep", "TorchStep")
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from pipelines.backends import BACKENDS, backend_spec

__all__ = [
    "GRAD_NORM",
    "SKIPPED_STEPS",
    "batch_rows",
    "clip_factor",
    "distributed",
    "first_batch",
    "global_norm",
    "guard_gradients",
    "handles_overflow",
    "is_finite",
    "loss_scale",
    "lower_loss_scale",
    "metric_weights",
    "padded_rows",
    "step_class",
    "update_metrics",
    "validation_logs",
]

GRAD_NORM = "grad_norm"
SKIPPED_STEPS = "skipped_steps"


def step_class(backend: str | None = None) -> type:
    """The step mixin of ``backend`` (default: the active Keras backend).

    Example:
        >>> step_class().__name__ in ("TensorFlowStep", "JAXStep", "TorchStep")
        True
    """
    backend = backend or keras.backend.backend()
    if backend not in BACKENDS:
        raise ValueError(
            f"kerasdnn has no training step for the Keras backend {backend!r}; "
            f"use one of {', '.join(BACKENDS)} (KERAS_BACKEND)"
        )
    module, name = backend_spec(backend).step.split(":")
    return getattr(importlib.import_module(module), name)


def global_norm(grads: Sequence[Any]) -> Any:
    """sqrt of the sum of squares of all gradients (``None`` entries ignored), float32.

    Example:
        >>> float(global_norm([ops.ones((3,)), None, ops.ones((1,))]))
        2.0
    """
    squares = [ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads if g is not None]
    return ops.sqrt(ops.sum(ops.stack(squares)))


def guard_gradients(gradients: list[Any], loss: Any, norm: Any, scale: Any,
                    clipnorm: float | None) -> tuple[list[Any], Any, Any]:
    """``(gradients, norm, finite)`` of a step: ``norm`` (the global norm of the
    gradients of the loss times ``scale``, see :func:`loss_scale`) unscaled, whether
    the loss and it are finite (:func:`is_finite`), and the gradients clipped to
    global norm ``clipnorm`` (unchanged when it is ``None``).

    Example:
        >>> grads, norm, finite = guard_gradients(
        ...     [ops.ones((4,))], ops.convert_to_tensor(1.0), ops.convert_to_tensor(4.0),
        ...     ops.convert_to_tensor(2.0), clipnorm=1.0)
        >>> [float(g) for g in grads[0]], float(norm), bool(finite)
        ([0.5, 0.5, 0.5, 0.5], 2.0, True)
    """
    if scale is not None:
        norm = norm / scale
    finite = is_finite(loss, norm)
    if clipnorm:
        factor = clip_factor(norm, clipnorm)
        gradients = [g * ops.cast(factor, g.dtype) for g in gradients]
    return gradients, norm, finite


def batch_rows(y_pred: Any, sample_weight: Any, whole: Any = None) -> Any:
    """The real rows a (replica's share of a) batch's mean loss stands for in the
    epoch's mean loss.  A data-parallel batch padded from R to P rows weighs its R
    real rows ``P / R`` and its filler rows 0 (:mod:`kerasdnn.training.distribute`), so a share
    of n rows stands for ``n * R / P`` of them (R when the step sees the whole batch),
    in proportion to its share of the loss; all rows when the batch has no weights
    or no distribution is in force (user sample weights count as stock Keras counts
    them).  ``whole`` is the whole batch's :func:`padded_rows` when ``y_pred`` is one
    replica's share of it (TensorFlow's replica context): a share may hold filler
    rows only, and shows neither R nor P (default: ``sample_weight``'s own).

    Example:
        >>> int(batch_rows(ops.ones((4, 3)), ops.convert_to_tensor([4 / 3] * 3 + [0.0])))
        4
    """
    rows = ops.shape(y_pred)[0]
    if sample_weight is None or not distributed():
        return rows  # as stock Keras counts a batch: its size, whatever the weights
    counts = padded_rows(sample_weight) if whole is None else whole
    return ops.cast(rows, "float32") * counts[0] / counts[1]


def padded_rows(sample_weight: Any) -> Any:
    """``[real rows, rows]`` of a data-parallel padded batch (or a share of it), float32:
    the rows of weight other than 0, and all rows.

    Example:
        >>> [float(n) for n in padded_rows(ops.convert_to_tensor([4 / 3] * 3 + [0.0]))]
        [3.0, 4.0]
    """
    real = ops.sum(ops.cast(ops.not_equal(sample_weight, 0), "float32"))
    return ops.stack([real, ops.cast(ops.shape(sample_weight)[0], "float32")])


def metric_weights(sample_weight: Any) -> Any:
    """The sample weights the training metrics get: 1 for each weighted row, 0 for a
    data-parallel batch's filler rows, so that a padded batch's real rows count once
    each, as without padding (the loss keeps the weights that make it their mean);
    ``None`` (unweighted, as before) when no distribution is in force.

    Example:
        >>> metric_weights(ops.convert_to_tensor([1.5, 0.0])) is None  # no distribution
        True
    """
    if sample_weight is None or not distributed():
        return None  # as stock Keras's ``metrics=`` see them: unweighted
    return ops.cast(ops.not_equal(sample_weight, 0), "float32")


def distributed() -> bool:
    """Whether batches may be data-parallel padded: a ``keras.distribution`` (JAX), a
    ``tf.distribute`` strategy (TensorFlow) or a ``torch.distributed`` scope of
    several processes (PyTorch) is in force; decided at trace time.

    Example:
        >>> distributed()
        False
    """
    if keras.distribution.distribution() is not None:
        return True
    if backend_spec(keras.backend.backend()).data_parallel == "tf.distribute.MirroredStrategy":
        import tensorflow as tf

        return tf.distribute.has_strategy()
    if backend_spec(keras.backend.backend()).data_parallel == "torch.distributed":
        from kerasdnn.network.steps import torch_parallel

        return torch_parallel.processes() > 1
    return False


def first_batch(iterator: Any = None, data_batch: Any = None) -> Any:
    """The batch Keras's symbolic build reads (``_symbolic_build``): ``data_batch``, or
    the first one ``iterator`` (Keras's epoch iterator) hands out, drawn as Keras 3.15
    draws it; a :class:`pipelines.resident.Rows` becomes the ``(x, y)`` batch it stands
    for, as ``KerasTensor``s (Keras would read it as ``(x, y, sample_weight)``).

    Example:
        >>> import numpy as np
        >>> from pipelines.resident import Rows
        >>> x, y = first_batch(data_batch=Rows(np.zeros((9, 4)), np.zeros(9), np.arange(3)))
        >>> x.shape, y.shape
        ((3, 4), (3,))
    """
    from pipelines.resident import Rows

    if data_batch is None and iterator is not None:
        for _, _, data in iterator:
            data_batch = data[0] if isinstance(data, (list, tuple)) else next(data)
            break
    if not isinstance(data_batch, Rows):
        return data_batch
    rows = int(data_batch.index.shape[0])
    return tuple(keras.KerasTensor((rows, *array.shape[1:]),
                                   keras.backend.standardize_dtype(array.dtype))
                 for array in (data_batch.features, data_batch.labels))


def update_metrics(model: Any, loss: Any, norm: Any, x: Any, y: Any, y_pred: Any,
                   sample_weight: Any, whole: Any = None, rows: Any = None) -> dict[str, Any]:
    """A kept step's (or, ``norm`` ``None``, a validation batch's) metric updates:
    the loss counted for the batch's real rows (:func:`batch_rows`, ``whole`` as
    there; ``rows`` when the step knows them: the PyTorch data-parallel step's
    loss is all processes'), the gradient norm, and the compiled metrics with
    :func:`metric_weights` (stateful: the JAX step maps the metrics' variables with
    a ``StatelessScope``); the model's metric results after them.

    Example:
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile(loss="mse")
        >>> logs = update_metrics(model, ops.convert_to_tensor(3.0), None, None, None,
        ...                       ops.ones((4, 1)), None)
        >>> float(logs["loss"])
        3.0
    """
    if rows is None:
        rows = batch_rows(y_pred, sample_weight, whole)
    model._loss_tracker.update_state(loss, sample_weight=rows)
    if norm is not None:
        model.grad_norm_tracker.update_state(norm)
    return model.compute_metrics(x, y, y_pred, sample_weight=metric_weights(sample_weight))


def validation_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """A test step's logs without the training-only ``grad_norm`` and ``skipped_steps``.

    Example:
        >>> validation_logs({"loss": 1.0, GRAD_NORM: 2.0, SKIPPED_STEPS: 0})
        {'loss': 1.0}
    """
    return {key: value for key, value in logs.items() if key not in (GRAD_NORM, SKIPPED_STEPS)}


def loss_scale(optimizer: Any) -> Any:
    """The factor ``optimizer.scale_loss`` multiplies the loss by (``None``: no scaling).

    Call it where the optimizer's variables have their current values (inside
    the JAX step's ``StatelessScope``).

    Example:
        >>> loss_scale(keras.optimizers.SGD()) is None
        True
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(ops.ones((), "float32"))
    if getattr(optimizer, "loss_scale_factor", None) is not None:
        return ops.convert_to_tensor(optimizer.loss_scale_factor, "float32")
    return None


def clip_factor(norm: Any, clipnorm: float) -> Any:
    """``min(1, clipnorm / norm)``, written as Keras's ``clip_by_global_norm`` writes it.

    Example:
        >>> float(clip_factor(ops.convert_to_tensor(4.0), 1.0))
        0.25
    """
    return clipnorm * ops.minimum(1.0 / norm, 1.0 / clipnorm)


def is_finite(loss: Any, norm: Any) -> Any:
    """True when the loss and every gradient are finite (a boolean scalar tensor).

    A NaN/Inf in any gradient makes the norm NaN/Inf, so the norm already
    computed for ``grad_norm`` is the test; a norm that overflows float32
    (gradients beyond ~1e19) counts as non-finite too.

    Example:
        >>> bool(is_finite(ops.convert_to_tensor(1.0), ops.convert_to_tensor(float("nan"))))
        False
    """
    return ops.logical_and(ops.isfinite(ops.cast(loss, "float32")), ops.isfinite(norm))


def handles_overflow(optimizer: Any) -> bool:
    """Whether ``optimizer`` deals with non-finite gradients itself (a LossScaleOptimizer).

    Example:
        >>> handles_overflow(keras.optimizers.SGD())
        False
    """
    return isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def lower_loss_scale(optimizer: Any) -> None:
    """What a ``LossScaleOptimizer`` does on overflowing gradients: halve the
    loss scale and restart its growth count (stateful; the JAX step maps the
    optimizer's variables with a ``StatelessScope``).

    Example:
        >>> optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())
        >>> optimizer.build([keras.Variable(1.0)])
        >>> lower_loss_scale(optimizer)
        >>> float(optimizer.dynamic_scale)
        16384.0
    """
    optimizer.step_counter.assign(0)
    optimizer.dynamic_scale.assign(ops.multiply(optimizer.dynamic_scale, 0.5))
