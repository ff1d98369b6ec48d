"""The model factory: :func:`build_model` and the :class:`DNN` it returns.

A :class:`DNN` is a dense classifier — optional ``Flatten``, then for each
hidden layer ``Dense`` (with an L2 kernel penalty when ``l2 > 0``), optional
``BatchNormalization`` and optional ``Dropout`` — ending in a ``Dense`` layer
that outputs **logits** (float32, even under mixed precision): ``num_classes``
of them, or one for a binary problem.  It trains with the custom step of the
active backend (:mod:`kerasdnn.network.steps`) and is registered serializable, so a
saved ``.keras`` file loads on any backend.

Same seed, same initial weights on every backend: kernels come from
:class:`~kerasdnn.network.initializers.NumpyGlorotUniform` seeded with
``(config.seed, index of the Dense layer)``, biases are zeros.

Example:
    >>> from kerasdnn.network.models import build_model
    >>> model = build_model(hidden_units=(500, 250))
    >>> model.count_params()
    520260
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from kerasdnn.core.config import ModelConfig
from kerasdnn.core.errors import ConfigError
from kerasdnn.network.initializers import NumpyGlorotUniform
from kerasdnn.network.step_metrics import LogitsAUC, SkippedSteps
from kerasdnn.network.steps import GRAD_NORM, SKIPPED_STEPS, step_class
from kerasdnn.training.schedules import Warmup  # noqa: F401  (registered: a saved optimizer may use it)

__all__ = ["DNN", "build_model"]

_MIXED_POLICY = "mixed_float16"


@keras.saving.register_keras_serializable(package="kerasdnn")
class DNN(step_class(), keras.Model):
    """A dense classifier built from a :class:`~kerasdnn.core.config.ModelConfig`.

    ``DNN(config)`` builds the layers (weights included) but does not compile;
    :func:`build_model` builds *and* compiles, and is what users call.

    Attributes:
        model_config: the :class:`~kerasdnn.core.config.ModelConfig` it was built from.
        clipnorm: global-norm clipping threshold of the training step (``None``: off).
        grad_norm_tracker: ``keras.metrics.Mean`` of the global gradient norm
            (logged as ``grad_norm``; reset each epoch like every metric).
        skipped_steps_tracker: :class:`~kerasdnn.network.step_metrics.SkippedSteps`, the
            running count of training steps skipped because the loss or a
            gradient was not finite (logged as ``skipped_steps``; never reset;
            saved in ``.keras`` files and weight checkpoints).  Neither is a
            model weight: ``count_params()`` counts the network only.

    Example:
        >>> model = DNN(ModelConfig(input_shape=(64,), hidden_units=(32,)))
        >>> [layer.name for layer in model.layers]
        ['inputs', 'hidden_1', 'logits']
    """

    def __init__(self, model_config: ModelConfig | Mapping[str, Any] | None = None,
                 name: str = "dnn", **kwargs: Any) -> None:
        config = _as_model_config(model_config)
        inputs = keras.Input(shape=config.input_shape, name="inputs")
        super().__init__(inputs=inputs, outputs=_layer_stack(config, inputs), name=name,
                         **kwargs)
        self.model_config = config
        self.clipnorm = config.clipnorm
        self.grad_norm_tracker = keras.metrics.Mean(name=GRAD_NORM)
        self.skipped_steps_tracker = SkippedSteps()

    @property
    def skipped_steps(self) -> int:
        """Training steps skipped so far by the non-finite guard."""
        return int(keras.ops.convert_to_numpy(self.skipped_steps_tracker.result()))

    def save_own_variables(self, store: Any) -> None:
        """Keras's own variables, plus the skipped-steps count (so that ``.keras``
        files and run checkpoints (kerasdnn.training.checkpoint) carry it)."""
        super().save_own_variables(store)
        store[SKIPPED_STEPS] = self.skipped_steps_tracker.count

    def load_own_variables(self, store: Any) -> None:
        # Keras's weight stores offer keys() but not iteration or `in`.
        keys = list(store.keys())
        super().load_own_variables({key: store[key] for key in keys if key != SKIPPED_STEPS})
        if SKIPPED_STEPS in keys:
            self.skipped_steps_tracker.count.assign(store[SKIPPED_STEPS])

    def get_compile_config(self) -> dict[str, Any] | None:
        """Keras's compile config, with backend-neutral optimizer entries."""
        config = super().get_compile_config()
        return _portable(config) if config else config

    def compile_from_config(self, config: Mapping[str, Any]) -> None:
        """Compile a loaded model, whichever backend saved it.

        Keras 3.15 records the PyTorch optimizers under their backend module
        (``keras.src.backend.torch.optimizers...``), which other backends then
        import; such entries are mapped back to ``keras.optimizers``.
        """
        super().compile_from_config(_portable(dict(config)))

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "model_config": self.model_config.to_dict()}
        frozen = [layer.name for layer in self.layers if not layer.trainable]
        if frozen:  # fine-tuning's --freeze: the optimizer's slots depend on it
            config["frozen"] = frozen
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects: Any = None) -> DNN:
        model = cls(ModelConfig.from_dict(config["model_config"]), name=config.get("name", "dnn"))
        for name in config.get("frozen", ()):
            model.get_layer(name).trainable = False
        return model


def build_model(config: ModelConfig | Mapping[str, Any] | None = None,
                **overrides: Any) -> DNN:
    """A compiled :class:`DNN` from a config and/or keyword overrides.

    Args:
        config: a :class:`~kerasdnn.core.config.ModelConfig`, a mapping of its
            fields (e.g. parsed JSON), or ``None`` for the defaults (the seed
            network 784-500-250-10, SGD lr 0.01 momentum 0.9).
        **overrides: ``ModelConfig`` fields that replace those of ``config``.

    Raises:
        ConfigError: an unknown field (the known ones are listed) or an
            invalid value (the parameter and its allowed values are named).

    Example:
        >>> model = build_model(input_shape=(64,), hidden_units=(32, 16), optimizer="adam")
        >>> model.model_config.optimizer, model.output_shape
        ('adam', (None, 10))
    """
    config = _as_model_config(config)
    if overrides:
        config = ModelConfig.from_dict({**config.to_dict(), **overrides})
    model = DNN(config)
    model.compile(
        optimizer=_optimizer(config),
        loss=_loss(config),
        # Weighted: a data-parallel batch's zero-weight filler rows must not count.
        weighted_metrics=[_metric(config, name) for name in config.metrics],
        jit_compile=config.jit_compile,
        steps_per_execution=config.steps_per_execution,
    )
    return model


def _as_model_config(config: ModelConfig | Mapping[str, Any] | None) -> ModelConfig:
    if config is None:
        return ModelConfig()
    if isinstance(config, ModelConfig):
        return config
    if isinstance(config, Mapping):
        return ModelConfig.from_dict(config)
    raise ConfigError(
        f"config must be a ModelConfig, a mapping of its fields or None, "
        f"got {type(config).__name__}"
    )


def _portable(config: Any) -> Any:
    """``config`` with backend-specific optimizer modules replaced by ``keras.optimizers``."""
    if isinstance(config, Mapping):
        config = {key: _portable(value) for key, value in config.items()}
        module = config.get("module")
        if isinstance(module, str) and module.startswith("keras.src.backend."):
            config["module"] = "keras.optimizers"
            config["registered_name"] = None
        return config
    if isinstance(config, list):
        return [_portable(item) for item in config]
    return config


def _layer_stack(config: ModelConfig, inputs: Any) -> Any:
    policy = _MIXED_POLICY if config.mixed_precision else None
    x = inputs
    if len(config.input_shape) > 1:
        x = keras.layers.Flatten(name="flatten", dtype=policy)(x)
    regularizer = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    for index, units in enumerate(config.hidden_units):
        number = index + 1
        x = keras.layers.Dense(
            units,
            activation=config.activation,
            kernel_initializer=NumpyGlorotUniform((config.seed, index)),
            bias_initializer="zeros",
            kernel_regularizer=regularizer,
            dtype=policy,
            name=f"hidden_{number}",
        )(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization(name=f"batch_norm_{number}", dtype=policy)(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, seed=config.seed + number,
                                     name=f"dropout_{number}", dtype=policy)(x)
    return keras.layers.Dense(
        config.output_units,
        kernel_initializer=NumpyGlorotUniform((config.seed, len(config.hidden_units))),
        bias_initializer="zeros",
        kernel_regularizer=regularizer,
        dtype="float32",
        name="logits",
    )(x)


def _optimizer(config: ModelConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(config.learning_rate, momentum=config.momentum)
    elif config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(config.learning_rate)
    else:
        optimizer = keras.optimizers.AdamW(config.learning_rate,
                                           weight_decay=config.weight_decay)
    if config.mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _loss(config: ModelConfig) -> keras.losses.Loss:
    if config.binary:
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _metric(config: ModelConfig, name: str) -> keras.metrics.Metric:
    if name == "auc":
        return LogitsAUC(num_classes=config.num_classes, name="auc")
    if config.binary:
        return keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
