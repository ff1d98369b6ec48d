"""The PyTorch-native forward pass and loss of :class:`~kerasdnn.steps.torch.TorchStep`.

Keras's layers pay Python per op on the eager PyTorch backend (``Layer.__call__``,
argument conversion, dtype checks, tree walks): for the seed network, forward +
loss + backward through them takes ~1.7x what ``nn.Linear`` takes.  For the models
:func:`kerasdnn.build_model` makes (an ``InputLayer``, then a chain of ``Flatten``,
``Dense`` with a known activation, ``BatchNormalization`` and ``Dropout``; L2 kernel
penalties; sparse categorical or binary cross-entropy from logits), :func:`plan_for`
writes the same computation with ``torch`` functions directly on the torch tensors
behind the Keras variables, so the weights, the optimizer, the metrics, saving and
every other backend stay Keras's.  What the plan copies from Keras, op for op:

* each layer casts floating inputs to its compute dtype, and reads its (float32)
  variables cast to it (mixed precision: float16 hidden layers, float32 logits;
  a float16 matmul on the CPU runs in float32, as Keras's ``ops.matmul`` does);
* ``Dropout`` calls ``keras.random.dropout`` with the layer's own seed generator,
  so the masks are those of the Keras path, draw for draw;
* ``BatchNormalization`` normalizes in float32 with the batch's biased variance and
  *returns* its moving-statistics update, which the step applies only when the
  step is kept (the non-finite guard then has nothing to put back);
* the loss is the compiled loss (mean over the batch) plus ``l2 * sum(kernel**2)``
  for every regularized kernel, in float32.

:func:`metrics_for` does the same for the step's metrics when they are the ones
``build_model`` compiles (the loss and grad-norm means, accuracy): it adds to the
metrics' own ``total``/``count`` variables what their ``update_state`` would add
(exact: sums of 0/1 matches and counts), without Keras's per-op Python.

Any other model, layer option, loss or input (sample weights, several inputs)
gets ``None`` from :func:`plan_for` / ``False`` from :meth:`NativePlan.accepts`,
and the step takes the Keras path.

Example:
    >>> import kerasdnn
    >>> plan_for(kerasdnn.build_model(input_shape=(64,), hidden_units=(32,))) is not None
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import torch
import torch.nn.functional as F

__all__ = ["NativeMetrics", "NativePlan", "metrics_for", "plan_for"]

# Keras activation -> the same function in torch (Keras's default arguments).
_ACTIVATIONS: dict[Callable[..., Any], Callable[[torch.Tensor], torch.Tensor]] = {
    keras.activations.relu: torch.relu,
    keras.activations.gelu: F.gelu,  # approximate=False in both
    keras.activations.elu: F.elu,  # alpha 1.0 in both
    keras.activations.selu: F.selu,
    keras.activations.tanh: torch.tanh,
    keras.activations.sigmoid: torch.sigmoid,
    keras.activations.swish: F.silu,
    keras.activations.leaky_relu: lambda x: F.leaky_relu(x, 0.2),  # Keras's slope, not torch's
    keras.activations.linear: lambda x: x,
}

_HALF = (torch.float16, torch.bfloat16)

# A stage maps the activations to the next ones; BatchNormalization stages also
# append their moving-statistics update to the list they are given.
Stage = Callable[[torch.Tensor, list], torch.Tensor]


@dataclass(frozen=True)
class NativePlan:
    """The model's training forward pass and loss, written in torch.

    Attributes:
        input_dtype: the dtype the model's input layer converts inputs to.
        stages: one callable per layer after the input, in order.
        loss_kind: ``"sparse"`` (sparse categorical cross-entropy from logits) or
            ``"binary"`` (binary cross-entropy from logits).
        penalties: ``(kernel variable, l2)`` of every L2-regularized kernel.
    """

    input_dtype: torch.dtype
    stages: tuple[Stage, ...]
    loss_kind: str
    penalties: tuple[tuple[Any, float], ...]

    @staticmethod
    def accepts(x: Any, y: Any, sample_weight: Any) -> bool:
        """Whether a batch fits the plan: one input tensor, one label tensor of shape
        ``(batch,)`` or ``(batch, 1)``, no sample weights."""
        if sample_weight is not None or not (hasattr(x, "shape") and hasattr(y, "shape")):
            return False
        return len(y.shape) == 1 or (len(y.shape) == 2 and y.shape[-1] == 1)

    def forward(self, x: Any) -> tuple[torch.Tensor, list]:
        """``(logits, moving-statistics updates)`` of a training-mode forward pass."""
        x = keras.ops.convert_to_tensor(x)
        if x.dtype != self.input_dtype:
            x = x.to(self.input_dtype)
        updates: list = []
        for stage in self.stages:
            x = stage(x, updates)
        return x, updates

    def loss(self, y: Any, logits: torch.Tensor) -> torch.Tensor:
        """The compiled loss (mean over the batch) plus the L2 penalties, float32."""
        y = keras.ops.convert_to_tensor(y)
        logits = logits.float()
        if self.loss_kind == "sparse":
            values = F.cross_entropy(logits, y.reshape(-1).long(), reduction="none")
        else:
            values = F.binary_cross_entropy_with_logits(
                logits, y.to(logits.dtype).reshape(logits.shape), reduction="none").mean(dim=-1)
        # sum / count, not F's "mean": the same float32 rounding as Keras's reduction.
        losses = [torch.sum(values) / torch.tensor(values.numel(), dtype=values.dtype)]
        for kernel, l2 in self.penalties:
            value = kernel.value
            losses.append(torch.tensor(l2, dtype=value.dtype) * torch.sum(torch.square(value)))
        return losses[0] if len(losses) == 1 else torch.sum(torch.stack(losses))

    @staticmethod
    def apply_updates(updates: Sequence[tuple[Any, torch.Tensor]]) -> None:
        """Assign the batch-norm moving statistics computed by :meth:`forward`."""
        for variable, value in updates:
            variable.assign(value)


@dataclass(frozen=True)
class NativeMetrics:
    """In-place updates of the step's ``Mean`` metrics, the same numbers as their
    ``update_state``.

    Attributes:
        loss: the model's loss tracker (``keras.metrics.Mean``).
        grad_norm: its grad-norm tracker (``keras.metrics.Mean``).
        accuracy: the compiled ``SparseCategoricalAccuracy`` or ``BinaryAccuracy``
            (threshold 0 on logits), or ``None`` when no metric was compiled.
        binary: whether ``accuracy`` is the binary one.
    """

    loss: Any
    grad_norm: Any
    accuracy: Any | None
    binary: bool

    def update(self, loss: torch.Tensor, norm: torch.Tensor, y: Any,
               logits: torch.Tensor) -> None:
        """What ``loss.update_state(loss, sample_weight=batch)``,
        ``grad_norm.update_state(norm)`` and ``accuracy.update_state(y, logits)`` add."""
        batch = logits.shape[0]
        _add(self.loss, loss.float() * batch, batch)
        _add(self.grad_norm, norm.float(), 1)
        if self.accuracy is not None:
            y = keras.ops.convert_to_tensor(y).reshape(-1)
            if self.binary:
                predicted = (logits.reshape(-1) > 0.0).to(y.dtype)
            else:
                predicted = torch.argmax(logits, dim=-1).to(y.dtype)
            _add(self.accuracy, torch.sum(predicted == y), batch)


def _add(metric: Any, total: torch.Tensor, count: int) -> None:
    metric.total.value.add_(total)
    metric.count.value.add_(count)


def metrics_for(model: Any, plan: NativePlan) -> NativeMetrics | None:
    """Native updates of ``model``'s step metrics, or ``None`` (Keras's ``update_state``):
    only for exactly the metrics ``build_model`` compiles, once Keras has built them.

    Example:
        >>> metrics_for(keras.Sequential(), plan=None) is None
        True
    """
    try:
        trackers = (model._loss_tracker, model.grad_norm_tracker)
    except AttributeError:
        return None
    if any(type(tracker) is not keras.metrics.Mean for tracker in trackers):
        return None
    compiled = getattr(model, "_compile_metrics", None)
    if compiled is None:
        return NativeMetrics(*trackers, accuracy=None, binary=False)
    # build_model compiles its metrics as weighted ones (for padded data-parallel batches);
    # the native path runs without sample weights, where weighted and plain agree.
    if not compiled.built or [None] not in (compiled._flat_metrics,
                                            compiled._flat_weighted_metrics):
        return None
    metrics = compiled.metrics
    if not metrics:
        return NativeMetrics(*trackers, accuracy=None, binary=False)
    if len(metrics) != 1:
        return None
    accuracy, kind = metrics[0], type(metrics[0])
    if kind is keras.metrics.SparseCategoricalAccuracy and plan.loss_kind == "sparse":
        return NativeMetrics(*trackers, accuracy=accuracy, binary=False)
    if (kind is keras.metrics.BinaryAccuracy and plan.loss_kind == "binary"
            and accuracy._fn_kwargs == {"threshold": 0.0}):
        return NativeMetrics(*trackers, accuracy=accuracy, binary=True)
    return None


def plan_for(model: Any) -> NativePlan | None:
    """The native plan of ``model``, or ``None`` when the model (or how it was
    compiled) is not one the plan reproduces exactly.

    Example:
        >>> plan_for(keras.Sequential([keras.layers.Dense(2)])) is None
        True
    """
    try:
        return _plan(model)
    except _Unsupported:
        return None


class _Unsupported(Exception):
    """The model has something the native plan does not reproduce."""


def _require(condition: Any) -> None:
    if not condition:
        raise _Unsupported


def _plan(model: Any) -> NativePlan:
    from keras.src.models.functional import Functional

    _require(isinstance(model, Functional) and type(model).call is Functional.call)
    _require(model.trainable and not model._losses)  # no add_loss on the model itself
    _require(len(model.inputs) == 1 and len(model.outputs) == 1)
    layers = model.layers
    _require(layers and isinstance(layers[0], keras.layers.InputLayer))
    previous = layers[0].output
    stages: list[Stage] = []
    penalties: list[tuple[Any, float]] = []
    for layer in layers[1:]:
        # A chain: each layer reads exactly the previous layer's output, once.
        _require(len(layer._inbound_nodes) == 1 and layer.input is previous)
        _require(layer.trainable and not layer._losses and layer.quantization_mode is None)
        stage, penalty = _stage(layer)
        stages.append(stage)
        penalties += penalty
        previous = layer.output
    _require(previous is model.outputs[0])
    return NativePlan(
        input_dtype=getattr(torch, keras.backend.standardize_dtype(model.inputs[0].dtype)),
        stages=tuple(stages), loss_kind=_loss_kind(model), penalties=tuple(penalties),
    )


def _stage(layer: Any) -> tuple[Stage, list[tuple[Any, float]]]:
    compute = getattr(torch, layer.compute_dtype)
    kind = type(layer)
    if kind is keras.layers.Flatten:
        _require(len(layer.input.shape) >= 2)

        def flatten(x: torch.Tensor, updates: list) -> torch.Tensor:
            return _to(x, compute).reshape(x.shape[0], -1)

        return flatten, []
    if kind is keras.layers.Dense:
        return _dense(layer, compute)
    if kind is keras.layers.BatchNormalization:
        return _batch_norm(layer, compute), []
    if kind is keras.layers.Dropout:
        _require(layer.noise_shape is None)

        def dropout(x: torch.Tensor, updates: list) -> torch.Tensor:
            x = _to(x, compute)
            if layer.rate > 0:
                x = keras.random.dropout(x, layer.rate, seed=layer.seed_generator)
            return x

        return dropout, []
    raise _Unsupported


def _dense(layer: Any, compute: torch.dtype) -> tuple[Stage, list[tuple[Any, float]]]:
    _require(not layer.lora_enabled and layer.kernel_constraint is None
             and layer.bias_constraint is None and layer.bias_regularizer is None
             and layer.activity_regularizer is None and layer.activation in _ACTIVATIONS)
    regularizer = layer.kernel_regularizer
    _require(regularizer is None or type(regularizer) is keras.regularizers.L2)
    activation = _ACTIVATIONS[layer.activation]
    kernel_variable, bias_variable = layer._kernel, layer.bias

    def dense(x: torch.Tensor, updates: list) -> torch.Tensor:
        x = _to(x, compute)
        kernel = _to(kernel_variable.value, compute)
        if x.dtype == torch.float16 and x.device.type == "cpu":
            # Keras's matmul: float16 on the CPU is computed in float32, then cast back.
            x = torch.matmul(x.float(), kernel.float()).to(torch.float16)
        else:
            x = torch.matmul(x, kernel)  # then add: addmm would round differently from Keras
        if bias_variable is not None:
            x = torch.add(x, _to(bias_variable.value, compute))
        return activation(x)

    penalty = [] if regularizer is None else [(kernel_variable, float(regularizer.l2))]
    return dense, penalty


def _batch_norm(layer: Any, compute: torch.dtype) -> Stage:
    _require(not layer.renorm and not layer.synchronized
             and layer.axis in (-1, len(layer.input.shape) - 1) and len(layer.input.shape) == 2)
    momentum, epsilon = float(layer.momentum), float(layer.epsilon)

    def batch_norm(x: torch.Tensor, updates: list) -> torch.Tensor:
        x = _to(x, compute)
        if x.dtype in _HALF:  # Keras normalizes in float32 at least
            x = x.float()
        gamma = _to(layer.gamma.value, x.dtype) if layer.scale else None
        beta = _to(layer.beta.value, x.dtype) if layer.center else None
        # Keras's ops.moments and ops.batch_normalization, op for op (E[x^2] - E[x]^2).
        mean = torch.mean(x, dim=0, keepdim=True)
        variance = torch.mean(torch.square(x), dim=0, keepdim=True) - torch.square(mean)
        with torch.no_grad():
            for variable, batch in ((layer.moving_mean, mean), (layer.moving_variance, variance)):
                moving = _to(variable.value, x.dtype)
                updates.append((variable, moving * momentum + batch[0] * (1.0 - momentum)))
        factor = torch.rsqrt(torch.add(variance, epsilon))
        if gamma is not None:
            factor = torch.mul(factor, gamma)
        out = torch.sub(x, mean).mul(factor)
        if beta is not None:
            out = torch.add(out, beta)
        return _to(out, compute)

    return batch_norm


def _loss_kind(model: Any) -> str:
    compiled = getattr(model, "_compile_loss", None)
    _require(compiled is not None and compiled._user_loss_weights is None)
    loss = model.loss
    _require(getattr(loss, "reduction", None) == "sum_over_batch_size")
    config = loss.get_config()
    if type(loss) is keras.losses.SparseCategoricalCrossentropy:
        _require(config.get("from_logits") and config.get("ignore_class") is None)
        return "sparse"
    if type(loss) is keras.losses.BinaryCrossentropy:
        _require(config.get("from_logits") and not config.get("label_smoothing")
                 and config.get("axis", -1) == -1)
        return "binary"
    raise _Unsupported


def _to(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` cast to ``dtype`` when it is a floating tensor of another dtype (Keras's autocast)."""
    if x.dtype != dtype and x.is_floating_point():
        return x.to(dtype)
    return x
