"""How good the predicted probabilities are, beyond the argmax: average precision
and calibration (Brier score, log loss, expected calibration error).

scikit-learn computes everything except the expected calibration error, which
it does not offer.

Example:
    >>> import numpy as np
    >>> prob = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> calibration_scores(np.array([0, 1, 1]), prob)["brier"]
    0.13666666666666666
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics

__all__ = [
    "CALIBRATION_BINS",
    "average_precision",
    "calibration_scores",
    "expected_calibration_error",
]

CALIBRATION_BINS = 10


def average_precision(y_true: np.ndarray, prob: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Average precision (area under the precision-recall curve) one-vs-rest.

    Returns ``{"per_class": {name: AP or None}, "macro": AP or None, "micro": AP,
    "undefined": {key: reason}}``.  A class absent from ``y_true`` has no AP, and
    then neither has the macro average.

    Example:
        >>> ap = average_precision(np.array([0, 1]), np.eye(2), ["a", "b"])
        >>> ap["macro"], ap["micro"], ap["undefined"]
        (1.0, 1.0, {})
    """
    k = prob.shape[1]
    onehot = np.eye(k, dtype=np.int64)[y_true]
    support = onehot.sum(axis=0)
    undefined: dict[str, str] = {}
    per_class: dict[str, float | None] = {}
    for c, name in enumerate(names):
        if support[c]:
            per_class[name] = float(metrics.average_precision_score(onehot[:, c], prob[:, c]))
        else:
            per_class[name] = None
            undefined[f"per_class.{name}"] = (
                f"class {name} is absent from y_true: no positive example to recall"
            )
    absent = [name for c, name in enumerate(names) if not support[c]]
    macro = None
    if absent:
        undefined["macro"] = f"class(es) {', '.join(absent)} absent from y_true"
    else:
        macro = float(metrics.average_precision_score(onehot, prob, average="macro"))
    micro = float(metrics.average_precision_score(onehot, prob, average="micro"))
    return {"per_class": per_class, "macro": macro, "micro": micro, "undefined": undefined}


def calibration_scores(
    y_true: np.ndarray, prob: np.ndarray, *, bins: int = CALIBRATION_BINS
) -> dict[str, float | int]:
    """Brier score, log loss and expected calibration error of probabilities.

    ``brier`` is scikit-learn's ``brier_score_loss``: for two classes the mean
    squared error of ``P(positive)``; for more, the mean over examples of the
    squared error of the whole probability vector against the one-hot label.
    ``ece`` is :func:`expected_calibration_error` of the top-class confidence.

    Example:
        >>> scores = calibration_scores(np.array([0, 1]), np.eye(2))
        >>> scores["brier"], scores["ece"], scores["calibration_bins"]
        (0.0, 0.0, 10)
    """
    k = prob.shape[1]
    labels = list(range(k))
    return {
        "brier": float(metrics.brier_score_loss(y_true, prob if k > 2 else prob[:, 1],
                                                labels=labels if k > 2 else None)),
        "log_loss": float(metrics.log_loss(y_true, prob, labels=labels)),
        "ece": expected_calibration_error(y_true, prob, bins=bins),
        "calibration_bins": bins,
    }


def expected_calibration_error(
    y_true: np.ndarray, prob: np.ndarray, *, bins: int = CALIBRATION_BINS
) -> float:
    """Expected calibration error of the top-class confidence: the examples fall
    into ``bins`` equal-width confidence bins ``(lo, hi]``; the result is the
    example-weighted mean of ``|accuracy - mean confidence|`` over the bins.

    Hand-written: scikit-learn has no ECE (``calibration_curve`` drops the bin counts).

    Example:
        >>> expected_calibration_error(np.array([0, 0]), np.array([[0.75, 0.25], [0.75, 0.25]]))
        0.25
    """
    confidence = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(y_true))
