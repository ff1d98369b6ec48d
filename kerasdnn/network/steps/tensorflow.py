"""The TensorFlow training step (a ``tf.function``; XLA when ``jit_compile``).

Laid out like ``keras/src/backend/tensorflow/trainer.py``: Keras traces
``train_step`` into its ``tf.function`` (honouring ``jit_compile`` and
``steps_per_execution``); the update and the skip are the two branches of one
``tf.cond``, so nothing waits on the host.

Batches that are :class:`pipelines.resident.Rows` (examples kept in memory, the
batch's row numbers: kerasdnn's resident input path) are gathered inside the step's
call, and runs of K = ``steps_per_execution`` of them train as one compiled loop that
the fit loop calls from Python, no ``tf.data`` read per step.  With ``jit_compile``
the loop is one XLA computation: after a compile of a second or two, each step is
15–18 % faster on a CPU (BENCHMARKS.md), where XLA gains nothing on Keras's own
loop (one compiled step per ``tf.while_loop`` iteration); Keras's ``"auto"`` leaves
XLA off on a CPU, and so does this loop.

Under a ``tf.distribute`` strategy of several replicas, K > 1 steps per execution
are K calls of the one-step ``tf.function`` from Python (as Keras 3.15 runs them
on JAX): Keras 3.15's ``tf.while_loop`` over a distributed iterator fails there,
its stock step too ("You must feed a value for placeholder tensor").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import keras
import tensorflow as tf

from kerasdnn.network.steps import (
    distributed,
    first_batch,
    global_norm,
    guard_gradients,
    handles_overflow,
    loss_scale,
    lower_loss_scale,
    padded_rows,
    update_metrics,
    validation_logs,
)
from pipelines.resident import Rows

__all__ = ["TensorFlowStep"]


class TensorFlowStep:
    """``train_step``/``test_step`` for ``keras.Model`` subclasses on TensorFlow.

    The model provides ``clipnorm``, ``grad_norm_tracker`` and
    ``skipped_steps_tracker`` (see :class:`kerasdnn.network.models.DNN`).
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
        norm, summed_loss, whole = _across_replicas(gradients, loss, sample_weight)
        gradients, norm, finite = guard_gradients(
            gradients, summed_loss, norm, loss_scale(self.optimizer), self.clipnorm)

        # Update weights, or leave everything as it was
        branch_args = (gradients, loss, norm, x, y, y_pred, sample_weight, whole, saved)
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
                sample_weight: Any, whole: Any, saved: list) -> None:
        self.optimizer.apply(gradients, self.trainable_weights)
        update_metrics(self, _unscaled(loss), norm, x, y, y_pred, sample_weight, whole)

    def _skip(self, gradients: list, loss: Any, norm: Any, x: Any, y: Any, y_pred: Any,
              sample_weight: Any, whole: Any, saved: list) -> None:
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
            whole = _across_replicas([], loss, sample_weight)[2]
            update_metrics(self, _unscaled(loss), None, x, y, y_pred, sample_weight, whole)
            # Keras averages the replicas' own results (its logs, once they lack
            # grad_norm and skipped_steps), which is not the whole's result when the
            # replicas count different rows: the results are read across replicas.
            logs = tf.distribute.get_replica_context().merge_call(
                lambda _: self.get_metrics_result())
        else:
            logs = super().test_step(data)
        return validation_logs(logs)

    def _symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        """Keras's build from a first batch, which reads a :class:`~pipelines.resident.Rows`
        as the batch it stands for (:func:`~kerasdnn.network.steps.first_batch`)."""
        # Overrides a private Keras method: the one place where Keras looks inside a batch
        # before the train function does.
        super()._symbolic_build(data_batch=first_batch(iterator, data_batch))

    def make_train_function(self, force: bool = False) -> Callable | None:
        """Keras's train function; with several replicas, one step per call, and for
        :class:`~pipelines.resident.Rows` batches, K gathered steps per call (module doc)."""
        if self.train_function is not None and not force:
            return self.train_function
        if _stepwise(self):
            self.train_function = _calls_per_step(self, self.train_step)
            return self.train_function
        super().make_train_function(force)
        keras_function = self.train_function
        if self.run_eagerly:
            return keras_function
        gathered = _gathered_steps(self, xla=bool(self.jit_compile))

        def train_function(iterator: Any) -> Any:
            if isinstance(getattr(iterator, "element_spec", None), Rows):
                return gathered(iterator)
            return keras_function(iterator)

        self.train_function = train_function
        return train_function

    def make_test_function(self, force: bool = False) -> Callable | None:
        """Keras's test function; with several replicas, one step per call (module doc)."""
        if self.test_function is not None and not force:
            return self.test_function
        if not _stepwise(self):
            return super().make_test_function(force)
        self.test_function = _calls_per_step(self, self.test_step)
        return self.test_function


def _stepwise(model: Any) -> bool:
    """Whether ``model`` runs several steps per execution under several replicas."""
    return (model.steps_per_execution > 1 and not model.run_eagerly
            and model.distribute_strategy.num_replicas_in_sync > 1)


def _calls_per_step(model: Any, step: Callable) -> Callable:
    """``function(iterator) -> logs`` running up to ``steps_per_execution`` batches, each
    as one call of a ``tf.function`` that runs ``step`` on every replica and averages
    the replicas' logs (what Keras's one-step function does, ``reduction="auto"``)."""
    strategy = model.distribute_strategy

    def one_step(data: Any) -> Any:
        logs = strategy.run(step, args=(data,))
        return tf.nest.map_structure(
            lambda value: tf.reduce_mean(strategy.experimental_local_results(value), axis=0),
            logs)

    one_step = tf.function(one_step, reduce_retracing=True, jit_compile=model.jit_compile)

    def function(iterator: Iterator) -> Any:
        logs = None
        for data in itertools.islice(iterator, model.steps_per_execution):
            logs = one_step(data)
        if logs is None:
            raise StopIteration
        return logs

    return function


def _gathered_steps(model: Any, *, xla: bool) -> Callable:
    """``function(iterator) -> logs`` running the next ``steps_per_execution`` batches of
    :class:`~pipelines.resident.Rows`, each gathered from the examples inside the call:
    a run of batches of one length as one compiled loop, a batch of another length
    (an epoch's shorter last batch) as one compiled step."""

    @tf.autograph.experimental.do_not_convert
    def gathered(features: Any, labels: Any, index: Any) -> dict[str, Any]:
        return model.train_step((tf.gather(features, index), tf.gather(labels, index)))

    @tf.autograph.experimental.do_not_convert
    def many(features: Any, labels: Any, indices: Any) -> dict[str, Any]:
        def body(step: Any, logs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
            return step + 1, gathered(features, labels, indices[step])

        first = gathered(features, labels, indices[0])
        return tf.while_loop(lambda step, _: step < tf.shape(indices)[0], body,
                             (tf.constant(1), first))[1]

    one_step = tf.function(gathered, jit_compile=xla, reduce_retracing=True)
    many_steps = tf.function(many, jit_compile=xla, reduce_retracing=True)

    def function(iterator: Iterator) -> Any:
        batches = list(itertools.islice(iterator, model.steps_per_execution))
        if not batches:
            raise StopIteration
        features, labels = batches[0].features, batches[0].labels
        logs = None
        for _, same_length in itertools.groupby(batches, key=lambda rows: rows.index.shape[0]):
            run = [rows.index for rows in same_length]
            logs = (one_step(features, labels, run[0]) if len(run) == 1
                    else many_steps(features, labels, tf.stack(run)))
        return logs

    return function


def _unscaled(loss: Any) -> Any:
    """The loss as one replica's share of the global batch would not show it: Keras
    divides it by the replicas in sync (``scale_loss_for_distribution``), so that
    summing the replicas' gradients gives the global batch's; stock Keras logs it
    multiplied back (``unscale_loss_for_distribution``, not public API), as here."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss * tf.cast(replicas, loss.dtype) if replicas > 1 else loss


def _across_replicas(gradients: list, loss: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
    """``(norm, loss, whole)``: the global norm of the global batch's gradients, the sum
    of the replicas' losses, and the global batch's :func:`padded_rows` (``None``
    without weights).  Under a ``tf.distribute`` strategy with several replicas each
    replica holds only its share (one may hold filler rows only), so all three are
    summed across replicas first, in one all-reduce (the optimizer all-reduces the
    gradients again to apply them), which also makes every replica take the same
    update-or-skip branch; with one replica, ``whole`` is ``None`` (the batch's own)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return global_norm(gradients) if gradients else None, loss, None
    rows = [] if sample_weight is None else [padded_rows(sample_weight)]
    summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [*gradients, loss, *rows])
    norm = global_norm(summed[:len(gradients)]) if gradients else None
    return norm, summed[len(gradients)], summed[-1] if rows else None
