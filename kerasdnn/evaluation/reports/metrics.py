"""The numbers of a classification report, computed by scikit-learn.

:func:`classification_report` takes integer labels and predicted probabilities
and returns a plain, JSON-ready dict: accuracy; per-class precision, recall,
F1 and support; macro and weighted averages; ROC AUC one-vs-rest (macro, micro,
weighted, per class) and one-vs-one (macro); raw and normalized confusion
matrices; and, for a binary task, the AUC, the ROC curve and F1 at the 0.5
threshold.  An AUC that is undefined (a class absent from ``y_true``) is
``None``, with the reason in ``report["roc_auc_undefined"]``.

Example:
    >>> import numpy as np
    >>> report = classification_report([0, 1, 1], np.array([0.2, 0.9, 0.7]))
    >>> report["accuracy"], report["binary"]["auc"]
    (1.0, 1.0)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics

from kerasdnn.core.errors import KerasDNNError
from kerasdnn.evaluation.reports import probability, threshold

__all__ = [
    "BINARY_THRESHOLD",
    "ReportInputError",
    "as_probabilities",
    "classification_report",
    "resolve_class_names",
]

BINARY_THRESHOLD = 0.5
_PROBABILITY_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6


class ReportInputError(KerasDNNError, ValueError):
    """Labels or probabilities given to a report are malformed (one-line message)."""


def classification_report(
    y_true: Any,
    y_prob: Any,
    *,
    class_names: Sequence[str] | None = None,
    validation: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Score predicted probabilities against integer labels with scikit-learn.

    Args:
        y_true: integer labels in ``[0, k)``, shape ``(n,)``.
        y_prob: probabilities, shape ``(n, k)`` with rows summing to 1; a binary
            task also accepts the positive-class probability, ``(n,)`` or ``(n, 1)``.
        class_names: ``k`` distinct names (default ``"0"``, ``"1"``, …).
        validation: ``(y_true, y_prob)`` of the validation split; a binary task
            chooses its decision threshold on it (``binary["tuned"]``).

    Returns:
        A JSON-ready dict with keys ``task`` ("binary" or "multiclass"),
        ``num_examples``, ``num_classes``, ``class_names``, ``accuracy``,
        ``f1_macro``, ``f1_weighted``, ``per_class`` ({name: {precision, recall,
        f1-score, support}}, scikit-learn's names), ``macro_avg``,
        ``weighted_avg``, ``roc_auc`` ({ovr_macro, ovr_micro, ovr_weighted,
        ovo_macro, per_class}), ``roc_auc_undefined`` ({key: reason}),
        ``confusion_matrix`` (rows: true class, columns: predicted),
        ``confusion_matrix_normalized`` (each row divided by its support), and
        ``binary`` (``None`` unless k == 2: {positive_class, threshold, auc,
        precision, recall, f1, roc_curve: {fpr, tpr, thresholds}, tuned: the
        thresholds of maximum F1 and of Youden's J chosen on ``validation`` with
        the test scores at each, or None without ``validation``; see
        :mod:`kerasdnn.evaluation.reports.threshold`}); ``average_precision`` ({per_class,
        macro, micro}); ``brier``, ``log_loss``, ``ece`` and ``calibration_bins``
        (see :mod:`kerasdnn.evaluation.reports.probability`).

    The predicted class is the most probable one; for a binary task that is
    class 1 when ``P(1) > 0.5`` (Keras's binary accuracy rule).  A precision or
    recall with a zero denominator is 0 (``zero_division=0``).

    Example:
        >>> import numpy as np
        >>> y_prob = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
        >>> report = classification_report([0, 1, 2], y_prob, class_names=["a", "b", "c"])
        >>> report["accuracy"], report["roc_auc"]["ovr_macro"], report["per_class"]["b"]["recall"]
        (1.0, 1.0, 1.0)
    """
    labels_true = _as_labels(y_true)
    prob = as_probabilities(y_prob, num_examples=labels_true.shape[0])
    k = prob.shape[1]
    names = resolve_class_names(class_names, k)
    if labels_true.size and labels_true.max() >= k:
        raise ReportInputError(
            f"y_true holds label {int(labels_true.max())} but y_prob has only {k} classes "
            f"(labels must be in [0, {k - 1}])"
        )
    labels = list(range(k))
    y_pred = np.argmax(prob, axis=1)

    table = metrics.classification_report(
        labels_true, y_pred, labels=labels, target_names=names,
        output_dict=True, zero_division=0,
    )
    per_class = {name: _plain(table[name]) for name in names}
    roc_auc, undefined = _roc_auc(labels_true, prob, names)
    average_precision = probability.average_precision(labels_true, prob, names)
    report: dict[str, Any] = {
        "task": "binary" if k == 2 else "multiclass",
        "num_examples": int(labels_true.shape[0]),
        "num_classes": k,
        "class_names": names,
        "accuracy": float(metrics.accuracy_score(labels_true, y_pred)),
        "f1_macro": float(table["macro avg"]["f1-score"]),
        "f1_weighted": float(table["weighted avg"]["f1-score"]),
        "per_class": per_class,
        "macro_avg": _plain(table["macro avg"]),
        "weighted_avg": _plain(table["weighted avg"]),
        "roc_auc": roc_auc,
        "roc_auc_undefined": undefined,
        "confusion_matrix": metrics.confusion_matrix(
            labels_true, y_pred, labels=labels
        ).tolist(),
        "confusion_matrix_normalized": metrics.confusion_matrix(
            labels_true, y_pred, labels=labels, normalize="true"
        ).tolist(),
        "average_precision": average_precision,
        **probability.calibration_scores(labels_true, prob),
        "binary": None,
    }
    if k == 2:
        report["binary"] = _binary_section(labels_true, prob[:, 1], names, per_class, undefined)
        report["binary"]["tuned"] = _tuned(validation, labels_true, prob)
    return report


def _tuned(
    validation: tuple[Any, Any] | None, y_test: np.ndarray, prob: np.ndarray
) -> dict[str, Any] | None:
    if validation is None:
        return None
    y_val = _as_labels(validation[0])
    p_val = as_probabilities(validation[1], num_examples=y_val.shape[0])
    if p_val.shape[1] != 2 or (y_val.size and y_val.max() > 1):
        raise ReportInputError("validation must hold binary labels and probabilities, as y_prob")
    return threshold.threshold_section(
        y_val, p_val[:, 1], y_test, prob[:, 1], default=BINARY_THRESHOLD
    )


def as_probabilities(y_prob: Any, *, num_examples: int | None = None) -> np.ndarray:
    """Validate probabilities and return them as float64 ``(n, k)``.

    ``(n,)`` and ``(n, 1)`` are positive-class probabilities of a binary task and
    become ``(n, 2)`` with columns ``[P(0), P(1)]``.  Rows of ``(n, k)`` must sum
    to 1 (within 1e-3); they are renormalized exactly.

    Example:
        >>> as_probabilities([0.25, 1.0]).tolist()
        [[0.75, 0.25], [0.0, 1.0]]
    """
    try:
        prob = np.asarray(y_prob, dtype=np.float64)
    except (TypeError, ValueError):
        raise ReportInputError("y_prob must be an array of numbers") from None
    if prob.ndim == 2 and prob.shape[1] == 1:
        prob = prob[:, 0]
    if prob.ndim not in (1, 2):
        raise ReportInputError(
            f"y_prob must have shape (n,), (n, 1) or (n, k); got {prob.shape}"
        )
    if num_examples is not None and prob.shape[0] != num_examples:
        raise ReportInputError(
            f"y_prob has {prob.shape[0]} rows but y_true has {num_examples} labels"
        )
    if prob.shape[0] == 0:
        raise ReportInputError("cannot score an empty set of predictions")
    if not np.isfinite(prob).all():
        raise ReportInputError("y_prob holds NaN or infinite values")
    low, high = float(prob.min()), float(prob.max())
    if low < -_PROBABILITY_TOLERANCE or high > 1 + _PROBABILITY_TOLERANCE:
        raise ReportInputError(
            f"y_prob must hold probabilities in [0, 1], got values in [{low:.4g}, {high:.4g}] "
            "(apply softmax or sigmoid to logits first, e.g. kerasdnn.predict_proba)"
        )
    prob = np.clip(prob, 0.0, 1.0)
    if prob.ndim == 1:
        return np.stack([1.0 - prob, prob], axis=1)
    if prob.shape[1] < 2:
        raise ReportInputError(f"y_prob needs at least 2 classes, got shape {prob.shape}")
    sums = prob.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > _PROBABILITY_TOLERANCE:
        raise ReportInputError(
            f"each row of y_prob must sum to 1; row {worst} sums to {sums[worst]:.4g} "
            "(apply softmax to logits first)"
        )
    return prob / sums[:, None]


def resolve_class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``class_names`` as a list of ``num_classes`` distinct strings (default "0", "1", …).

    Example:
        >>> resolve_class_names(None, 3)
        ['0', '1', '2']
    """
    if class_names is None:
        return [str(index) for index in range(num_classes)]
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ReportInputError(
            f"class_names has {len(names)} names but y_prob has {num_classes} classes"
        )
    if len(set(names)) != len(names):
        raise ReportInputError(f"class_names must be distinct, got {names}")
    return names


def _as_labels(y_true: Any) -> np.ndarray:
    labels = np.asarray(y_true)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ReportInputError(
            f"y_true must be integer class labels of shape (n,), got shape {labels.shape}"
        )
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ReportInputError("y_true must hold integer class labels, got fractions")
    elif labels.dtype.kind not in "iub":
        raise ReportInputError(f"y_true must hold integer class labels, got {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ReportInputError(f"y_true holds negative label {int(labels.min())}")
    return labels


def _roc_auc(
    y_true: np.ndarray, prob: np.ndarray, names: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """One-vs-rest AUCs on the one-hot labels, one-vs-one on the labels."""
    k = prob.shape[1]
    onehot = np.eye(k, dtype=np.int64)[y_true]
    support = onehot.sum(axis=0)
    absent = [names[c] for c in range(k) if support[c] == 0]
    undefined: dict[str, str] = {}

    def score(key: str, *args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = metrics.roc_auc_score(*args, **kwargs)
        if np.ndim(value) == 0 and not math.isfinite(value):
            reason = str(caught[-1].message) if caught else "ROC AUC is not defined here"
            if absent:
                reason = f"class(es) {', '.join(absent)} absent from y_true: {reason}"
            undefined[key] = reason
            return None
        return value

    per_class: dict[str, float | None] = {}
    for c, name in enumerate(names):
        if 0 < support[c] < len(y_true):
            per_class[name] = float(metrics.roc_auc_score(onehot[:, c], prob[:, c]))
        else:
            per_class[name] = None
            undefined[f"per_class.{name}"] = (
                f"class {name} is {'absent from' if support[c] == 0 else 'all of'} y_true"
            )
    auc: dict[str, Any] = {
        "ovr_macro": _float(score("ovr_macro", onehot, prob, average="macro")),
        "ovr_micro": _float(score("ovr_micro", onehot, prob, average="micro")),
        "ovr_weighted": _float(score("ovr_weighted", onehot, prob, average="weighted")),
        "per_class": per_class,
    }
    if k == 2:
        # One pair of classes: the one-vs-one AUC is the binary AUC.
        auc["ovo_macro"] = per_class[names[1]]
        if auc["ovo_macro"] is None:
            undefined["ovo_macro"] = undefined[f"per_class.{names[1]}"]
    elif absent:
        # scikit-learn pairs only the classes present in y_true; refuse to guess.
        auc["ovo_macro"] = None
        undefined["ovo_macro"] = (
            f"one-vs-one AUC needs every class in y_true; absent: {', '.join(absent)}"
        )
    else:
        auc["ovo_macro"] = _float(
            score("ovo_macro", y_true, prob, multi_class="ovo", average="macro",
                  labels=list(range(k)))
        )
    return auc, undefined


def _binary_section(
    y_true: np.ndarray,
    positive: np.ndarray,
    names: list[str],
    per_class: dict[str, dict[str, float]],
    undefined: dict[str, str],
) -> dict[str, Any]:
    section: dict[str, Any] = {
        "positive_class": names[1],
        "threshold": BINARY_THRESHOLD,
        "auc": None,
        "precision": per_class[names[1]]["precision"],
        "recall": per_class[names[1]]["recall"],
        "f1": per_class[names[1]]["f1-score"],
        "roc_curve": None,
    }
    if 0 < y_true.sum() < len(y_true):
        section["auc"] = float(metrics.roc_auc_score(y_true, positive))
        fpr, tpr, thresholds = metrics.roc_curve(y_true, positive, pos_label=1)
        section["roc_curve"] = {
            "fpr": fpr.tolist(),
            "tpr": tpr.tolist(),
            # The first threshold is +inf ("predict nothing positive"): JSON has no inf.
            "thresholds": [float(t) if math.isfinite(t) else None for t in thresholds],
        }
    else:
        undefined["binary.auc"] = "y_true holds a single class: ROC AUC is not defined"
    return section


def _plain(row: dict[str, Any]) -> dict[str, float | int]:
    return {
        "precision": float(row["precision"]),
        "recall": float(row["recall"]),
        "f1-score": float(row["f1-score"]),
        "support": int(row["support"]),
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
