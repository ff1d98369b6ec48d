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
    "thin_curve",
]

_MACRO_GRID_POINTS = 1001
CURVE_COLUMNS = 2000  # strips of a curve's x axis kept for drawing: ~3 per pixel at 100 dpi
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
            _roc_display(y_true, prob[:, 1], f"{names[1]} (positive class)").plot(
                ax=ax, plot_chance_level=True)
    else:
        curves = {c: metrics.roc_curve(onehot[:, c], prob[:, c])[:2] for c in drawable}
        for c, (fpr, tpr) in curves.items():
            _roc_display(onehot[:, c], prob[:, c], f"{names[c]} vs rest", (fpr, tpr)).plot(
                ax=ax, curve_kwargs={"linewidth": 1, "alpha": 0.6})
        _roc_display(onehot.ravel(), prob.ravel(), "micro-average").plot(
            ax=ax, curve_kwargs={"linestyle": ":", "linewidth": 3, "color": "deeppink"},
            plot_chance_level=True)
        if drawable:
            # Macro average: mean of the per-class TPRs on a common FPR grid
            # (scikit-learn's multiclass ROC example).
            grid = np.linspace(0.0, 1.0, _MACRO_GRID_POINTS)
            mean_tpr = np.zeros_like(grid)
            for fpr, tpr in curves.values():
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
            _pr_display(onehot[:, 1], prob[:, 1], f"{names[1]} (positive class)").plot(
                ax=ax, plot_chance_level=True)
    else:
        for c in range(k):
            if onehot[:, c].any():
                _pr_display(onehot[:, c], prob[:, c], f"{names[c]} vs rest").plot(
                    ax=ax, curve_kwargs={"linewidth": 1, "alpha": 0.6})
        _pr_display(onehot.ravel(), prob.ravel(), "micro-average").plot(
            ax=ax, curve_kwargs={"linestyle": ":", "linewidth": 3, "color": "deeppink"})
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


def thin_curve(x: np.ndarray, y: np.ndarray, *, columns: int = CURVE_COLUMNS
               ) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve over ``x`` in ``[0, 1]`` that a figure can show: in each of
    ``columns`` strips of ``x``, its first, last, lowest and highest points (in their
    order), so every strip spans the same ``y`` range as the whole curve's.

    A ROC or precision-recall curve has a point per distinct score: hundreds of thousands
    on a large test split, which matplotlib keeps and transforms in full before its
    path simplification (hundreds of MB, seconds), to draw a few hundred pixels.  So
    they are thinned (by hand: neither matplotlib nor scikit-learn bounds a curve's
    points); the AUC and average precision are computed on the full curve.

    Example:
        >>> x = np.linspace(0, 1, 1_000_001)
        >>> thinned_x, thinned_y = thin_curve(x, x ** 2, columns=100)
        >>> len(thinned_x) <= 4 * 101, [float(thinned_x[0]), float(thinned_y[-1])]
        (True, [0.0, 1.0])
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) <= 4 * columns:
        return x, y
    strip = np.minimum(np.floor(x * columns), columns)
    starts = np.flatnonzero(np.r_[True, strip[1:] != strip[:-1]])
    ends = np.r_[starts[1:], len(x)] - 1
    run = np.repeat(np.arange(len(starts)), ends - starts + 1)
    by_height = np.lexsort((y, run))  # by run, then by y: each run's lowest .. highest
    lowest = by_height[starts]
    highest = by_height[ends]
    keep = np.unique(np.concatenate([starts, ends, lowest, highest]))
    return x[keep], y[keep]


def _roc_display(labels: np.ndarray, scores: np.ndarray, name: str,
                 curve: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """A ``RocCurveDisplay`` of ``scores`` against the 0/1 ``labels``, as
    ``from_predictions`` makes it (``curve``: its ``(fpr, tpr)`` already computed),
    with the points thinned for drawing (:func:`thin_curve`) and the AUC of all."""
    fpr, tpr = curve if curve is not None else metrics.roc_curve(labels, scores)[:2]
    auc = metrics.auc(fpr, tpr)
    fpr, tpr = thin_curve(fpr, tpr)
    return metrics.RocCurveDisplay(fpr=fpr, tpr=tpr, roc_auc=auc, name=name, pos_label=1)


def _pr_display(labels: np.ndarray, scores: np.ndarray, name: str) -> Any:
    """A ``PrecisionRecallDisplay`` of ``scores`` against the 0/1 ``labels``, as
    ``from_predictions`` makes it, with the points thinned for drawing
    (:func:`thin_curve`) and the average precision of all."""
    precision, recall, _ = metrics.precision_recall_curve(labels, scores,
                                                          drop_intermediate=True)
    average = metrics.average_precision_score(labels, scores)
    recall, precision = thin_curve(recall, precision)
    return metrics.PrecisionRecallDisplay(
        precision=precision, recall=recall, average_precision=average, name=name,
        pos_label=1, prevalence_pos_label=float(np.mean(labels)))


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
