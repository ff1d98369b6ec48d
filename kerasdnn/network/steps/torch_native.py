"""The PyTorch-native forward pass and loss of :class:`~kerasdnn.network.steps.torch.TorchStep`.

Keras's layers pay Python per op on the eager PyTorch backend (``Layer.__call__``,
argument conversion, dtype checks, tree walks): for the seed network, forward +
loss + backward through them takes ~1.7x what ``nn.Linear`` takes.  For a chain of
the layers in ``_SUPPORTED`` (``InputLayer``, ``Flatten``, ``Dense``,
``BatchNormalization``, ``Dropout``, ``Activation``: every model
:func:`kerasdnn.build_model` makes, and the same chains built by hand) compiled with
sparse categorical or binary cross-entropy from logits, :func:`plan_for` writes the
same computation with ``torch`` functions directly on the torch tensors behind the
Keras variables, so the weights, the optimizer (constraints included), the metrics,
saving and every other backend stay Keras's.  What the plan copies from Keras, op for op:

* each layer casts floating inputs to its compute dtype, and reads its (float32)
  variables cast to it (mixed precision: float16 hidden layers, float32 logits;
  a float16 matmul on the CPU runs in float32, as Keras's ``ops.matmul`` does);
* ``Flatten`` moves the channels last first under ``channels_first``, as Keras does;
* ``Dropout`` calls ``keras.random.dropout`` with the layer's own seed generator and
  noise shape, so the masks are those of the Keras path, draw for draw (a skipped
  step puts the generators back, as the Keras path puts back every non-trainable
  variable);
* ``BatchNormalization`` normalizes in float32 with the batch's biased variance and
  *returns* its moving-statistics update, which the step applies only when the
  step is kept (the non-finite guard then has nothing to put back);
* the loss is the compiled loss (mean over the batch) plus the L1, L2 or L1L2
  penalty of every regularized trainable variable (kernels, biases, gamma, beta),
  summed in Keras's order, in float32.

Soundness comes first: the plan takes a model only when every option that changes
the forward pass or the loss is one it copies.  ``_SUPPORTED`` is the one list: for
each layer type (the exact type, never a subclass), each option of its
``get_config()`` with the values the plan copies; an option it does not list (a new
Keras argument), a value outside its check, an unknown activation, dtype policy,
regularizer or constraint, an activity regularizer, a torch hook, an added loss, a
mask, a replaced ``call``/``compute_loss`` all send the model down the Keras path.
The property-based tests (tests/kerasdnn/network/test_torch_native_properties.py) train
random stacks both ways and with stock Keras.

:func:`metrics_for` does the same for the step's metrics when they are the ones
``build_model`` compiles (the loss and grad-norm means, accuracy): it adds to the
metrics' own ``total``/``count`` variables what their ``update_state`` would add
(exact: sums of 0/1 matches and counts), without Keras's per-op Python.

Any other model, layer option, loss or input (sample weights, several inputs, an
input of another shape) gets ``None`` from :func:`plan_for` / ``False`` from
:meth:`NativePlan.accepts`, and the step takes the Keras path.  The plan is built
again when the compiled loss or metrics or a ``trainable`` flag change (see
:meth:`~kerasdnn.network.steps.torch.TorchStep.native_plan`); rate, noise shape, momentum and
epsilon are read at each step.

Example:
    >>> import kerasdnn
    >>> plan_for(kerasdnn.build_model(input_shape=(64,), hidden_units=(32,))) is not None
    True
"""

from __future__ import annotations

import dataclasses
import math
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
        input_shape: the input's shape without the batch axis (``None``: any size).
        stages: one callable per layer after the input, in order.
        loss_kind: ``"sparse"`` (sparse categorical cross-entropy from logits) or
            ``"binary"`` (binary cross-entropy from logits).
        penalties: ``(variable, regularizer)`` of every regularized trainable
            variable, in ``model.trainable_weights`` order (Keras's order of the sum).
        seed_states: the state variables of the dropout layers' seed generators, which
            a skipped step puts back as the Keras path puts back every non-trainable
            variable (the next step then draws the same masks on both paths).
    """

    input_dtype: torch.dtype
    input_shape: tuple[int | None, ...]
    stages: tuple[Stage, ...]
    loss_kind: str
    penalties: tuple[tuple[Any, Any], ...]
    seed_states: tuple[Any, ...] = ()

    def accepts(self, x: Any, y: Any, sample_weight: Any) -> bool:
        """Whether a batch fits the plan: one input tensor of the model's input shape
        (Keras would reshape others), one label tensor of shape ``(batch,)`` or
        ``(batch, 1)``, no sample weights."""
        if sample_weight is not None or not (hasattr(x, "shape") and hasattr(y, "shape")):
            return False
        shape = tuple(x.shape)
        if len(shape) != len(self.input_shape) + 1 or any(
                want is not None and got != want
                for got, want in zip(shape[1:], self.input_shape, strict=True)):
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
        """The compiled loss (mean over the batch) plus the weight penalties, float32."""
        y = keras.ops.convert_to_tensor(y)
        logits = logits.float()
        if self.loss_kind == "sparse":
            values = F.cross_entropy(logits, y.reshape(-1).long(), reduction="none")
        else:
            values = F.binary_cross_entropy_with_logits(
                logits, y.to(logits.dtype).reshape(logits.shape), reduction="none").mean(dim=-1)
        # sum / count, not F's "mean": the same float32 rounding as Keras's reduction.
        losses = [torch.sum(values) / torch.tensor(values.numel(), dtype=values.dtype)]
        for variable, regularizer in self.penalties:
            losses.append(_penalty(regularizer, variable.value))
        return losses[0] if len(losses) == 1 else torch.sum(torch.stack(losses))

    def save_seeds(self) -> list[torch.Tensor]:
        """The seed generators' states, for :meth:`restore_seeds` on a skipped step."""
        return [state.value.clone() for state in self.seed_states]

    def restore_seeds(self, saved: Sequence[torch.Tensor]) -> None:
        for state, value in zip(self.seed_states, saved, strict=True):
            state.assign(value)

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
        order: the model's ``get_metrics_result()`` as ``(name, metric)`` pairs in its
            order (set by :func:`metrics_for`; empty: :meth:`results` is not used).
    """

    loss: Any
    grad_norm: Any
    accuracy: Any | None
    binary: bool
    order: tuple[tuple[str, Any], ...] = ()

    def results(self) -> dict[str, Any]:
        """The model's ``get_metrics_result()``, its means divided in one op: the same
        values (``divide_no_nan`` of each total by its count), a tenth of the Python."""
        means = [m for m in (self.loss, self.grad_norm, self.accuracy) if m is not None]
        totals = torch.stack([metric.total.value for metric in means])
        counts = torch.stack([metric.count.value for metric in means]).to(totals.dtype)
        values = dict(zip(map(id, means), torch.where(counts == 0, 0, totals / counts).unbind(),
                          strict=True))
        return {name: values[id(metric)] if id(metric) in values else metric.result()
                for name, metric in self.order}

    def update(self, loss: torch.Tensor, norm: torch.Tensor, y: Any,
               logits: torch.Tensor, rows: Any = None) -> None:
        """What ``loss.update_state(loss, sample_weight=rows)``,
        ``grad_norm.update_state(norm)`` and ``accuracy.update_state(y, logits)`` add
        (``rows``: the batch's, unless a data-parallel step knows all processes')."""
        batch = logits.shape[0]
        rows = batch if rows is None else rows
        _add(self.loss, loss.float() * rows, rows)
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
    only for exactly the metrics ``build_model`` compiles, once Keras has built them;
    with the order of the model's metric results when they are exactly these means and
    the skipped-steps count (:meth:`NativeMetrics.results`; else Keras computes them).

    Example:
        >>> metrics_for(keras.Sequential(), plan=None) is None
        True
    """
    metrics = _metrics_for(model, plan)
    if metrics is None:
        return None
    sources = {model._loss_tracker.name: metrics.loss, model.grad_norm_tracker.name:
               metrics.grad_norm, model.skipped_steps_tracker.name: model.skipped_steps_tracker}
    if metrics.accuracy is not None:
        sources[metrics.accuracy.name] = metrics.accuracy
    names = list(model.get_metrics_result())
    if sorted(names) != sorted(sources):
        return metrics
    return dataclasses.replace(metrics, order=tuple((name, sources[name]) for name in names))


def _metrics_for(model: Any, plan: NativePlan) -> NativeMetrics | None:
    """Native updates of ``model``'s step metrics, or ``None`` (Keras's ``update_state``):
    only for exactly the metrics ``build_model`` compiles, once Keras has built them."""
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


# -- what the plan reproduces: the one list -----------------------------------------------
#
# For each layer type (exact type: a subclass may change anything), every option that
# type's ``get_config()`` lists, with the values the plan computes as Keras does.  An
# option missing here (a new Keras argument) or a value outside its check sends the
# model down the Keras path.  Beyond the config, :func:`_layer_state` checks what a
# layer carries outside it (activity regularizer, autocast, torch hooks, added losses,
# quantization, LoRA), and :func:`_plan` the regularizer and constraint of every
# trainable variable.  None of these layers makes a mask, so no mask reaches any layer.

Check = Callable[[Any], bool]


def _any(value: Any) -> bool:  # an option that does not enter a training step
    return True


def _none(value: Any) -> bool:
    return value is None


def _false(value: Any) -> bool:
    return value is False or value is None or value == 0


def _true(value: Any) -> bool:
    return value is True


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _activation(value: Any) -> bool:
    return callable(value) and value in _ACTIVATIONS


def _policy(value: Any) -> bool:
    return type(value) is keras.DTypePolicy and value.name in _POLICIES


def _regularizer(value: Any) -> bool:
    return value is None or type(value) in _REGULARIZERS


def _constraint(value: Any) -> bool:
    return value is None or type(value) in _CONSTRAINTS


def _one_of(*allowed: Any) -> Check:
    return lambda value: isinstance(value, str) and value in allowed


# Dtype policies whose casts the stages copy (float16 matmuls on the CPU included).
_POLICIES = frozenset({"float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16"})
_INPUT_DTYPES = frozenset({"float32", "float16", "bfloat16"})
# Weight penalties added to the loss as Keras's __call__ computes them (see _penalty);
# constraints are applied by the optimizer after the update, the same code on both paths.
_REGULARIZERS = (keras.regularizers.L1, keras.regularizers.L2, keras.regularizers.L1L2)
_CONSTRAINTS = (keras.constraints.MaxNorm, keras.constraints.MinMaxNorm,
                keras.constraints.NonNeg, keras.constraints.UnitNorm)

_LAYER = {"name": _any, "trainable": _true, "dtype": _policy}
_SUPPORTED: dict[type, dict[str, Check]] = {
    keras.layers.InputLayer: {
        "name": _any, "batch_shape": _any, "dtype": lambda value: value in _INPUT_DTYPES,
        "sparse": _false, "ragged": _false, "optional": _false,
    },
    keras.layers.Flatten: {**_LAYER, "data_format": _one_of("channels_last", "channels_first")},
    keras.layers.Dense: {
        **_LAYER, "units": _any, "activation": _activation, "use_bias": _bool,
        "kernel_initializer": _any, "bias_initializer": _any,
        "kernel_regularizer": _regularizer, "bias_regularizer": _regularizer,
        "kernel_constraint": _constraint, "bias_constraint": _constraint,
        "quantization_config": _none,
    },
    keras.layers.BatchNormalization: {
        **_LAYER, "axis": _any, "momentum": _number, "epsilon": _number,
        "center": _bool, "scale": _bool,
        "beta_initializer": _any, "gamma_initializer": _any,
        "moving_mean_initializer": _any, "moving_variance_initializer": _any,
        "beta_regularizer": _regularizer, "gamma_regularizer": _regularizer,
        "beta_constraint": _constraint, "gamma_constraint": _constraint,
        "synchronized": _false, "renorm": _false,
        "renorm_clipping": _any, "renorm_momentum": _any,  # read only with renorm
    },
    keras.layers.Dropout: {**_LAYER, "rate": _number, "seed": _any, "noise_shape": _any},
    keras.layers.Activation: {**_LAYER, "activation": _activation},
}

# Torch hooks run inside Keras's layer call (a Keras layer is a torch Module).
_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _option(layer: Any, key: str) -> Any:
    """The live value of the config option ``key`` of ``layer``."""
    if key == "dtype" and type(layer) is not keras.layers.InputLayer:
        return layer.dtype_policy
    return getattr(layer, key)


def _layer_state(layer: Any) -> None:
    """Require that ``layer`` is one the table lists, with supported values only."""
    checks = _SUPPORTED.get(type(layer))
    _require(checks is not None)
    for key in layer.get_config():
        _require(key in checks and checks[key](_option(layer, key)))
    _require(layer.activity_regularizer is None and layer.autocast is True
             and not layer._losses and not layer._losses_override
             and layer.quantization_mode is None and not getattr(layer, "lora_enabled", False)
             and not any(getattr(layer, hooks) for hooks in _HOOKS)
             and "call" not in vars(layer) and "__call__" not in vars(layer))


def _global_hooks() -> bool:
    from torch.nn.modules import module

    return any(getattr(module, f"_global{hooks}", None) for hooks in _HOOKS)


def _plan(model: Any) -> NativePlan:
    from keras.src.models.functional import Functional

    _require(isinstance(model, Functional) and type(model).call is Functional.call)
    # Keras's step calls model(x) and model.compute_loss: neither may be replaced.
    for name in ("__call__", "compute_loss", "_compute_loss", "losses"):
        _require(getattr(type(model), name) is getattr(keras.Model, name)
                 and name not in vars(model))
    _require(model.trainable and not model._losses and not model._losses_override
             and model.activity_regularizer is None and _policy(model.dtype_policy)
             and not any(getattr(model, hooks) for hooks in _HOOKS) and not _global_hooks())
    _require(len(model.inputs) == 1 and len(model.outputs) == 1)
    layers = model.layers
    _require(layers and type(layers[0]) is keras.layers.InputLayer)
    _layer_state(layers[0])
    previous = layers[0].output
    stages: list[Stage] = []
    for layer in layers[1:]:
        # A chain: each layer reads exactly the previous layer's output, once, with no
        # mask and no call argument but ``training`` (the step's training=True wins).
        _require(len(layer._inbound_nodes) == 1 and layer.input is previous)
        _require(all(value is None for key, value
                     in layer._inbound_nodes[0].arguments.kwargs.items() if key != "training"))
        _layer_state(layer)
        stages.append(_STAGES[type(layer)](layer))
        previous = layer.output
    _require(previous is model.outputs[0] and len(previous.shape) == 2)
    # Every trainable variable is a chain layer's, with a penalty and constraint we copy.
    trainable = model.trainable_weights
    _require(len(trainable) == sum(len(layer.trainable_weights) for layer in layers))
    _require(all(_regularizer(v.regularizer) and _constraint(v.constraint) for v in trainable))
    penalties = tuple((v, v.regularizer) for v in trainable if v.regularizer is not None)
    loss_kind = _loss_kind(model)
    _require(loss_kind == "sparse" or previous.shape[-1] == 1)
    return NativePlan(
        input_dtype=getattr(torch, keras.backend.standardize_dtype(model.inputs[0].dtype)),
        input_shape=tuple(model.inputs[0].shape[1:]),
        stages=tuple(stages), loss_kind=loss_kind, penalties=penalties,
        seed_states=tuple(layer.seed_generator.state for layer in layers
                          if type(layer) is keras.layers.Dropout
                          and getattr(layer, "seed_generator", None) is not None),
    )


def _flatten(layer: Any) -> Stage:
    compute = getattr(torch, layer.compute_dtype)
    channels_first = layer.data_format == "channels_first"

    def flatten(x: torch.Tensor, updates: list) -> torch.Tensor:
        x = _to(x, compute)
        if channels_first and x.ndim > 2:  # Keras's Flatten: channels last first
            x = torch.permute(x, (0, *range(2, x.ndim), 1))
        return x.reshape(x.shape[0], -1)

    return flatten


def _dropout(layer: Any) -> Stage:
    compute = getattr(torch, layer.compute_dtype)

    def dropout(x: torch.Tensor, updates: list) -> torch.Tensor:
        x = _to(x, compute)
        if layer.rate > 0:
            x = keras.random.dropout(x, layer.rate, noise_shape=layer.noise_shape,
                                     seed=layer.seed_generator)
        return x

    return dropout


def _activation_stage(layer: Any) -> Stage:
    compute = getattr(torch, layer.compute_dtype)
    activation = _ACTIVATIONS[layer.activation]

    def activate(x: torch.Tensor, updates: list) -> torch.Tensor:
        return activation(_to(x, compute))

    return activate


def _dense(layer: Any) -> Stage:
    compute = getattr(torch, layer.compute_dtype)
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

    return dense


def _batch_norm(layer: Any) -> Stage:
    _require(layer.axis in (-1, len(layer.input.shape) - 1) and len(layer.input.shape) == 2)
    compute = getattr(torch, layer.compute_dtype)

    def batch_norm(x: torch.Tensor, updates: list) -> torch.Tensor:
        momentum, epsilon = layer.momentum, layer.epsilon
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


_STAGES: dict[type, Callable[[Any], Stage]] = {
    keras.layers.Flatten: _flatten,
    keras.layers.Dense: _dense,
    keras.layers.BatchNormalization: _batch_norm,
    keras.layers.Dropout: _dropout,
    keras.layers.Activation: _activation_stage,
}


def _penalty(regularizer: Any, value: torch.Tensor) -> torch.Tensor:
    """``regularizer(value)``, op for op as Keras's L1, L2 and L1L2 compute it."""
    kind = type(regularizer)
    if kind is keras.regularizers.L2:
        return _factor(regularizer.l2, value) * torch.sum(torch.square(value))
    if kind is keras.regularizers.L1:
        return _factor(regularizer.l1, value) * torch.sum(torch.abs(value))
    total = torch.tensor(0.0, dtype=value.dtype)
    if regularizer.l1 != 0.0:
        total = total + _factor(regularizer.l1, value) * torch.sum(torch.abs(value))
    if regularizer.l2 != 0.0:
        total = total + _factor(regularizer.l2, value) * torch.sum(torch.square(value))
    return total


def _factor(factor: Any, value: torch.Tensor) -> torch.Tensor:
    """A regularizer's factor (a float; L1 keeps a tensor) in ``value``'s dtype."""
    return torch.as_tensor(factor, dtype=value.dtype)


_LOSSES: dict[type, tuple[str, dict[str, Check]]] = {
    keras.losses.SparseCategoricalCrossentropy: ("sparse", {
        "name": _any, "reduction": _one_of("sum_over_batch_size"), "from_logits": _true,
        "ignore_class": _none,
    }),
    keras.losses.BinaryCrossentropy: ("binary", {
        "name": _any, "reduction": _one_of("sum_over_batch_size"), "from_logits": _true,
        "label_smoothing": lambda value: value == 0, "axis": lambda value: value == -1,
    }),
}


def _loss_kind(model: Any) -> str:
    compiled = getattr(model, "_compile_loss", None)
    _require(compiled is not None and compiled._user_loss_weights is None)
    loss = model.loss
    kind, checks = _LOSSES.get(type(loss), (None, None))
    _require(kind is not None and loss.dtype == "float32")
    for key, value in loss.get_config().items():
        _require(key in checks and checks[key](value))
    return kind


def _to(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` cast to ``dtype`` when it is a floating tensor of another dtype (Keras's autocast)."""
    if x.dtype != dtype and x.is_floating_point():
        return x.to(dtype)
    return x
