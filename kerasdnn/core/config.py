"""Hyperparameters: :class:`ModelConfig` (the network and its optimizer) and
:class:`TrainConfig` (the run: data, epochs, batch size, seed, output).

They are the single source of hyperparameters: command-line flags, KerasTuner
hyperparameters and notebook keyword arguments all map onto them.  Both
validate on construction against one rule per field (:func:`setting_problem`,
which the command-line flags use too), raise :class:`~kerasdnn.core.errors.ConfigError`
naming the parameter and its allowed values, and round-trip through JSON.

This module imports neither Keras nor a backend, so the command-line tools can
parse and validate flags before any heavy import.

Example:
    >>> from kerasdnn.core.config import ModelConfig
    >>> config = ModelConfig(hidden_units=(128, 64), dropout=0.2)
    >>> ModelConfig.from_json(config.to_json()) == config
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kerasdnn.core.errors import ConfigError
from pipelines.constants import (
    BATCH_SIZE,
    COUNT_MAX,
    SCALES,
    SEED,
    SEED_MAX,
    VALIDATION_SPLIT,
    is_seed,
    is_validation_split,
)

__all__ = [
    "ACTIVATIONS",
    "DATA_FIELDS",
    "INPUT_PATHS",
    "LR_SCHEDULES",
    "METRICS",
    "OPTIMIZERS",
    "SCALES",
    "ModelConfig",
    "TrainConfig",
    "check_warmup",
    "config_sections",
    "setting_problem",
]

OPTIMIZERS = ("sgd", "adam", "adamw")
ACTIVATIONS = ("relu", "gelu", "elu", "selu", "tanh", "sigmoid", "swish", "leaky_relu")
METRICS = ("accuracy", "auc")
LR_SCHEDULES = ("constant", "cosine", "step", "plateau")  # kerasdnn.training.schedules
DATA_FIELDS = ("input_shape", "num_classes")  # ModelConfig fields the data decides
INPUT_PATHS = ("auto", "resident", "stream")  # kerasdnn.training.input_path

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
        steps_per_execution: training steps per call: TensorFlow loops over them
            inside one graph call, JAX inside one ``lax.scan``, PyTorch runs them one
            after another (:mod:`kerasdnn.network.steps.torch`); batch-level callbacks
            and the progress bar see one call.  ``kerasdnn.train`` lowers it to a
            divisor of the steps per epoch.
        lr_schedule: the learning rate over training, one of ``LR_SCHEDULES``
            (:mod:`kerasdnn.training.schedules`): ``constant``; ``cosine`` decay to ``min_lr``
            at the last epoch; ``step``: times ``lr_drop`` every ``lr_drop_every``
            epochs, not below ``min_lr``; ``plateau``: times ``lr_drop`` after
            ``lr_drop_every`` epochs without a better validation loss.
        warmup_epochs: epochs of linear warm-up from 0 to ``learning_rate`` first
            (not with ``plateau``).
        min_lr: the lowest rate ``cosine``, ``step`` and ``plateau`` go to.
        lr_drop: the factor of a ``step`` or ``plateau`` drop, in (0, 1).
        lr_drop_every: epochs between ``step`` drops; ``plateau``'s patience.

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
    seed: int = SEED
    metrics: tuple[str, ...] = ("accuracy",)
    jit_compile: bool | str = "auto"
    steps_per_execution: int = 10
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    min_lr: float = 0.0
    lr_drop: float = 0.1
    lr_drop_every: int = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", _int_tuple("input_shape", self.input_shape))
        object.__setattr__(self, "hidden_units", _int_tuple("hidden_units", self.hidden_units))
        object.__setattr__(self, "metrics", _str_tuple("metrics", self.metrics))
        _check_fields(self)
        if self.lr_schedule == "plateau" and self.warmup_epochs:
            raise ConfigError("warmup_epochs works with the constant, cosine and step "
                              f"schedules, not plateau; got {self.warmup_epochs!r}")
        if self.min_lr >= self.learning_rate and self.lr_schedule != "constant":
            raise ConfigError(f"min_lr must be below learning_rate ({self.learning_rate!r}), "
                              f"got {self.min_lr!r}")

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
            across them (:mod:`kerasdnn.training.distribute`; JAX and TensorFlow).
        devices: with ``data_parallel``, the first this many devices (``None``: all);
            without accelerators, the host CPU split into this many virtual devices.
        target: a table's label column (``csv:PATH``, ``parquet:PATH``, a DataFrame;
            required there, refused elsewhere).
        drop: a table's columns left out.
        test_split: fraction of a table's labelled rows held out as the test split
            (seeded, stratified; then ``validation_split`` of the rest).
        features: a table's column kinds that override the inferred ones,
            ``{column: "numeric" | "categorical" | "drop"}`` (``--features FILE.json``).
        test_data: a table (``csv:PATH``, ``parquet:PATH``) of the same columns used as
            the test split instead of ``test_split`` of the rows.
        stream: read a ``csv:`` or ``parquet:`` table, an ``npz:`` file or an ``idx:``
            folder piece by piece, never whole (:mod:`pipelines.tables.streaming`,
            :mod:`pipelines.array_stream`: one pass for the statistics, splits by a
            hash of the row number, a shuffle within windows of rows; in a
            multi-process run each process reads its own pieces).
        shuffle_buffer: with ``stream``, the rows permuted together per window
            (``None``: 65,536).
        input_path: how the training examples reach the step: ``"resident"`` (kept on
            the device, each batch gathered there: :mod:`pipelines.resident`),
            ``"stream"`` (the ``tf.data`` stream, a batch or block at a time) or
            ``"auto"`` (resident where it can run and the examples take at most a
            quarter of the device's free memory; :mod:`kerasdnn.training.input_path`).
            The batches and the numbers are the same on either path.
        class_weight: ``None`` (every class weighs 1), ``"balanced"`` (scikit-learn's
            ``n_samples / (n_classes * count)`` on the training split's labels) or a
            mapping ``{class index or name: weight}`` (classes left out weigh 1):
            each training example's loss is multiplied by its class's weight, as
            ``fit(class_weight=...)`` does (:mod:`kerasdnn.training.class_weights`).
        init_from: a finished run directory whose ``model.keras`` gives the initial
            weights (:mod:`kerasdnn.training.finetune`; ``None``: fresh weights).
        freeze: with ``init_from``, the first this many hidden layers (and their
            batch normalization) are not trained.

    Example:
        >>> TrainConfig(epochs=5).batch_size
        100
    """

    dataset: str = "auto"
    epochs: int = 10
    batch_size: int = BATCH_SIZE
    validation_split: float = VALIDATION_SPLIT
    scale: str = "auto"
    seed: int = SEED
    out: str | None = None
    early_stopping: int | None = None
    tensorboard: bool = False
    data_dir: str | None = None
    manual_dir: str | None = None
    data_parallel: bool = False
    devices: int | None = None
    target: str | None = None
    drop: tuple[str, ...] = ()
    test_split: float = 0.2
    features: dict[str, str] | None = None
    test_data: str | None = None
    stream: bool = False
    shuffle_buffer: int | None = None
    input_path: str = "auto"
    class_weight: str | dict[str, float] | None = None
    init_from: str | None = None
    freeze: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.drop, (list, tuple)):
            object.__setattr__(self, "drop", tuple(self.drop))
        if isinstance(self.class_weight, Mapping):  # JSON keys are strings
            object.__setattr__(self, "class_weight",
                               {str(key): value for key, value in self.class_weight.items()})
        _check_fields(self)
        if self.freeze and self.init_from is None:
            raise ConfigError(f"freeze needs init_from (--freeze needs --init-from RUN), "
                              f"got {self.freeze!r}")
        if self.class_weight is not None and self.data_parallel:
            raise ConfigError("class_weight does not work with data_parallel yet; "
                              "leave out --class-weight or --data-parallel")
        if self.shuffle_buffer is not None and not self.stream:
            raise ConfigError("shuffle_buffer must be null unless stream is set "
                              f"(--shuffle-buffer needs --stream), got {self.shuffle_buffer!r}")
        if self.devices is not None and not self.data_parallel:
            raise ConfigError("devices must be null unless data_parallel is set "
                              f"(--devices needs --data-parallel), got {self.devices!r}")


_SECTION_EXAMPLE = '{"train": {"epochs": 5}, "model": {"dropout": 0.1}}'


def check_warmup(model_config: ModelConfig, epochs: int) -> None:
    """The one rule joining the two configs: a warm-up shorter than the training
    (a warm-up of every epoch never reaches the rate; cosine needs steps to decay over).

    Example:
        >>> check_warmup(ModelConfig(warmup_epochs=1), epochs=2)
        >>> check_warmup(ModelConfig(warmup_epochs=2), epochs=2)
        Traceback (most recent call last):
        kerasdnn.core.errors.ConfigError: warmup_epochs (2) must be fewer than the epochs (2); \
lower --warmup-epochs or raise --epochs
    """
    if model_config.warmup_epochs and model_config.warmup_epochs >= epochs:
        raise ConfigError(f"warmup_epochs ({model_config.warmup_epochs}) must be fewer than the "
                          f"epochs ({epochs}); lower --warmup-epochs or raise --epochs")


def config_sections(record: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(train settings, model settings)`` of a config document (a run's
    ``config.json`` or one written by hand), each section checked to be a JSON
    object; its keys and values are checked by :meth:`TrainConfig.from_dict` and
    :meth:`ModelConfig.from_dict`.  Each way it can be wrong is one
    :class:`ConfigError` that names the section.

    Example:
        >>> config_sections({"train": {"epochs": 5}})
        ({'epochs': 5}, {})
        >>> config_sections({"train": None})
        Traceback (most recent call last):
        kerasdnn.core.errors.ConfigError: "train" must be a JSON object of settings, got null; \
e.g. {"train": {"epochs": 5}, "model": {"dropout": 0.1}}
    """
    if not isinstance(record, Mapping) or not set(record) & {"train", "model"}:
        raise ConfigError(
            f'expected a JSON object with "train" and/or "model" sections, e.g. {_SECTION_EXAMPLE}'
        )
    sections = []
    for name in ("train", "model"):
        section = record.get(name, {})
        if not isinstance(section, Mapping):
            raise ConfigError(
                f'"{name}" must be a JSON object of settings, got {_json_type(section)}; '
                f"e.g. {_SECTION_EXAMPLE}"
            )
        sections.append(dict(section))
    return sections[0], sections[1]


def _json_type(value: Any) -> str:
    """What a JSON value is, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else type(value).__name__


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


def _str_tuple(name: str, value: Any) -> tuple[Any, ...]:
    """A list of names as a tuple (the field's rule judges the names)."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise ConfigError(f"{name} must be a list, each {_RULES[name].allowed}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class _Rule:
    """What one field accepts: ``test`` on a value, ``allowed`` in words (as a flag
    takes it), and ``null``, what ``None`` means where the field allows it."""

    test: Callable[[Any], bool]
    allowed: str
    null: str | None = None


def _choice(choices: tuple[str, ...]) -> _Rule:
    return _Rule(lambda value: value in choices, f"one of {', '.join(choices)}")


def _number(test: Callable[[float], bool], allowed: str, null: str | None = None) -> _Rule:
    return _Rule(lambda value: _is_number(value) and test(value), allowed, null)


def _integer(minimum: int, null: str | None = None) -> _Rule:
    return _Rule(lambda value: _is_int(value) and minimum <= value <= COUNT_MAX,
                 f"an integer >= {minimum} (at most {COUNT_MAX})", null)


_BOOL = _Rule(lambda value: isinstance(value, bool), "true or false")


def _path(null: str) -> _Rule:
    return _Rule(lambda value: isinstance(value, str), "a path", null)

_FRACTION_0_1 = _number(lambda value: 0.0 <= value < 1.0, "a number in [0, 1)")
# Each field's rule, once: the dataclasses check every field against it and the
# command-line flags check their values with it (setting_problem).
_RULES: dict[str, _Rule] = {
    # ModelConfig (input_shape and hidden_units are integer tuples by then)
    "input_shape": _Rule(lambda value: bool(value) and all(1 <= d <= COUNT_MAX for d in value),
                         f"a non-empty tuple of positive integers (at most {COUNT_MAX})"),
    "num_classes": _integer(2),
    "hidden_units": _Rule(lambda value: all(1 <= units <= COUNT_MAX for units in value),
                          f"positive integers, at most {COUNT_MAX} "
                          "(none at all gives a linear model)"),
    "activation": _choice(ACTIVATIONS),
    "dropout": _FRACTION_0_1,
    "batch_norm": _BOOL,
    "l2": _number(lambda value: value >= 0.0, "a number >= 0"),
    "optimizer": _choice(OPTIMIZERS),
    "learning_rate": _number(lambda value: value > 0.0, "a positive number"),
    "momentum": _FRACTION_0_1,
    "weight_decay": _number(lambda value: value >= 0.0, "a number >= 0"),
    "clipnorm": _number(lambda value: value > 0.0, "a positive number", "no clipping"),
    "mixed_precision": _BOOL,
    "seed": _Rule(is_seed, f"an integer 0 .. {SEED_MAX}"),
    "metrics": _Rule(lambda value: all(metric in METRICS for metric in value),
                     f"one of {', '.join(METRICS)}"),
    "jit_compile": _Rule(lambda value: value in (True, False, "auto"), 'true, false or "auto"'),
    "steps_per_execution": _integer(1),
    # TrainConfig
    "dataset": _Rule(lambda value: isinstance(value, str) and value.strip() != "",
                     "a dataset name (see `python -m pipelines --list`)"),
    "epochs": _integer(1),
    "batch_size": _integer(1),
    "validation_split": _Rule(is_validation_split, "a number in (0, 1)"),
    "scale": _choice(SCALES),
    "out": _path("runs/<dataset>-<backend>-<timestamp>"),
    "early_stopping": _integer(1, "off"),
    "tensorboard": _BOOL,
    "data_dir": _path("TFDS's own"),
    "manual_dir": _path("none: download"),
    "data_parallel": _BOOL,
    "devices": _integer(1, "all devices"),
    "target": _Rule(lambda value: isinstance(value, str) and value != "", "a column name",
                    "not a table"),
    "drop": _Rule(lambda value: isinstance(value, tuple)
                  and all(isinstance(item, str) and item for item in value),
                  "column names"),
    "test_split": _Rule(is_validation_split, "a number in (0, 1)"),
    "features": _Rule(lambda value: isinstance(value, dict) and all(
        isinstance(key, str) and kind in ("numeric", "categorical", "drop")
        for key, kind in value.items()),
        'a JSON object {column: "numeric" | "categorical" | "drop"}', "inferred"),
    "test_data": _Rule(lambda value: isinstance(value, str) and value.startswith(
        ("csv:", "parquet:")), "csv:PATH or parquet:PATH", "test_split of the rows"),
    "stream": _BOOL,
    "shuffle_buffer": _integer(1, "65,536 rows"),
    "input_path": _choice(INPUT_PATHS),
    "class_weight": _Rule(
        lambda value: value == "balanced" or (
            isinstance(value, Mapping) and bool(value)
            and all(_is_number(weight) and weight >= 0 for weight in value.values())),
        '"balanced" or a JSON object {class: weight >= 0}', "every class weighs 1"),
    "init_from": _path("fresh weights"),
    "freeze": _integer(0),
    "lr_schedule": _choice(LR_SCHEDULES),
    "warmup_epochs": _integer(0),
    "min_lr": _number(lambda value: value >= 0.0, "a number >= 0"),
    "lr_drop": _number(lambda value: 0.0 < value < 1.0, "a number in (0, 1)"),
    "lr_drop_every": _integer(1),
}


def setting_problem(name: str, value: Any, *, null: bool = True) -> str | None:
    """What is wrong with ``value`` for the config field ``name`` (``"must be ..."``),
    or ``None`` when the field's rule accepts it.  ``null=False`` leaves out that
    ``None`` would do (for a command-line flag, which cannot give one).

    Example:
        >>> setting_problem("dropout", 1.0)
        'must be a number in [0, 1)'
        >>> setting_problem("clipnorm", 0.0), setting_problem("clipnorm", None)
        ('must be a positive number or null (no clipping)', None)
        >>> setting_problem("epochs", 3) is None
        True
    """
    rule = _RULES[name]
    if (value is None and rule.null is not None) or (value is not None and rule.test(value)):
        return None
    if null and rule.null is not None:
        return f"must be {rule.allowed} or null ({rule.null})"
    return f"must be {rule.allowed}"


def _check_fields(config: Any) -> None:
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        problem = setting_problem(field.name, value)
        if problem is not None:
            raise ConfigError(f"{field.name} {problem}, got {value!r}")
