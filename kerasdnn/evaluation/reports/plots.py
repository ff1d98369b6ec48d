"""Report figures drawn by scikit-learn's displays on headless matplotlib.

Every function returns a :class:`matplotlib.figure.Figure` built directly (no
``pyplot`` figure manager, so nothing leaks into global state and no display is
needed); :func:`png_bytes` renders one with the Agg canvas.  In a notebook a
returned figure shows inline when it is the value of a cell.

Example:
    >>> import numpy as np
    >>> figure = roc_figure([0, 1, 1, 0], np.array([0.1, 0.8, 0.6, 0.3]))
    >>> png_bytes(figure)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn import metrics
from sklearn.calibration import CalibrationDisplay

from kerasdnn.evaluation.reports.metrics import (
    ReportInputError,
    as_probabilities,
    resolve_class_names,
)

__all__ = [
    "calibration_figure",
    "confusion_matrix_figure",
    "history_figure",
    "png_bytes",
    "pr_figure",
    "roc_figure",
]

_MACRO_GRID_POINTS = 1001
_MAX_ANNOTATED_CLASSES = 20


def roc_figure(
    y_true: Any,
    y_prob: Any,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """ROC curves: binary → the positive class; k classes → one-vs-rest per class
    plus the micro- and macro-average curves.  Always the chance line.

    A class absent from ``y_true`` (or making up all of it) has no curve.

    Example:
        >>> import numpy as np
        >>> figure = roc_figure([0, 1, 2], np.eye(3), class_names=["a", "b", "c"])
        >>> len(figure.axes)
        1
    """
    y_true, prob, names, onehot = _scored(y_true, y_prob, class_names)
    k = len(names)
    drawable = [c for c in range(k) if 0 < onehot[:, c].sum() < len(y_true)]

    figure = Figure(figsize=(7.0, 6.0), layout="constrained")
    ax = figure.subplots()
    if k == 2:
        if drawable:
            metrics.RocCurveDisplay.from_predictions(
                y_true, prob[:, 1], pos_label=1, name=f"{names[1]} (positive class)", ax=ax,
                plot_chance_level=True,
            )
    else:
        for c in drawable:
            metrics.RocCurveDisplay.from_predictions(
                onehot[:, c], prob[:, c], name=f"{names[c]} vs rest", ax=ax,
                curve_kwargs={"linewidth": 1, "alpha": 0.6},
            )
        metrics.RocCurveDisplay.from_predictions(
            onehot.ravel(), prob.ravel(), name="micro-average", ax=ax,
            curve_kwargs={"linestyle": ":", "linewidth": 3, "color": "deeppink"},
            plot_chance_level=True,
        )
        if drawable:
            # Macro average: mean of the per-class TPRs on a common FPR grid
            # (scikit-learn's multiclass ROC example).
            grid = np.linspace(0.0, 1.0, _MACRO_GRID_POINTS)
            mean_tpr = np.zeros_like(grid)
            for c in drawable:
                fpr, tpr, _ = metrics.roc_curve(onehot[:, c], prob[:, c])
                mean_tpr += np.interp(grid, fpr, tpr)
            mean_tpr /= len(drawable)
            metrics.RocCurveDisplay(
                fpr=grid, tpr=mean_tpr, roc_auc=metrics.auc(grid, mean_tpr),
                name="macro-average",
            ).plot(ax=ax, curve_kwargs={"linestyle": ":", "linewidth": 3, "color": "navy"})
    if k == 2 and not drawable:
        _chance_line(ax)
    if len(drawable) < k:
        missing = ", ".join(names[c] for c in range(k) if c not in drawable)
        ax.text(0.98, 0.02, f"no curve (single-class labels): {missing}",
                ha="right", va="bottom", fontsize=8, transform=ax.transAxes)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(title or ("ROC curve" if k == 2 else "One-vs-rest ROC curves"))
    ax.legend(loc="lower right", fontsize="small")
    return figure


def pr_figure(
    y_true: Any,
    y_prob: Any,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Precision-recall curves: binary → the positive class; k classes → one-vs-rest
    per class plus the micro-average curve.  The legend gives each average precision.

    Example:
        >>> import numpy as np
        >>> figure = pr_figure([0, 1, 2], np.eye(3), class_names=["a", "b", "c"])
        >>> figure.axes[0].get_xlabel()
        'Recall'
    """
    y_true, prob, names, onehot = _scored(y_true, y_prob, class_names)
    k = len(names)
    figure = Figure(figsize=(7.0, 6.0), layout="constrained")
    ax = figure.subplots()
    if k == 2:
        if onehot[:, 1].any():
            metrics.PrecisionRecallDisplay.from_predictions(
                y_true, prob[:, 1], pos_label=1, name=f"{names[1]} (positive class)", ax=ax,
                plot_chance_level=True,
            )
    else:
        for c in range(k):
            if onehot[:, c].any():
                metrics.PrecisionRecallDisplay.from_predictions(
                    onehot[:, c], prob[:, c], name=f"{names[c]} vs rest", ax=ax,
                    curve_kwargs={"linewidth": 1, "alpha": 0.6},
                )
        metrics.PrecisionRecallDisplay.from_predictions(
            onehot.ravel(), prob.ravel(), name="micro-average", ax=ax,
            curve_kwargs={"linestyle": ":", "linewidth": 3, "color": "deeppink"},
        )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.05)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title(title or ("Precision-recall curve" if k == 2
                           else "One-vs-rest precision-recall curves"))
    ax.legend(loc="lower left", fontsize="small")
    return figure


def calibration_figure(
    y_true: Any,
    y_prob: Any,
    *,
    bins: int = 10,
    title: str | None = None,
) -> Figure:
    """Reliability diagram (``CalibrationDisplay``) over a histogram of confidences:
    binary → ``P(positive)`` against the positive frequency; k classes → the
    top-class confidence against the accuracy.

    Example:
        >>> import numpy as np
        >>> figure = calibration_figure([0, 1, 1], np.array([0.2, 0.9, 0.6]))
        >>> len(figure.axes)
        2
    """
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    prob = as_probabilities(y_prob, num_examples=y_true.shape[0])
    if prob.shape[1] == 2:
        outcome, score = y_true, prob[:, 1]
        name, what = "P(positive)", "Fraction of positives"
    else:
        outcome = (prob.argmax(axis=1) == y_true).astype(np.int64)
        score, name, what = prob.max(axis=1), "top-class confidence", "Accuracy"
    figure = Figure(figsize=(7.0, 7.5), layout="constrained")
    curve_ax, hist_ax = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    CalibrationDisplay.from_predictions(
        outcome, score, n_bins=bins, strategy="uniform", name=name, ax=curve_ax,
        pos_label=1, marker="o",
    )
    curve_ax.set_ylabel(what)
    curve_ax.set_xlabel("")
    curve_ax.set_title(title or "Reliability diagram")
    curve_ax.legend(loc="upper left", fontsize="small")
    hist_ax.hist(score, bins=np.linspace(0.0, 1.0, bins + 1), color="tab:blue", alpha=0.7)
    hist_ax.set_xlabel(f"Mean predicted probability ({name})")
    hist_ax.set_ylabel("Examples")
    return figure


def confusion_matrix_figure(
    report: Mapping[str, Any], *, title: str | None = None
) -> Figure:
    """Raw and row-normalized confusion matrices of a report, side by side.

    Example:
        >>> from kerasdnn.evaluation.reports.metrics import classification_report
        >>> figure = confusion_matrix_figure(classification_report([0, 1], [0.2, 0.7]))
        >>> len(figure.axes) >= 2
        True
    """
    names = list(report["class_names"])
    annotate = len(names) <= _MAX_ANNOTATED_CLASSES
    figure = Figure(figsize=(6.5 * 2, 5.5), layout="constrained")
    raw_ax, normalized_ax = figure.subplots(1, 2)
    panels = (
        (raw_ax, np.asarray(report["confusion_matrix"]), "d", "Counts"),
        (normalized_ax, np.asarray(report["confusion_matrix_normalized"]), ".2f",
         "Normalized over true labels"),
    )
    for ax, matrix, values_format, panel_title in panels:
        metrics.ConfusionMatrixDisplay(confusion_matrix=matrix, display_labels=names).plot(
            ax=ax, cmap="Blues", values_format=values_format, include_values=annotate,
            colorbar=True, xticks_rotation="vertical" if len(names) > 10 else "horizontal",
        )
        ax.set_title(panel_title)
    if title:
        figure.suptitle(title)
    return figure


def history_figure(history: Mapping[str, Sequence[float]], *, title: str | None = None) -> Figure:
    """Per-epoch curves of a Keras ``History.history`` dict: loss and accuracy,
    training and validation (``val_`` keys), and the learning rate when logged.
    Without loss or accuracy, every metric present gets a panel.

    Example:
        >>> figure = history_figure({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]})
        >>> [ax.get_title() for ax in figure.axes]
        ['loss']
    """
    series = _check_history(history)
    bases = [name for name in ("loss", "accuracy", "learning_rate") if name in series]
    if not bases or bases == ["learning_rate"]:
        bases = sorted({name.removeprefix("val_") for name in series})
    figure = Figure(figsize=(6.0 * len(bases), 4.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(bases)))
    for ax, base in zip(axes, bases, strict=True):
        for key, label in ((base, "train"), (f"val_{base}", "validation")):
            if key in series:
                values = series[key]
                ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=label)
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.set_ylabel(base)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        figure.suptitle(title)
    return figure


def png_bytes(figure: Figure, *, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (Agg canvas; no display, no pyplot)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _scored(
    y_true: Any, y_prob: Any, class_names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """``(labels, probabilities (n, k), class names, one-hot labels)``, checked."""
    labels = np.asarray(y_true).astype(np.int64).reshape(-1)
    prob = as_probabilities(y_prob, num_examples=labels.shape[0])
    names = resolve_class_names(class_names, prob.shape[1])
    return labels, prob, names, np.eye(prob.shape[1], dtype=np.int64)[labels]


def _chance_line(ax: Any) -> None:
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1,
            label="chance level (AUC = 0.5)")


def _check_history(history: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    if not isinstance(history, Mapping) or not history:
        raise ReportInputError(
            "history must be a non-empty dict of per-epoch lists, like Keras History.history"
        )
    series: dict[str, list[float]] = {}
    for key, values in history.items():
        try:
            series[str(key)] = [float(value) for value in values]
        except (TypeError, ValueError):
            raise ReportInputError(
                f"history[{key!r}] must be a list of numbers (one per epoch)"
            ) from None
    return series
