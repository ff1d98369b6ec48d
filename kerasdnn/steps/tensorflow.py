"""The TensorFlow training step (a ``tf.function``; XLA when ``jit_compile``).

Laid out like ``keras/src/backend/tensorflow/trainer.py``: Keras traces
``train_step`` into its ``tf.function`` (honouring ``jit_compile`` and
``steps_per_execution``); the update and the skip are the two branches of one
``tf.cond``, so nothing waits on the host.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from kerasdnn.steps import (
    distributed,
    global_norm,
    guard_gradients,
    handles_overflow,
    loss_scale,
    lower_loss_scale,
    update_metrics,
    validation_logs,
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
        norm, summed_loss = _global_norm_and_loss(gradients, loss)
        gradients, norm, finite = guard_gradients(
            gradients, summed_loss, norm, loss_scale(self.optimizer), self.clipnorm)

        # Update weights, or leave everything as it was
        branch_args = (gradients, loss, norm, x, y, y_pred, sample_weight, saved)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            tf.cond(finite, lambda: self._update(*branch_args),
                    lambda: self._skip(*branch_args))
        else:
            # The optimizer's all-reduce (a merge_call) may not sit in a replica's
            # tf.cond: the cond goes to the cross-replica context, as Keras's
            # LossScaleOptimizer does it; `finite` is the same on every replica.
            context.merge_call(self._cross_replica_cond, args=(finite, branch_args))
        return self.get_metrics_result()

    def _update(self, gradients: list, loss: Any, norm: Any, x: Any, y: Any, y_pred: Any,
                sample_weight: Any, saved: list) -> None:
        self.optimizer.apply(gradients, self.trainable_weights)
        update_metrics(self, _unscaled(loss), norm, x, y, y_pred, sample_weight)

    def _skip(self, gradients: list, loss: Any, norm: Any, x: Any, y: Any, y_pred: Any,
              sample_weight: Any, saved: list) -> None:
        for variable, value in zip(self.non_trainable_variables, saved, strict=True):
            variable.assign(value)
        self.skipped_steps_tracker.update_state()
        if handles_overflow(self.optimizer):
            tf.cond(tf.math.is_finite(loss),
                    lambda: lower_loss_scale(self.optimizer), lambda: None)

    def _cross_replica_cond(self, strategy: Any, finite: Any, branch_args: tuple) -> None:
        def each_replica(branch: Any) -> Any:
            return lambda: strategy.extended.call_for_each_replica(branch, args=branch_args)

        first = strategy.experimental_local_results(finite)[0]
        tf.cond(first, each_replica(self._update), each_replica(self._skip))

    def test_step(self, data: Any) -> dict[str, Any]:
        if distributed():  # padded batches: their real rows only count
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            y_pred = self(x, training=False)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                     training=False)
            update_metrics(self, _unscaled(loss), None, x, y, y_pred, sample_weight)
            # Keras averages the replicas' own results (its logs, once they lack
            # grad_norm and skipped_steps), which is not the whole's result when the
            # replicas count different rows: the results are read across replicas.
            logs = tf.distribute.get_replica_context().merge_call(
                lambda _: self.get_metrics_result())
        else:
            logs = super().test_step(data)
        return validation_logs(logs)


def _unscaled(loss: Any) -> Any:
    """The loss as one replica's share of the global batch would not show it: Keras
    divides it by the replicas in sync (``scale_loss_for_distribution``), so that
    summing the replicas' gradients gives the global batch's; stock Keras logs it
    multiplied back (``unscale_loss_for_distribution``, not public API), as here."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss * tf.cast(replicas, loss.dtype) if replicas > 1 else loss


def _global_norm_and_loss(gradients: list, loss: Any) -> tuple[Any, Any]:
    """The global norm of the global batch's gradients and the sum of the replicas'
    losses: under a ``tf.distribute`` strategy with several replicas each replica holds
    only its share, so both are summed across replicas first (one extra all-reduce
    of the gradients; the optimizer all-reduces them again to apply them), which also
    makes every replica take the same update-or-skip branch."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return global_norm(gradients), loss
    summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [*gradients, loss])
    return global_norm(summed[:-1]), summed[-1]
