"""The search space, declared once: names, kinds, ranges, defaults.

:data:`DEFAULT_SPACE` lists every tuned hyperparameter.  A JSON file narrows
it (:func:`load_space`): each key names a hyperparameter and gives a fixed
value, a list of values, or a range ``{"min": …, "max": …}`` (and optionally
``"sampling": "linear" | "log"`` for numbers).  :meth:`Space.declare` registers
the space on a KerasTuner ``HyperParameters`` object and
:meth:`Space.model_config` maps the values of a trial onto a
:class:`~kerasdnn.core.config.ModelConfig`.

This module imports neither Keras nor KerasTuner: the search CLI validates a
space file before any heavy import.

Example:
    >>> space = DEFAULT_SPACE.narrow({"optimizer": ["adam"], "num_layers": {"min": 1, "max": 2}})
    >>> space["optimizer"].values
    ('adam',)
    >>> space.model_config({"num_layers": 1, "units_0": 64, "optimizer": "adam",
    ...                     "learning_rate": 0.001}).hidden_units
    (64,)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kerasdnn.core.config import OPTIMIZERS, ModelConfig, TrainConfig
from kerasdnn.core.errors import ConfigError
from kerasdnn.core.io import read_json_file

__all__ = ["DEFAULT_SPACE", "MAX_LAYERS", "Param", "Space", "check_value", "load_space"]

MAX_LAYERS = 8  # units_0 … units_7 at most; the default space goes up to 4
# Off unless a space file widens them: fixed at their default, they are not declared
# (trials, their hyperparameters and the stored space stay what they were without them).
OPT_IN = {"lr_schedule": "constant", "warmup_epochs": 0, "class_weight": "none"}
_RANGE_KEYS = ("min", "max", "sampling")


@dataclasses.dataclass(frozen=True)
class Param:
    """One hyperparameter: a range (``kind`` "int" or "float") or a list of values.

    Attributes:
        name: the hyperparameter's name (``units`` stands for ``units_0``, ``units_1``, …).
        kind: ``"int"`` or ``"float"`` (a range from ``min`` to ``max``), or ``"choice"``.
        default: the value KerasTuner uses before it samples one.
        min: lower bound of a range (inclusive).
        max: upper bound of a range (inclusive).
        sampling: ``"linear"`` or ``"log"`` for a range.
        values: the allowed values of a ``"choice"`` (one value: fixed).

    A value is valid when the config it gives is (:func:`check_value`).
    """

    name: str
    kind: str
    default: Any
    min: float | None = None
    max: float | None = None
    sampling: str = "linear"
    values: tuple[Any, ...] = ()

    @property
    def fixed(self) -> bool:
        return self.kind == "choice" and len(self.values) == 1

    def possible_values(self) -> list[Any]:
        """Every value the search may give (ints and choices only)."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.min), int(self.max) + 1))
        raise TypeError(f"{self.name} is a float range")

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"values": list(self.values), "default": self.default}
        return {"kind": self.kind, "min": self.min, "max": self.max,
                "sampling": self.sampling, "default": self.default}

    def narrow(self, spec: Any) -> Param:
        """This parameter with the values of a space-file entry (see the module docstring)."""
        where = f"search space {self.name!r}"
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - set(_RANGE_KEYS))
            if unknown:
                raise ConfigError(
                    f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                    "a range has \"min\", \"max\" and optionally \"sampling\""
                )
            if self.kind == "choice":
                raise ConfigError(
                    f"{where} is a choice: give a value or a list of values, "
                    f"e.g. {json.dumps(list(self.values[:2]))}"
                )
            low, high = spec.get("min", self.min), spec.get("max", self.max)
            sampling = spec.get("sampling", self.sampling)
            for bound in (low, high):
                self._check_value(bound, where)
            if sampling not in ("linear", "log"):
                raise ConfigError(f"{where}: sampling must be \"linear\" or \"log\", "
                                  f"got {sampling!r}")
            if low > high:
                raise ConfigError(f"{where}: empty range (min {low} > max {high}); "
                                  "give min <= max")
            if sampling == "log" and low <= 0:
                raise ConfigError(f"{where}: log sampling needs min > 0, got {low}")
            if low == high:
                return self._as_choice((low,))
            default = min(max(self.default, low), high)
            if self.kind == "int":
                low, high, default = int(low), int(high), round(default)
            else:
                low, high, default = float(low), float(high), float(default)
            return dataclasses.replace(
                self, min=low, max=high, sampling=sampling, default=default
            )
        values = tuple(spec) if isinstance(spec, list) else (spec,)
        if not values:
            example = list(self.values[:2]) if self.kind == "choice" else [self.default]
            raise ConfigError(f"{where}: empty list of values; give at least one value, "
                              f"e.g. {json.dumps(example)}")
        for value in values:
            self._check_value(value, where)
        if len(set(values)) != len(values):
            raise ConfigError(f"{where}: repeated values in {json.dumps(list(values))}")
        if len({type(value) for value in values}) > 1 and not all(
            _is_number(value) for value in values
        ):
            raise ConfigError(f"{where}: values must all be of one type, got {list(values)}")
        return self._as_choice(values)

    def _as_choice(self, values: tuple[Any, ...]) -> Param:
        if self.kind == "int":
            values = tuple(int(value) for value in values)
        elif self.kind == "float" or (
            all(_is_number(value) for value in values)
            and any(isinstance(value, float) for value in values)
        ):
            values = tuple(float(value) for value in values)
        default = self.default if self.default in values else values[0]
        return dataclasses.replace(
            self, kind="choice", values=values, default=default, min=None, max=None,
            sampling="linear",
        )

    def _check_value(self, value: Any, where: str) -> None:
        try:
            check_value(self.name, value)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None

    def declare(self, hp: Any, name: str | None = None, default: Any = None) -> Any:
        """Register on KerasTuner's ``hp`` and return the current value (``None``: inactive).

        ``default`` replaces the parameter's own default (kept within its range).
        """
        name = name or self.name
        if self.fixed:
            return hp.Fixed(name, self.values[0])
        if default is None or (self.kind == "choice" and default not in self.values):
            default = self.default
        if self.kind == "choice":
            return hp.Choice(name, list(self.values), default=default)
        default = min(max(default, self.min), self.max)
        if self.kind == "int":
            return hp.Int(name, int(self.min), int(self.max), sampling=self.sampling,
                          default=int(default))
        return hp.Float(name, float(self.min), float(self.max), sampling=self.sampling,
                        default=float(default))


@dataclasses.dataclass(frozen=True)
class Space:
    """An ordered set of :class:`Param`; see the module docstring.

    Example:
        >>> sorted(DEFAULT_SPACE.to_dict())[:3]
        ['activation', 'batch_size', 'dropout']
    """

    params: tuple[Param, ...]

    def __getitem__(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(name)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    @property
    def names(self) -> list[str]:
        return [param.name for param in self.params]

    def active(self) -> list[Param]:
        """The parameters a trial declares: all but the :data:`OPT_IN` ones left off.

        Example:
            >>> "lr_schedule" in [param.name for param in DEFAULT_SPACE.active()]
            False
        """
        return [param for param in self.params
                if not (param.name in OPT_IN and param.values == (OPT_IN[param.name],))]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (stored in the search directory to detect changes)."""
        return {param.name: param.to_dict() for param in self.active()}

    def narrow(self, changes: Mapping[str, Any]) -> Space:
        """A copy with some parameters narrowed; unknown names are refused."""
        if not isinstance(changes, Mapping):
            raise ConfigError("the search space file must hold a JSON object "
                              "{\"name\": value | [values] | {\"min\": …, \"max\": …}}")
        unknown = sorted(set(changes) - set(self.names))
        if unknown:
            raise ConfigError(
                f"unknown search space key(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(self.names)}"
            )
        params = tuple(
            param.narrow(changes[param.name]) if param.name in changes else param
            for param in self.params
        )
        return Space(params)

    def layer_counts(self) -> list[int]:
        return sorted(self["num_layers"].possible_values())

    def declare(self, hp: Any) -> dict[str, Any]:
        """Register every parameter on KerasTuner's ``hp``; return the active values.

        ``units_i`` is active only when ``num_layers > i``; ``momentum`` only with SGD.
        """
        values: dict[str, Any] = {}
        for param in self.active():
            if param.name == "units":
                counts = self.layer_counts()
                # Defaults: the seed network's layer sizes (500, 250), then the param's own.
                seed_units = ModelConfig().hidden_units
                for layer in range(max(counts)):
                    name = f"units_{layer}"
                    default = seed_units[layer] if layer < len(seed_units) else None
                    parents = [count for count in counts if count > layer]
                    if len(parents) == len(counts):
                        values[name] = param.declare(hp, name, default)
                    else:
                        with hp.conditional_scope("num_layers", parents):
                            values[name] = param.declare(hp, name, default)
            elif param.name == "momentum":
                optimizers = self["optimizer"].possible_values()
                if "sgd" not in optimizers:
                    continue
                if optimizers == ["sgd"]:
                    values[param.name] = param.declare(hp)
                else:
                    with hp.conditional_scope("optimizer", ["sgd"]):
                        values[param.name] = param.declare(hp)
            else:
                values[param.name] = param.declare(hp)
        return {name: value for name, value in values.items() if value is not None}

    def model_config(
        self, values: Mapping[str, Any], base: ModelConfig | None = None
    ) -> ModelConfig:
        """The :class:`ModelConfig` of one trial: ``base`` with the tuned fields replaced.

        Example:
            >>> DEFAULT_SPACE.model_config({"num_layers": 2, "units_0": 32, "units_1": 16,
            ...                             "dropout": 0.25}).hidden_units
            (32, 16)
        """
        base = base or ModelConfig()
        changes: dict[str, Any] = {}
        if "num_layers" in values:
            changes["hidden_units"] = tuple(
                int(values[f"units_{layer}"]) for layer in range(int(values["num_layers"]))
            )
        changes.update({name: value for name, value in values.items() if name in _MODEL_FIELDS})
        return base.replace(**changes)


_MODEL_FIELDS = frozenset(field.name for field in dataclasses.fields(ModelConfig))


def check_value(name: str, value: Any) -> None:
    """Raise the :class:`ConfigError` of the config that one value of the hyperparameter
    ``name`` gives: ranges and types are the configs' rules, not repeated here.

    Example:
        >>> check_value("dropout", 1.0)
        Traceback (most recent call last):
        kerasdnn.core.errors.ConfigError: dropout must be a number in [0, 1), got 1.0
    """
    if name == "num_layers":  # the space's own bound: units_0 … units_7 are declared
        if not (_is_int(value) and 1 <= value <= MAX_LAYERS):
            raise ConfigError(f"num_layers must be an integer from 1 to {MAX_LAYERS}, "
                              f"got {value!r}")
    elif name == "units":
        ModelConfig(hidden_units=(value,))
    elif name == "batch_size":
        TrainConfig(batch_size=value)
    elif name == "class_weight":  # "none" stands for None (a KerasTuner choice is no None)
        if value not in ("none", "balanced"):
            raise ConfigError(f'class_weight must be "none" or "balanced", got {value!r}')
    else:
        ModelConfig(**{name: value})


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


DEFAULT_SPACE = Space((
    Param("num_layers", "int", 2, min=1, max=4),
    Param("units", "int", 256, min=16, max=1024, sampling="log"),
    Param("activation", "choice", "relu",
          values=("relu", "gelu", "elu", "selu", "tanh", "swish", "leaky_relu")),
    Param("dropout", "float", 0.0, min=0.0, max=0.5),
    Param("l2", "choice", 0.0, values=(0.0, 1e-6, 1e-5, 1e-4, 1e-3)),
    Param("optimizer", "choice", "sgd", values=OPTIMIZERS),
    Param("learning_rate", "float", 0.01, min=1e-4, max=0.1, sampling="log"),
    Param("momentum", "float", 0.9, min=0.0, max=0.99),
    Param("batch_size", "choice", TrainConfig.batch_size, values=(32, 64, 100, 128, 256)),
    # OPT_IN: e.g. {"lr_schedule": ["constant", "cosine"], "warmup_epochs": [0, 1],
    # "class_weight": ["none", "balanced"]} in a --space file
    Param("lr_schedule", "choice", "constant", values=("constant",)),
    Param("warmup_epochs", "choice", 0, values=(0,)),
    Param("class_weight", "choice", "none", values=("none",)),
))


def load_space(path: str | Path | None) -> Space:
    """:data:`DEFAULT_SPACE`, narrowed by the JSON file at ``path`` (``None``: unchanged).

    Example:
        >>> load_space(None) == DEFAULT_SPACE
        True
    """
    if path is None:
        return DEFAULT_SPACE
    path = Path(path)
    changes = read_json_file(path, "--space", '{"optimizer": "adam", "num_layers": [1, 2]}')
    try:
        return DEFAULT_SPACE.narrow(changes)
    except ConfigError as error:
        raise ConfigError(f"--space {path}: {error}") from None
