"""Learning-rate schedules with warm-up, from Keras's own schedules and callbacks.

:func:`learning_rate_schedule` turns a :class:`~kerasdnn.core.config.ModelConfig`'s
``lr_schedule``, ``warmup_epochs``, ``min_lr``, ``lr_drop`` and ``lr_drop_every``
into what the optimizer's ``learning_rate`` takes, per optimizer step ``s`` (``S``
steps per epoch, ``W = warmup_epochs * S`` warm-up steps, ``E`` epochs):

* warm-up, every schedule but plateau: ``lr * s / W`` while ``s < W``;
* ``constant``: ``lr``;
* ``cosine``: Keras's ``CosineDecay`` (its own warm-up), from ``lr`` to ``min_lr``
  over the ``E * S - W`` steps after the warm-up;
* ``step``: Keras's ``ExponentialDecay`` with ``staircase=True``:
  ``max(min_lr, lr * lr_drop ** floor((s - W) / (lr_drop_every * S)))``;
* ``plateau``: a constant rate that Keras's ``ReduceLROnPlateau``
  (:func:`schedule_callbacks`) multiplies by ``lr_drop`` after ``lr_drop_every``
  epochs without a better validation loss, down to ``min_lr``.

The rate is a function of the optimizer's ``iterations`` (saved with its slots), and
the plateau callback's state is in the run's checkpoint, so a resumed run continues
the schedule where it stopped.  :class:`LearningRateLog` writes each epoch's rate
(that of its first step) into the epoch's logs: the ``learning_rate`` column of
``history.csv`` and a panel of ``history.png``.

Example:
    >>> from kerasdnn.core.config import ModelConfig
    >>> config = ModelConfig(lr_schedule="step", learning_rate=0.1, lr_drop=0.5,
    ...                      lr_drop_every=1, warmup_epochs=1)
    >>> schedule = learning_rate_schedule(config, epochs=3, steps_per_epoch=2)
    >>> [round(float(schedule(step)), 4) for step in range(6)]
    [0.0, 0.05, 0.1, 0.1, 0.05, 0.05]
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasdnn.core.config import ModelConfig, check_warmup

__all__ = [
    "LR_LOG",
    "LearningRateLog",
    "Warmup",
    "attach_schedule",
    "learning_rate_schedule",
    "schedule_callbacks",
]

LR_LOG = "learning_rate"  # the history column (the name Keras's own callbacks log)


@keras.saving.register_keras_serializable(package="kerasdnn")
class Warmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``target`` over ``warmup_steps``, then ``after``
    (a schedule counted from the warm-up's end; ``None``: ``target``) floored at
    ``floor``.  Keras's ``CosineDecay`` has a warm-up, its other schedules have none:
    this adds the same one to them.

    Example:
        >>> schedule = Warmup(0.1, warmup_steps=4)
        >>> [round(float(schedule(step)), 3) for step in (0, 2, 4, 9)]
        [0.0, 0.05, 0.1, 0.1]
    """

    def __init__(self, target: float, warmup_steps: int = 0, after: Any = None,
                 floor: float = 0.0) -> None:
        super().__init__()
        self.target = float(target)
        self.warmup_steps = int(warmup_steps)
        self.after = keras.optimizers.schedules.deserialize(after) if isinstance(
            after, dict) else after
        self.floor = float(floor)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        if self.after is None:
            rate = ops.convert_to_tensor(self.target, "float32")
        else:
            since = ops.maximum(step - float(self.warmup_steps), 0.0)
            rate = ops.maximum(ops.cast(self.after(since), "float32"), self.floor)
        if not self.warmup_steps:
            return rate
        warm = self.target * step / float(self.warmup_steps)
        return ops.where(step < float(self.warmup_steps), warm, rate)

    def get_config(self) -> dict[str, Any]:
        after = (None if self.after is None
                 else keras.optimizers.schedules.serialize(self.after))
        return {"target": self.target, "warmup_steps": self.warmup_steps, "after": after,
                "floor": self.floor}


def learning_rate_schedule(config: ModelConfig, epochs: int, steps_per_epoch: int) -> Any:
    """What the optimizer's ``learning_rate`` is for ``config``'s schedule: a
    ``LearningRateSchedule``, or the float ``learning_rate`` (``constant`` without
    warm-up, and ``plateau``, whose callback changes the optimizer's rate variable).

    Raises:
        ConfigError: a warm-up as long as the run (``cosine`` needs steps to decay
            over; a warm-up of every epoch never reaches the rate).

    Example:
        >>> learning_rate_schedule(ModelConfig(), epochs=10, steps_per_epoch=5)
        0.01
    """
    lr, name = config.learning_rate, config.lr_schedule
    warmup_steps = config.warmup_epochs * steps_per_epoch
    check_warmup(config, epochs)
    if name == "plateau" or (name == "constant" and not warmup_steps):
        return float(lr)
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else lr,
            decay_steps=epochs * steps_per_epoch - warmup_steps,
            alpha=config.min_lr / lr,
            warmup_target=lr if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    after = None
    if name == "step":
        after = keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=config.lr_drop_every * steps_per_epoch,
            decay_rate=config.lr_drop, staircase=True)
    return Warmup(lr, warmup_steps, after, floor=config.min_lr if after else 0.0)


def attach_schedule(model: Any, epochs: int, steps_per_epoch: int) -> None:
    """Give the compiled ``model``'s optimizer its config's schedule (before the
    optimizer is built or a checkpoint restored: the schedule replaces the rate
    variable, which changes the optimizer's variables).

    Example:
        >>> import kerasdnn
        >>> model = kerasdnn.build_model(input_shape=(4,), hidden_units=(3,),
        ...                              lr_schedule="cosine")
        >>> attach_schedule(model, epochs=2, steps_per_epoch=5)
        >>> rate = float(model.optimizer.learning_rate)  # CosineDecay at step 0
        >>> type(model.optimizer._learning_rate).__name__, round(rate, 6)
        ('CosineDecay', 0.01)
    """
    schedule = learning_rate_schedule(model.model_config, epochs, steps_per_epoch)
    if isinstance(schedule, float):
        return
    optimizer = model.optimizer
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's
    inner.learning_rate = schedule


def schedule_callbacks(config: ModelConfig, monitor: str) -> list[keras.callbacks.Callback]:
    """The callbacks of ``config``'s schedule (``plateau``: ``ReduceLROnPlateau`` on
    ``monitor``), then :class:`LearningRateLog`.

    Example:
        >>> [type(c).__name__ for c in schedule_callbacks(
        ...     ModelConfig(lr_schedule="plateau"), "val_loss")]
        ['ReduceLROnPlateau', 'LearningRateLog']
    """
    callbacks: list[keras.callbacks.Callback] = []
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=config.lr_drop, patience=config.lr_drop_every,
            min_lr=config.min_lr, verbose=0))
    return [*callbacks, LearningRateLog()]


class LearningRateLog(keras.callbacks.Callback):
    """Adds ``learning_rate`` to each epoch's logs: the rate of the epoch's first step
    (read when the epoch begins, before any plateau drop at its end).

    Example:
        >>> import numpy as np
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        >>> history = model.fit(np.ones((4, 2)), np.ones(4), epochs=2, verbose=0,
        ...                     callbacks=[LearningRateLog()])
        >>> history.history[LR_LOG]
        [0.5, 0.5]
    """

    def __init__(self) -> None:
        super().__init__()
        self._rate = float("nan")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        optimizer = self.model.optimizer
        self._rate = float(ops.convert_to_numpy(optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs[LR_LOG] = self._rate
