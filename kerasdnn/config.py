"""Hyperparameters: :class:`ModelConfig` (the network and its optimizer) and
:class:`TrainConfig` (the run: data, epochs, batch size, seed, output).

They are the single source of hyperparameters: command-line flags, KerasTuner
hyperparameters and notebook keyword arguments all map onto them.  Both
validate on construction, raise :class:`~kerasdnn.errors.ConfigError` naming
the parameter and its allowed values, and round-trip through JSON.

This module imports neither Keras nor a backend, so the command-line tools can
parse and validate flags before any heavy import.

Example:
    >>> from kerasdnn.config import ModelConfig
    >>> config = ModelConfig(hidden_units=(128, 64), dropout=0.2)
    >>> ModelConfig.from_json(config.to_json()) == config
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from kerasdnn.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "METRICS",
    "OPTIMIZERS",
    "SCALES",
    "ModelConfig",
    "TrainConfig",
]

OPTIMIZERS = ("sgd", "adam", "adamw")
ACTIVATIONS = ("relu", "gelu", "elu", "selu", "tanh", "sigmoid", "swish", "leaky_relu")
METRICS = ("accuracy", "auc")
SCALES = ("auto", "unit", "standardize")

_Config = TypeVar("_Config", bound="_JSONConfig")


class _JSONConfig:
    """JSON round trip shared by the two configs (dataclasses only)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return {
            field.name: _jsonable(getattr(self, field.name))
            for field in dataclasses.fields(self)  # type: ignore[arg-type]
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls: type[_Config], values: Mapping[str, Any]) -> _Config:
        """Build from a mapping; unknown keys are refused with the list of known ones."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{cls.__name__} expects a JSON object, got {type(values).__name__}")
        known = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} key(s) {', '.join(unknown)}; "
                f"known keys: {', '.join(known)}"
            )
        return cls(**values)

    @classmethod
    def from_json(cls: type[_Config], text: str) -> _Config:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{cls.__name__}: invalid JSON ({error})") from None
        return cls.from_dict(values)

    def replace(self: _Config, **changes: Any) -> _Config:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclasses.dataclass(frozen=True)
class ModelConfig(_JSONConfig):
    """The network and how it is optimized.

    Attributes:
        input_shape: shape of one example, without the batch axis (flattened
            by the model when it has more than one axis).
        num_classes: 2 gives one sigmoid unit with binary cross-entropy; more
            gives softmax logits with sparse categorical cross-entropy.
        hidden_units: units of each hidden dense layer.
        activation: activation of the hidden layers, one of ``ACTIVATIONS``.
        dropout: dropout rate after each hidden layer, in [0, 1).
        batch_norm: batch normalization after each hidden dense layer.
        l2: L2 penalty on the kernels (0 disables it).
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        learning_rate: positive learning rate.
        momentum: SGD momentum in [0, 1) (ignored by Adam and AdamW).
        weight_decay: AdamW decoupled weight decay (ignored by SGD and Adam).
        clipnorm: global-norm gradient clipping threshold (``None``: no clipping).
        mixed_precision: float16 compute with dynamic loss scaling.
        seed: seed of the initial weights and of dropout.
        metrics: training metrics, from ``METRICS``.
        jit_compile: compile the step with XLA where the backend supports it.
        steps_per_execution: training steps per compiled call: TensorFlow loops
            over them inside one graph call, JAX inside one ``lax.scan``; batch-level
            callbacks and the progress bar see one call.  ``kerasdnn.train`` lowers
            it to a divisor of the steps per epoch; always 1 on PyTorch.

    Example:
        >>> ModelConfig().hidden_units
        (500, 250)
    """

    input_shape: tuple[int, ...] = (784,)
    num_classes: int = 10
    hidden_units: tuple[int, ...] = (500, 250)
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False
    l2: float = 0.0
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.004
    clipnorm: float | None = None
    mixed_precision: bool = False
    seed: int = 1337
    metrics: tuple[str, ...] = ("accuracy",)
    jit_compile: bool | str = "auto"
    steps_per_execution: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", _int_tuple("input_shape", self.input_shape))
        object.__setattr__(self, "hidden_units", _int_tuple("hidden_units", self.hidden_units))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        _check(all(d >= 1 for d in self.input_shape) and self.input_shape,
               "input_shape", "a non-empty tuple of positive integers", self.input_shape)
        _check(_is_int(self.num_classes) and self.num_classes >= 2,
               "num_classes", "an integer >= 2", self.num_classes)
        _check(all(u >= 1 for u in self.hidden_units),
               "hidden_units", "positive integers (an empty tuple gives a linear model)",
               self.hidden_units)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check(_is_number(self.dropout) and 0.0 <= self.dropout < 1.0,
               "dropout", "a number in [0, 1)", self.dropout)
        _check(isinstance(self.batch_norm, bool), "batch_norm", "true or false", self.batch_norm)
        _check(_is_number(self.l2) and self.l2 >= 0.0, "l2", "a number >= 0", self.l2)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check(_is_number(self.learning_rate) and self.learning_rate > 0.0,
               "learning_rate", "a positive number", self.learning_rate)
        _check(_is_number(self.momentum) and 0.0 <= self.momentum < 1.0,
               "momentum", "a number in [0, 1)", self.momentum)
        _check(_is_number(self.weight_decay) and self.weight_decay >= 0.0,
               "weight_decay", "a number >= 0", self.weight_decay)
        _check(self.clipnorm is None or (_is_number(self.clipnorm) and self.clipnorm > 0.0),
               "clipnorm", "a positive number or null (no clipping)", self.clipnorm)
        _check(isinstance(self.mixed_precision, bool),
               "mixed_precision", "true or false", self.mixed_precision)
        _check(_is_int(self.seed) and self.seed >= 0, "seed", "an integer >= 0", self.seed)
        for metric in self.metrics:
            _check_choice("metrics", metric, METRICS)
        _check(self.jit_compile in (True, False, "auto"),
               "jit_compile", "true, false or \"auto\"", self.jit_compile)
        _check(_is_int(self.steps_per_execution) and self.steps_per_execution >= 1,
               "steps_per_execution", "an integer >= 1", self.steps_per_execution)

    @property
    def binary(self) -> bool:
        """True when the head is one sigmoid unit (``num_classes == 2``)."""
        return self.num_classes == 2

    @property
    def output_units(self) -> int:
        return 1 if self.binary else self.num_classes


@dataclasses.dataclass(frozen=True)
class TrainConfig(_JSONConfig):
    """One training run: which data, how long, where the results go.

    Attributes:
        dataset: a dataset name known to :mod:`pipelines` (``"auto"``: MNIST
            when it can be had, else scikit-learn's bundled digits).
        epochs: number of epochs, >= 1.
        batch_size: examples per training step, >= 1.
        validation_split: fraction of the training split held out, in (0, 1).
        scale: ``"unit"`` ([0, 1]), ``"standardize"`` (per feature, training
            statistics) or ``"auto"`` (the dataset's own choice: unit for images,
            standardize for digits).
        seed: seed of the shuffling and of the validation split.
        out: run directory (``None``: ``runs/<dataset>-<backend>-<timestamp>``).
        early_stopping: patience in epochs on the validation loss (``None``: off).
        tensorboard: also write TensorBoard logs to ``<out>/tensorboard``.
        data_dir: TFDS data directory (``None``: TFDS's own, honouring ``TFDS_DATA_DIR``).
        manual_dir: folder holding a TFDS dataset's original archive files, used
            instead of a download (checksums verified).
        data_parallel: one model replica per device, each global batch split evenly
            across them (:mod:`kerasdnn.distribute`; JAX and TensorFlow).
        devices: with ``data_parallel``, the first this many devices (``None``: all);
            without accelerators, the host CPU split into this many virtual devices.

    Example:
        >>> TrainConfig(epochs=5).batch_size
        100
    """

    dataset: str = "auto"
    epochs: int = 10
    batch_size: int = 100
    validation_split: float = 0.1
    scale: str = "auto"
    seed: int = 1337
    out: str | None = None
    early_stopping: int | None = None
    tensorboard: bool = False
    data_dir: str | None = None
    manual_dir: str | None = None
    data_parallel: bool = False
    devices: int | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.dataset, str) and self.dataset.strip() != "",
               "dataset", "a dataset name (see `python -m pipelines --list`)", self.dataset)
        _check(_is_int(self.epochs) and self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        _check(_is_int(self.batch_size) and self.batch_size >= 1,
               "batch_size", "an integer >= 1", self.batch_size)
        _check(_is_number(self.validation_split) and 0.0 < self.validation_split < 1.0,
               "validation_split", "a number in (0, 1)", self.validation_split)
        _check_choice("scale", self.scale, SCALES)
        _check(_is_int(self.seed) and self.seed >= 0, "seed", "an integer >= 0", self.seed)
        _check(self.out is None or isinstance(self.out, str), "out", "a path", self.out)
        _check(self.early_stopping is None
               or (_is_int(self.early_stopping) and self.early_stopping >= 1),
               "early_stopping", "a patience in epochs >= 1, or null", self.early_stopping)
        _check(isinstance(self.tensorboard, bool), "tensorboard", "true or false",
               self.tensorboard)
        for name in ("data_dir", "manual_dir"):
            value = getattr(self, name)
            _check(value is None or isinstance(value, str), name, "a path or null", value)
        _check(isinstance(self.data_parallel, bool), "data_parallel", "true or false",
               self.data_parallel)
        _check(self.devices is None or (_is_int(self.devices) and self.devices >= 1),
               "devices", "an integer >= 1, or null (all devices)", self.devices)
        _check(self.devices is None or self.data_parallel,
               "devices", "null unless data_parallel is set (--devices needs --data-parallel)",
               self.devices)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    if _is_int(value):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"{name} must be a tuple of integers, got {value!r}") from None
    if not all(_is_int(item) for item in items):
        raise ConfigError(f"{name} must be a tuple of integers, got {value!r}")
    return items


def _check(ok: Any, name: str, allowed: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
