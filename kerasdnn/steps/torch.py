"""The PyTorch training step (eager unless ``jit_compile=True``).

Laid out like ``keras/src/backend/torch/trainer.py``: ``zero_grad``,
``backward``, then ``optimizer.apply`` under ``torch.no_grad``.  Deciding
between the update and the skip reads one boolean from the device per step
(as ``torch.amp.GradScaler`` and Keras's ``LossScaleOptimizer`` do on PyTorch).

Example:
    >>> class MyModel(TorchStep, keras.Model): ...  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import keras
import torch

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

__all__ = ["TorchStep"]


class TorchStep:
    """``train_step``/``test_step`` for ``keras.Model`` subclasses on PyTorch.

    The model provides ``clipnorm``, ``grad_norm_tracker`` and
    ``skipped_steps_tracker`` (see :class:`kerasdnn.models.DNN`).
    """

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        non_trainable = self.non_trainable_variables
        saved = [v.value.detach().clone() for v in non_trainable] if non_trainable else []

        # Forward pass
        y_pred = self(x, training=True)
        self.zero_grad()
        loss = self.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )
        scaled_loss = self.optimizer.scale_loss(loss)

        # Compute gradients and their global norm (unscaled, before clipping)
        scaled_loss.backward()
        trainable_weights = self.trainable_weights[:]
        gradients = [v.value.grad for v in trainable_weights]
        with torch.no_grad():
            norm = global_norm(gradients)
            scale = loss_scale(self.optimizer)
            if scale is not None:
                norm = norm / scale
            finite = bool(is_finite(loss, norm))
            if self.clipnorm:
                factor = clip_factor(norm, self.clipnorm)
                gradients = [g * factor.to(g.dtype) for g in gradients]

            # Leave everything as it was, or update the weights
            if not finite:
                for variable, value in zip(non_trainable, saved, strict=True):
                    variable.assign(value)
                self.skipped_steps_tracker.update_state()
                if handles_overflow(self.optimizer) and bool(torch.isfinite(loss)):
                    lower_loss_scale(self.optimizer)
                return self.get_metrics_result()
            self.optimizer.apply(gradients, trainable_weights)
            self._loss_tracker.update_state(loss, sample_weight=y_pred.shape[0])
            self.grad_norm_tracker.update_state(norm)
            return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data: Any) -> dict[str, Any]:
        logs = super().test_step(data)
        logs.pop(GRAD_NORM, None)
        logs.pop(SKIPPED_STEPS, None)
        return logs
