"""The decision threshold of a binary task, chosen on the validation split.

Two rules on the validation predictions: the threshold of maximum F1 (from
scikit-learn's ``precision_recall_curve``) and the one of maximum Youden's J
(TPR - FPR, from ``roc_curve``).  The test split is then scored at 0.5 and at
both thresholds, side by side.  A threshold ``t`` predicts the positive class
when ``P(positive) >= t`` (the rule of scikit-learn's curves); the 0.5 column
keeps the report's rule, ``P(positive) > 0.5``.

Example:
    >>> import numpy as np
    >>> y_val, p_val = np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.35, 0.8])
    >>> section = threshold_section(y_val, p_val, y_val, p_val)
    >>> section["max_f1"]["threshold"], section["test"]["max_f1"]["f1"]
    (0.35, 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics

__all__ = ["choose_thresholds", "scores_at", "threshold_section"]


def choose_thresholds(y_val: np.ndarray, p_val: np.ndarray) -> dict[str, dict[str, float]]:
    """``{"max_f1": {threshold, validation_f1}, "youden_j": {threshold, validation_j}}``.

    Ties go to the lowest threshold.  Needs both classes in ``y_val``.

    Example:
        >>> choose_thresholds(np.array([0, 1]), np.array([0.2, 0.6]))["youden_j"]
        {'threshold': 0.6, 'validation_j': 1.0}
    """
    precision, recall, pr_thresholds = metrics.precision_recall_curve(y_val, p_val)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best_f1 = int(np.argmax(f1))
    fpr, tpr, roc_thresholds = metrics.roc_curve(y_val, p_val, drop_intermediate=False)
    finite = np.isfinite(roc_thresholds)  # the first one, +inf, predicts nothing positive
    j = np.where(finite, tpr - fpr, -np.inf)
    # roc_curve lists thresholds high to low: take the last maximum for the lowest threshold.
    best_j = len(j) - 1 - int(np.argmax(j[::-1]))
    return {
        "max_f1": {"threshold": float(pr_thresholds[best_f1]), "validation_f1": float(f1[best_f1])},
        "youden_j": {"threshold": float(roc_thresholds[best_j]), "validation_j": float(j[best_j])},
    }


def scores_at(y_true: np.ndarray, predicted_positive: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of the positive class for 0/1 predictions.

    Example:
        >>> scores_at(np.array([0, 1, 1]), np.array([0, 1, 0]))["recall"]
        0.5
    """
    return {
        "accuracy": float(metrics.accuracy_score(y_true, predicted_positive)),
        "precision": float(metrics.precision_score(y_true, predicted_positive, zero_division=0)),
        "recall": float(metrics.recall_score(y_true, predicted_positive, zero_division=0)),
        "f1": float(metrics.f1_score(y_true, predicted_positive, zero_division=0)),
    }


def threshold_section(
    y_val: np.ndarray,
    p_val: np.ndarray,
    y_test: np.ndarray,
    p_test: np.ndarray,
    *,
    default: float = 0.5,
) -> dict[str, Any]:
    """Thresholds chosen on validation and the test scores at ``default`` (the
    report's rule, ``P(positive) > default``) and at each of them.

    Returns ``{"chosen_on": "validation", "max_f1": {...}, "youden_j": {...},
    "test": {"default": scores at ``default``, "max_f1": ..., "youden_j": ...}}``, or
    ``{"chosen_on": None, "reason": ...}`` when the validation split has a single class.

    Example:
        >>> y, p = np.array([0, 1, 1]), np.array([0.2, 0.4, 0.9])
        >>> threshold_section(y, p, y, p)["test"]["default"]["recall"]
        0.5
    """
    y_val = np.asarray(y_val).astype(np.int64)
    if not 0 < y_val.sum() < len(y_val):
        return {"chosen_on": None,
                "reason": "the validation split holds a single class: no threshold to choose"}
    chosen = choose_thresholds(y_val, np.asarray(p_val, dtype=np.float64))
    p_test = np.asarray(p_test, dtype=np.float64)
    test = {"default": {"threshold": default,
                        **scores_at(y_test, (p_test > default).astype(np.int64))}}
    for rule, values in chosen.items():
        threshold = values["threshold"]
        test[rule] = {"threshold": threshold,
                      **scores_at(y_test, (p_test >= threshold).astype(np.int64))}
    return {"chosen_on": "validation", **chosen, "test": test}
