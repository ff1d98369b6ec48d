"""The PyTorch training step (eager unless ``jit_compile=True``).

Laid out like ``keras/src/backend/torch/trainer.py``: forward, loss, ``backward``,
then ``optimizer.apply`` under ``torch.no_grad``.  Deciding between the update
and the skip reads one boolean from the device per step (as
``torch.amp.GradScaler`` and Keras's ``LossScaleOptimizer`` do on PyTorch).

Two ways to the loss and gradients, same numbers within float rounding:

* **native** (the models :func:`kerasdnn.build_model` makes, and any chain of the
  layers and options :mod:`kerasdnn.network.steps.torch_native` lists): forward, loss and
  backward written in torch on the torch tensors behind the Keras variables;
  Keras's per-op Python is skipped, and the batch-norm statistics are assigned only
  when the step is kept;
* **Keras**: ``self(x, training=True)`` and ``compute_loss`` (any other model or
  compile option, sample weights, ``native_step = False``).

Either way the optimizer (Keras's, already fused with ``torch._foreach_*``), the
metrics and the guard are the same code.

``steps_per_execution`` batches per call of ``train_function``, ``test_function``
and ``predict_function``, one step after the other: Keras 3.15 refuses more than
one on PyTorch, whose step is eager anyway; here a call runs every batch Keras's
epoch iterator hands it, so the per-call work of the ``fit`` loop (the batch
callbacks, their thread-pool dispatch) is paid once per K steps, as on JAX and
TensorFlow.  The steps, and so the numbers, are the same for any K.

In a data-parallel run (``--data-parallel`` over ``torch.distributed``) each
process's gradients, loss and real rows are averaged across the processes before
the guard reads them (:mod:`kerasdnn.network.steps.torch_parallel`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import keras
import torch

from kerasdnn.network.steps import (
    guard_gradients,
    handles_overflow,
    loss_scale,
    lower_loss_scale,
    torch_parallel,
    update_metrics,
    validation_logs,
)
from kerasdnn.network.steps.torch_native import NativeMetrics, NativePlan, metrics_for, plan_for

__all__ = ["TorchStep", "fused_global_norm"]

# model -> (key, plan, metrics).  Outside the model, so that a copy of it (deepcopy,
# pickle) builds its own plan instead of one bound to the original's layers.
_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class TorchStep:
    """``train_step``/``test_step`` for ``keras.Model`` subclasses on PyTorch.

    The model provides ``clipnorm``, ``grad_norm_tracker`` and
    ``skipped_steps_tracker`` (see :class:`kerasdnn.network.models.DNN`).

    Attributes:
        native_step: take the PyTorch-native path when the model allows it
            (``False``: always Keras's forward pass and ``compute_loss``).
    """

    native_step: bool = True

    def native_plan(self) -> NativePlan | None:
        """The native plan the next step will use (``None``: the Keras path).

        Rebuilt when the compiled loss or metrics or a layer's ``trainable`` flag changes.
        """
        return self._native()[0]

    def _native(self) -> tuple[NativePlan | None, NativeMetrics | None]:
        # Under torch.compile (jit_compile=True, e.g. a model saved where XLA compiled
        # it) the Keras path is compiled: the plan's checks read layer configs, which
        # dynamo cannot trace, and the two paths compute the same numbers.
        if not self.native_step or torch.compiler.is_compiling():
            return None, None
        compiled_metrics = getattr(self, "_compile_metrics", None)
        # The objects themselves, not their id(): a new one cannot take a freed one's id.
        key = (getattr(self, "_compile_loss", None), compiled_metrics,
               getattr(compiled_metrics, "built", None), self.trainable,
               tuple(layer.trainable for layer in self.layers))
        cached = _PLANS.get(self)
        if cached is None or cached[0] != key:
            plan = plan_for(self)
            cached = _PLANS[self] = (key, plan, None if plan is None else metrics_for(self, plan))
        return cached[1], cached[2]

    def make_train_function(self, force: bool = False) -> Callable[[list[Any]], Any]:
        """``train_function(batches)``: a training step on each of ``batches`` (up to
        ``steps_per_execution``), the last one's logs (Keras's takes one batch)."""
        if self.train_function is None or force:
            if type(self).train_step is TorchStep.train_step and not self._should_torch_compile():
                self.train_function = self._train_batches
            else:  # a subclass's own train_step, or the compiled one: a step per batch
                self.train_function = _each_batch(self._compiled(self.train_step))
        return self.train_function

    def _train_batches(self, batches: list[Any]) -> dict[str, Any]:
        """A training step on each of ``batches``; the logs of the last one only (the
        ones before it update the metrics without reading them out)."""
        for batch in batches[:-1]:
            self._train(batch, logs=False)
        return self._train(batches[-1], logs=True)

    def make_test_function(self, force: bool = False) -> Callable[[list[Any]], Any]:
        """``test_function(batches)``: a test step on each of ``batches``, without
        gradients; the last one's logs."""
        if self.test_function is None or force:
            self.test_function = torch.no_grad()(_each_batch(self._compiled(self.test_step)))
        return self.test_function

    def make_predict_function(self, force: bool = False) -> Callable[[list[Any]], Any]:
        """``predict_function(batches)``: the predictions of each of ``batches``, joined
        along the batch axis, without gradients."""
        if self.predict_function is None or force:
            step = self._compiled(self.predict_step)

            @torch.no_grad()
            def predict_function(batches: list[Any]) -> Any:
                outputs = [step(batch) for batch in batches]
                if len(outputs) == 1:
                    return outputs[0]
                return keras.tree.map_structure(lambda *parts: torch.cat(parts), *outputs)

            self.predict_function = predict_function
        return self.predict_function

    def _symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        """Keras's build from a first batch, drawing one batch, not a call's worth."""
        # Overrides a private Keras method: Keras 3.15's PyTorch epoch iterator hands out
        # steps_per_execution batches at a time, and of a Python generator's it puts back
        # only the 2 it peeked at; drawing K > 2 for the build would lose batches.
        if iterator is None:
            super()._symbolic_build(data_batch=data_batch)
            return
        per_call, iterator.steps_per_execution = iterator.steps_per_execution, 1
        try:
            super()._symbolic_build(iterator=iterator, data_batch=data_batch)
        finally:
            iterator.steps_per_execution = per_call

    def _compiled(self, step: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``step`` under ``torch.compile`` where ``jit_compile`` asks for it (Keras's rule)."""
        return torch.compile(step) if self._should_torch_compile() else step

    def train_step(self, data: Any) -> dict[str, Any]:
        return self._train(data, logs=True)

    def _train(self, data: Any, logs: bool) -> dict[str, Any] | None:
        """The training step on ``data``; its logs when ``logs`` (else maybe ``None``)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        plan, metrics = self._native()
        if plan is not None and plan.accepts(x, y, sample_weight):
            return self._native_train_step(plan, metrics, x, y, logs)
        return self._keras_train_step(x, y, sample_weight)

    def _native_train_step(self, plan: NativePlan, metrics: NativeMetrics | None, x: Any,
                           y: Any, logs: bool = True) -> dict[str, Any] | None:
        seeds = plan.save_seeds()
        y_pred, updates = plan.forward(x)
        loss = plan.loss(y, y_pred)
        scaled_loss = self.optimizer.scale_loss(loss)
        trainable_weights = self.trainable_weights[:]
        gradients = list(torch.autograd.grad(scaled_loss, [v.value for v in trainable_weights]))
        with torch.no_grad():
            return self._update_or_skip(
                loss, y_pred, gradients, trainable_weights, x, y, None,
                keep=lambda: plan.apply_updates(updates),
                put_back=lambda: plan.restore_seeds(seeds),
                metrics=metrics, logs=logs)

    def _keras_train_step(self, x: Any, y: Any, sample_weight: Any) -> dict[str, Any]:
        non_trainable = self.non_trainable_variables
        saved = [v.value.detach().clone() for v in non_trainable] if non_trainable else []

        # Forward pass
        y_pred = self(x, training=True)
        self.zero_grad()
        loss = self.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )
        scaled_loss = self.optimizer.scale_loss(loss)

        # Compute gradients (their global norm is taken unscaled, before clipping)
        scaled_loss.backward()
        trainable_weights = self.trainable_weights[:]
        gradients = [v.value.grad for v in trainable_weights]

        def put_back() -> None:
            for variable, value in zip(non_trainable, saved, strict=True):
                variable.assign(value)

        with torch.no_grad():
            return self._update_or_skip(loss, y_pred, gradients, trainable_weights, x, y,
                                        sample_weight, keep=lambda: None, put_back=put_back)

    def _update_or_skip(self, loss: Any, y_pred: Any, gradients: list[Any],
                        trainable_weights: Sequence[Any], x: Any, y: Any, sample_weight: Any,
                        keep: Callable[[], None], put_back: Callable[[], None],
                        metrics: NativeMetrics | None = None,
                        logs: bool = True) -> dict[str, Any] | None:
        """The step after the gradients: norm, guard, clipping, update, metrics.

        ``keep()`` runs before a kept step's update, ``put_back()`` on a skipped
        step (the non-trainable state each path has to finish or restore);
        ``metrics``: native metric updates instead of Keras's ``update_state``;
        ``logs=False``: a native step returns ``None`` instead of reading them out.
        """
        rows = None
        if torch_parallel.processes() > 1:  # the global batch's, identical everywhere
            real = _real_rows(y_pred, sample_weight)
            gradients, loss, rows = torch_parallel.average_step(gradients, loss, real)
        gradients, norm, finite = guard_gradients(
            gradients, loss, fused_global_norm(gradients), loss_scale(self.optimizer),
            self.clipnorm)
        finite = bool(finite)

        # Leave everything as it was, or update the weights
        if not finite:
            put_back()
            self.skipped_steps_tracker.update_state()
            if handles_overflow(self.optimizer) and bool(torch.isfinite(loss)):
                lower_loss_scale(self.optimizer)
            return self.get_metrics_result() if logs else None
        keep()
        self.optimizer.apply(gradients, trainable_weights)
        if rows is not None:
            torch_parallel.average_state(_moving_statistics(self))
        if metrics is not None:
            metrics.update(loss, norm, y, y_pred, rows)
            if not logs:
                return None
            if metrics.order and rows is None:
                return metrics.results()
            return self.get_metrics_result()
        return update_metrics(self, loss, norm, x, y, y_pred, sample_weight, rows=rows)

    def test_step(self, data: Any) -> dict[str, Any]:
        if torch_parallel.processes() == 1:
            return validation_logs(super().test_step(data))
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                 training=False)
        _, loss, rows = torch_parallel.average_step([], loss, _real_rows(y_pred, sample_weight))
        return validation_logs(
            update_metrics(self, loss, None, x, y, y_pred, sample_weight, rows=rows))

    def get_metrics_result(self) -> dict[str, Any]:
        """Keras's results; in a data-parallel run, the compiled metrics' counts summed
        over the processes first (the loss and the step's trackers are already global)."""
        compiled = getattr(self, "_compile_metrics", None)
        if torch_parallel.processes() == 1 or compiled is None:
            return super().get_metrics_result()
        with torch_parallel.summed(compiled.variables):
            return super().get_metrics_result()


def _each_batch(step: Callable[[Any], Any]) -> Callable[[list[Any]], Any]:
    """``function(batches)``: ``step`` on each batch in turn, the last one's result."""
    def steps(batches: list[Any]) -> Any:
        for batch in batches:
            result = step(batch)
        return result
    return steps


def _real_rows(y_pred: Any, sample_weight: Any) -> Any:
    """The rows of a share that are not data-parallel filler (weight 0)."""
    if sample_weight is None:
        return y_pred.shape[0]
    return torch.count_nonzero(keras.ops.convert_to_tensor(sample_weight))


def _moving_statistics(model: Any) -> list[Any]:
    """The float non-trainable weights (batch normalization's moving statistics)."""
    return [v for v in model.non_trainable_weights if v.dtype.startswith(("float", "bfloat"))]


def fused_global_norm(grads: Sequence[Any]) -> Any:
    """:func:`kerasdnn.network.steps.global_norm` in two fused calls (``_foreach_norm``)
    instead of two per gradient: the eager step pays per op.

    Example:
        >>> float(fused_global_norm([torch.ones(3), None, torch.ones(1)]))
        2.0
    """
    return torch.nn.utils.get_total_norm([g.float() for g in grads if g is not None],
                                         norm_type=2.0)
