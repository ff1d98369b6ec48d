"""The JAX training step (stateless, jitted by Keras).

Laid out like ``keras/src/backend/jax/trainer.py``: ``train_step(state, data)``
returns ``(logs, state)`` with ``state = (trainable_variables,
non_trainable_variables, optimizer_variables, metrics_variables)``.  The loss
function is ``_loss_and_updates`` (Keras's own ``compute_loss_and_updates``
is neither overridden nor reused: its return shape differs).  The update and
the skip are the two branches of one ``jax.lax.cond``, so nothing waits on
the host.

With ``steps_per_execution=K > 1`` (and ``jit_compile``), K consecutive
batches of one shape run as one compiled ``jax.lax.scan`` over the step,
where Keras 3.15 calls the jitted single step K times from Python: one
dispatch and one host round trip per K steps.  The steps are the same; only
the loop moved into XLA.

Example:
    >>> class MyModel(JAXStep, keras.Model): ...  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import keras
import numpy as np

from kerasdnn.steps import (
    GRAD_NORM,
    SKIPPED_STEPS,
    batch_rows,
    clip_factor,
    global_norm,
    handles_overflow,
    is_finite,
    loss_scale,
    lower_loss_scale,
    metric_weights,
)

__all__ = ["JAXStep"]


class JAXStep:
    """``train_step``/``test_step`` for ``keras.Model`` subclasses on JAX.

    The model provides ``clipnorm``, ``grad_norm_tracker`` and
    ``skipped_steps_tracker`` (see :class:`kerasdnn.models.DNN`).
    """

    def train_step(self, state: tuple, data: Any) -> tuple[dict[str, Any], tuple]:
        (
            trainable_variables,
            non_trainable_variables,
            optimizer_variables,
            metrics_variables,
        ) = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

        # Forward pass, gradients and their global norm (unscaled, before clipping)
        grad_fn = jax.value_and_grad(self._loss_and_updates, has_aux=True)
        (_, aux), gradients = grad_fn(
            trainable_variables,
            non_trainable_variables,
            metrics_variables,
            optimizer_variables,
            x,
            y,
            sample_weight,
        )
        loss, y_pred, new_non_trainable_variables, new_metrics_variables, scale = aux
        norm = global_norm(gradients)
        if scale is not None:
            norm = norm / scale
        finite = is_finite(loss, norm)
        if self.clipnorm:
            factor = clip_factor(norm, self.clipnorm)
            gradients = [g * factor.astype(g.dtype) for g in gradients]

        def update() -> tuple:
            new_trainable, new_optimizer = self.optimizer.stateless_apply(
                optimizer_variables, gradients, trainable_variables
            )
            new_metrics = self._updated_metrics_variables(
                new_metrics_variables, loss, norm, x, y, y_pred, sample_weight
            )
            return (new_trainable, list(new_non_trainable_variables),
                    list(new_optimizer), new_metrics)

        def skip() -> tuple:
            kept_optimizer = list(optimizer_variables)
            if handles_overflow(self.optimizer):
                kept_optimizer = jax.lax.cond(
                    jax.numpy.isfinite(loss),
                    lambda: self._lowered_loss_scale(optimizer_variables),
                    lambda: kept_optimizer,
                )
            return (list(trainable_variables), list(non_trainable_variables), kept_optimizer,
                    self._counted_skip(metrics_variables))

        # Update weights, or leave everything as it was
        state = jax.lax.cond(finite, update, skip)
        return self._metrics_result(state[3]), state

    def make_train_function(self, force: bool = False) -> None:
        """Keras's train function, but K steps per execution run as one ``lax.scan``."""
        if self.train_function is not None and not force:
            return
        if (self.steps_per_execution == 1 or self.run_eagerly or not self.jit_compile
                or keras.distribution.distribution() is not None):
            super().make_train_function(force)
            return
        self.train_function = _scanned_steps(self.train_step, self.steps_per_execution)

    def test_step(self, state: tuple, data: Any) -> tuple[dict[str, Any], tuple]:
        logs, state = super().test_step(state, data)
        logs.pop(GRAD_NORM, None)
        logs.pop(SKIPPED_STEPS, None)
        return logs, state

    def _loss_and_updates(
        self,
        trainable_variables: list,
        non_trainable_variables: list,
        metrics_variables: list,
        optimizer_variables: list,
        x: Any,
        y: Any,
        sample_weight: Any,
    ) -> tuple[Any, tuple]:
        """Stock ``compute_loss_and_updates`` with ``training=True`` (for
        ``jax.value_and_grad``): ``(scaled_loss, (loss, y_pred,
        non_trainable_variables, metrics_variables, loss_scale))``."""
        y_pred, non_trainable_variables, losses = self.stateless_call(
            trainable_variables, non_trainable_variables, x, return_losses=True, training=True
        )
        if losses:
            # Make forward pass losses (regularization) available to compute_loss.
            self._losses_override.clear()
            self._losses_override = losses
        loss, (_, non_trainable_variables, metrics_variables) = self.stateless_compute_loss(
            trainable_variables,
            non_trainable_variables,
            metrics_variables,
            x=x,
            y=y,
            y_pred=y_pred,
            sample_weight=sample_weight,
            training=True,
        )
        if losses:
            self._losses_override.clear()

        # Handle loss scaling
        mapping = list(zip(self.optimizer.variables, optimizer_variables, strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            scaled_loss = self.optimizer.scale_loss(loss)
            scale = loss_scale(self.optimizer)
        return scaled_loss, (loss, y_pred, non_trainable_variables, metrics_variables, scale)

    def _updated_metrics_variables(
        self, metrics_variables: list, loss: Any, norm: Any, x: Any, y: Any, y_pred: Any,
        sample_weight: Any,
    ) -> list:
        mapping = list(zip(self.metrics_variables, metrics_variables, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._loss_tracker.update_state(loss, sample_weight=batch_rows(y_pred, sample_weight))
            self.grad_norm_tracker.update_state(norm)
            self.compute_metrics(x, y, y_pred, sample_weight=metric_weights(sample_weight))
        return [scope.get_current_value(v) for v in self.metrics_variables]

    def _metrics_result(self, metrics_variables: list) -> dict[str, Any]:
        mapping = list(zip(self.metrics_variables, metrics_variables, strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            return self.get_metrics_result()

    def _counted_skip(self, metrics_variables: list) -> list:
        mapping = list(zip(self.metrics_variables, metrics_variables, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self.skipped_steps_tracker.update_state()
        return [scope.get_current_value(v) for v in self.metrics_variables]

    def _lowered_loss_scale(self, optimizer_variables: list) -> list:
        mapping = list(zip(self.optimizer.variables, optimizer_variables, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            lower_loss_scale(self.optimizer)
        return [scope.get_current_value(v) for v in self.optimizer.variables]


def _scanned_steps(train_step: Callable, steps: int) -> Callable:
    """``iterator_step(state, iterator) -> (logs, state)`` running up to ``steps``
    batches from ``iterator``: a run of batches of one shape as one jitted
    ``lax.scan`` (state donated, as Keras does), the others (an epoch's shorter
    last batch) one jitted step each."""
    one_step = jax.jit(train_step, donate_argnums=0)

    def scan_body(state: tuple, data: Any) -> tuple[tuple, dict[str, Any]]:
        logs, state = train_step(state, data)
        return state, logs

    def _many_steps(state: tuple, stacked: Any) -> tuple[dict[str, Any], tuple]:
        state, logs = jax.lax.scan(scan_body, state, stacked)
        return jax.tree.map(lambda value: value[-1], logs), state

    many_steps = jax.jit(_many_steps, donate_argnums=0)

    def iterator_step(state: tuple, iterator: Iterator) -> tuple[dict[str, Any], tuple]:
        batches = list(itertools.islice(iterator, steps))
        if not batches:
            raise StopIteration
        logs: dict[str, Any] = {}
        for run in _same_shape_runs(batches):
            if len(run) == 1:
                logs, state = one_step(state, run[0])
            else:
                stacked = jax.tree.map(_stack, *run)
                logs, state = many_steps(state, stacked)
        return logs, state

    return iterator_step


def _stack(*arrays: Any) -> Any:
    """Host arrays stacked on the host; arrays already on a device, on the device."""
    if all(isinstance(array, np.ndarray) for array in arrays):
        return np.stack(arrays)
    return jax.numpy.stack(arrays)


def _same_shape_runs(batches: list) -> Iterator[list]:
    """Consecutive batches grouped by the shapes of their arrays."""
    def shapes(batch: Any) -> tuple:
        return tuple(np.shape(leaf) for leaf in jax.tree.leaves(batch))

    for _, run in itertools.groupby(batches, key=shapes):
        yield list(run)
