"""The Keras metrics the training and test steps update (``model.compile``), reading
logits and integer labels: not :mod:`kerasdnn.evaluation.reports.metrics`, scikit-learn's
judgement of a trained model's predictions.

The model outputs logits and the pipelines yield integer labels; Keras's
``AUC`` wants probabilities and one-hot labels for several classes.
:class:`LogitsAUC` bridges the two.  :class:`SkippedSteps` is the running
count of training steps the non-finite guard skipped.

Example:
    >>> from kerasdnn.network.step_metrics import LogitsAUC
    >>> auc = LogitsAUC(num_classes=3)
    >>> auc.update_state([0, 1, 2], [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    >>> float(auc.result())
    1.0
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["LogitsAUC", "SkippedSteps"]


@keras.saving.register_keras_serializable(package="kerasdnn")
class LogitsAUC(keras.metrics.AUC):
    """ROC AUC from logits and integer labels.

    ``num_classes == 2``: one logit per example, AUC of its sigmoid.
    ``num_classes > 2``: one-vs-rest AUC of the softmax probabilities against
    one-hot labels, macro-averaged over the classes (like scikit-learn's
    ``roc_auc_score(multi_class="ovr")``, up to the threshold discretization).

    Example:
        >>> LogitsAUC(num_classes=2).name
        'auc'
    """

    def __init__(self, num_classes: int, name: str = "auc", **kwargs: Any) -> None:
        self.num_classes = int(num_classes)
        binary = self.num_classes == 2
        kwargs.setdefault("multi_label", not binary)
        kwargs.setdefault("num_labels", None if binary else self.num_classes)
        kwargs.setdefault("from_logits", binary)
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = ops.cast(y_pred, "float32")
        if self.num_classes == 2:
            y_true = ops.reshape(ops.cast(y_true, "float32"), ops.shape(y_pred))
        else:
            y_true = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), self.num_classes)
            y_pred = ops.softmax(y_pred, axis=-1)
        super().update_state(y_true, y_pred, sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="kerasdnn")
class SkippedSteps(keras.metrics.Metric):
    """Running count of skipped training steps over the model's whole life.

    The count is an int32 variable; ``result()`` is it as a float32 scalar.

    Unlike other metrics it is *not* reset at each epoch (``reset_state`` does
    nothing), so ``skipped_steps`` in the logs is the total so far.

    Example:
        >>> counter = SkippedSteps()
        >>> counter.update_state()
        >>> counter.reset_state()
        >>> int(counter.result())
        1
    """

    def __init__(self, name: str = "skipped_steps", **kwargs: Any) -> None:
        super().__init__(name=name, dtype="int32", **kwargs)
        self.count = self.add_variable(shape=(), dtype="int32", initializer="zeros",
                                       name="count")

    def update_state(self, steps: Any = 1) -> None:
        self.count.assign_add(ops.cast(steps, "int32"))

    def reset_state(self) -> None:
        """Nothing: the count runs across epochs and calls to ``fit``."""

    def result(self) -> Any:
        # A new float32 tensor (not the variable's buffer, which JAX donates).
        return ops.cast(self.count.value, "float32")
