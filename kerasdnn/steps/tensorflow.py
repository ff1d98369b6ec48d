"""The TensorFlow training step (a ``tf.function``; XLA when ``jit_compile``).

Laid out like ``keras/src/backend/tensorflow/trainer.py``: Keras traces
``train_step`` into its ``tf.function`` (honouring ``jit_compile`` and
``steps_per_execution``); the update and the skip are the two branches of one
``tf.cond``, so nothing waits on the host.

Example:
    >>> class MyModel(TensorFlowStep, keras.Model): ...  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from kerasdnn.steps import (
    GRAD_NORM,
    SKIPPED_STEPS,
    clip_factor,
    global_norm,
    handles_overflow,
    is_finite,
    loss_scale,
    lower_loss_scale,
)

__all__ = ["TensorFlowStep"]


class TensorFlowStep:
    """``train_step``/``test_step`` for ``keras.Model`` subclasses on TensorFlow.

    The model provides ``clipnorm``, ``grad_norm_tracker`` and
    ``skipped_steps_tracker`` (see :class:`kerasdnn.models.DNN`).
    """

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        saved = [tf.identity(v.value) for v in self.non_trainable_variables]

        # Forward pass
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
            scaled_loss = self.optimizer.scale_loss(loss)

        # Compute gradients and their global norm (unscaled, before clipping)
        trainable_weights = self.trainable_weights
        gradients = tape.gradient(scaled_loss, trainable_weights)
        norm = global_norm(gradients)
        scale = loss_scale(self.optimizer)
        if scale is not None:
            norm = norm / scale
        finite = is_finite(loss, norm)
        if self.clipnorm:
            factor = clip_factor(norm, self.clipnorm)
            gradients = [g * tf.cast(factor, g.dtype) for g in gradients]

        def update() -> None:
            self.optimizer.apply(gradients, trainable_weights)
            self._loss_tracker.update_state(loss, sample_weight=tf.shape(y_pred)[0])
            self.grad_norm_tracker.update_state(norm)
            self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

        def skip() -> None:
            for variable, value in zip(self.non_trainable_variables, saved, strict=True):
                variable.assign(value)
            self.skipped_steps_tracker.update_state()
            if handles_overflow(self.optimizer):
                tf.cond(tf.math.is_finite(loss),
                        lambda: lower_loss_scale(self.optimizer), lambda: None)

        # Update weights, or leave everything as it was
        tf.cond(finite, update, skip)
        return self.get_metrics_result()

    def test_step(self, data: Any) -> dict[str, Any]:
        logs = super().test_step(data)
        logs.pop(GRAD_NORM, None)
        logs.pop(SKIPPED_STEPS, None)
        return logs
