"""The JAX training step (stateless, jitted by Keras).

Laid out like ``keras/src/backend/jax/trainer.py``: ``train_step(state, data)``
returns ``(logs, state)``; the loss and its gradients come from Keras's own
stateless ``compute_loss_and_updates``.  The update and the skip are the two
branches of one ``jax.lax.cond``, so nothing waits on the host.

Under a ``keras.distribution`` the step is traced on the whole global batch (GSPMD
shards it), so its weights show the whole padded batch's real rows even where a
device's share is filler only; Keras's loop runs K steps per execution as K calls.

With ``jit_compile`` and no distribution, K = ``steps_per_execution`` consecutive
batches of one shape run as one compiled ``jax.lax.scan`` over the step, where
Keras 3.15 calls the jitted single step K times from Python.  Batches that are
:class:`pipelines.resident.Rows` (examples kept on the device, the batch's row
numbers) are gathered inside that compiled call: per step only the row numbers
travel.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import keras
import numpy as np

from kerasdnn.network.steps import (
    distributed,
    first_batch,
    global_norm,
    guard_gradients,
    handles_overflow,
    loss_scale,
    lower_loss_scale,
    update_metrics,
    validation_logs,
)
from pipelines.resident import Rows

__all__ = ["JAXStep"]


def _stateless(variables: list, values: list, function: Callable, *args: Any) -> tuple[Any, list]:
    """``function(*args)`` run with ``variables`` holding ``values``: its result and
    the variables' values after it (Keras's ``StatelessScope`` pattern)."""
    with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))) as scope:
        result = function(*args)
    return result, [scope.get_current_value(v) for v in variables]


class JAXStep:
    """``train_step``/``test_step`` for ``keras.Model`` subclasses on JAX.

    The model provides ``clipnorm``, ``grad_norm_tracker`` and
    ``skipped_steps_tracker`` (see :class:`kerasdnn.network.models.DNN`).
    """

    def train_step(self, state: tuple, data: Any) -> tuple[dict[str, Any], tuple]:
        trainable, non_trainable, optimizer_vars, metrics_vars = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

        # Forward pass and gradients of the scaled loss; their norm unscaled, before clipping
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
        (_, (loss, y_pred, new_non_trainable, new_metrics)), gradients = grad_fn(
            trainable, non_trainable, metrics_vars, x, y, sample_weight,
            training=True, optimizer_variables=optimizer_vars)
        optimizer = self.optimizer
        scale = _stateless(optimizer.variables, optimizer_vars, loss_scale, optimizer)[0]
        gradients, norm, finite = guard_gradients(
            gradients, loss, global_norm(gradients), scale, self.clipnorm)

        def update() -> tuple:
            new_trainable, new_optimizer = optimizer.stateless_apply(
                optimizer_vars, gradients, trainable)
            _, metrics = _stateless(self.metrics_variables, new_metrics, update_metrics,
                                    self, loss, norm, x, y, y_pred, sample_weight)
            return new_trainable, list(new_non_trainable), list(new_optimizer), metrics

        def skip() -> tuple:
            kept = list(optimizer_vars)
            if handles_overflow(optimizer):
                kept = jax.lax.cond(
                    jax.numpy.isfinite(loss),
                    lambda: _stateless(optimizer.variables, optimizer_vars,
                                       lower_loss_scale, optimizer)[1],
                    lambda: kept)
            _, metrics = _stateless(self.metrics_variables, metrics_vars,
                                    self.skipped_steps_tracker.update_state)
            return list(trainable), list(non_trainable), kept, metrics

        # Update weights, or leave everything as it was
        state = jax.lax.cond(finite, update, skip)
        return _stateless(self.metrics_variables, state[3], self.get_metrics_result)[0], state

    def test_step(self, state: tuple, data: Any) -> tuple[dict[str, Any], tuple]:
        if not distributed():
            logs, state = super().test_step(state, data)
            return validation_logs(logs), state
        # Padded batches: their real rows only count
        trainable, non_trainable, metrics_vars = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        _, (loss, y_pred, non_trainable, metrics_vars) = self.compute_loss_and_updates(
            trainable, non_trainable, metrics_vars, x, y, sample_weight, training=False)
        logs, metrics_vars = _stateless(self.metrics_variables, metrics_vars, update_metrics,
                                        self, loss, None, x, y, y_pred, sample_weight)
        return validation_logs(logs), (trainable, non_trainable, metrics_vars)

    def _symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        """Keras's build from a first batch, which reads a :class:`~pipelines.resident.Rows`
        as the batch it stands for (:func:`~kerasdnn.network.steps.first_batch`)."""
        # Overrides a private Keras method: the one place where Keras looks inside a batch
        # before the train function does.
        super()._symbolic_build(data_batch=first_batch(iterator, data_batch))

    def make_train_function(self, force: bool = False) -> None:
        """Keras's train function, but K steps per execution run as one ``lax.scan``,
        and :class:`~pipelines.resident.Rows` batches gathered on the device."""
        # The lax.scan is redundant from the Keras release with keras-team/keras#23527
        # (its JAX trainer runs steps_per_execution > 1 as an on-device lax.scan itself);
        # Rows, kerasdnn's resident input path, still needs this function then.
        if self.train_function is not None and not force:
            return
        if (self.run_eagerly or not self.jit_compile
                or keras.distribution.distribution() is not None):
            super().make_train_function(force)  # Keras's loop: one jitted step per batch
            return
        self.train_function = _scanned_steps(self.train_step, self.steps_per_execution)


def _scanned_steps(train_step: Callable, steps: int) -> Callable:
    """``iterator_step(state, iterator) -> (logs, state)`` running up to ``steps``
    batches: a run of batches of one shape as one jitted ``lax.scan`` (state donated,
    as Keras does), the others (an epoch's shorter last batch) one jitted step each."""
    one_step = jax.jit(train_step, donate_argnums=0)

    def _many_steps(state: tuple, stacked: Any) -> tuple[dict[str, Any], tuple]:
        # lax.scan's body returns (carry, output): the step's (logs, state) reversed
        state, logs = jax.lax.scan(lambda carry, data: train_step(carry, data)[::-1],
                                   state, stacked)
        return jax.tree.map(lambda value: value[-1], logs), state

    many_steps = jax.jit(_many_steps, donate_argnums=0)
    # Rows: each batch gathered from the examples on the device, inside the call
    one_row_step = jax.jit(lambda state, features, labels, index: train_step(
        state, (features[index], labels[index])), donate_argnums=0)
    many_row_steps = jax.jit(lambda state, features, labels, index: _many_steps(
        state, (features[index], labels[index])), donate_argnums=0)

    def iterator_step(state: tuple, iterator: Iterator) -> tuple[dict[str, Any], tuple]:
        batches = list(itertools.islice(iterator, steps))
        if not batches:
            raise StopIteration
        logs: dict[str, Any] = {}
        if isinstance(batches[0], Rows):
            features, labels = batches[0].features, batches[0].labels
            for _, same_length in itertools.groupby(batches, key=lambda rows: len(rows.index)):
                run = [rows.index for rows in same_length]
                if len(run) == 1:
                    logs, state = one_row_step(state, features, labels, run[0])
                else:
                    logs, state = many_row_steps(state, features, labels, _stack(*run))
            return logs, state
        for _, same_shape in itertools.groupby(  # runs of batches of one shape
                batches, key=lambda batch: [np.shape(a) for a in jax.tree.leaves(batch)]):
            run = list(same_shape)
            if len(run) == 1:
                logs, state = one_step(state, run[0])
            else:
                logs, state = many_steps(state, jax.tree.map(_stack, *run))
        return logs, state

    return iterator_step


def _stack(*arrays: Any) -> Any:
    """Host arrays stacked on the host; arrays already on a device, on the device."""
    if all(isinstance(array, np.ndarray) for array in arrays):
        return np.stack(arrays)
    return jax.numpy.stack(arrays)
