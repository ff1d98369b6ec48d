"""The most confidently wrong test images, as a gallery.

Example:
    >>> import numpy as np
    >>> images = np.zeros((3, 8, 8))
    >>> figure = misclassified_figure(images, [0, 1, 1], np.eye(2)[[1, 1, 0]])
    >>> len([ax for ax in figure.axes if ax.get_images()])
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from kerasdnn.evaluation.reports.metrics import (
    ReportInputError,
    as_probabilities,
    resolve_class_names,
)

__all__ = ["GALLERY_SIZE", "is_image_batch", "misclassified_figure", "most_confidently_wrong"]

GALLERY_SIZE = 25
_COLUMNS = 5


def is_image_batch(images: Any) -> bool:
    """True for ``(n, height, width)`` or ``(n, height, width, 1 | 3 | 4)`` arrays.

    Example:
        >>> is_image_batch(np.zeros((2, 28, 28))), is_image_batch(np.zeros((2, 64)))
        (True, False)
    """
    shape = np.shape(images)
    return len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3, 4))


def most_confidently_wrong(y_true: Any, y_prob: Any, *, limit: int = GALLERY_SIZE) -> np.ndarray:
    """Indices of the misclassified examples, most confident prediction first
    (ties: the earlier example first), at most ``limit``.

    Example:
        >>> most_confidently_wrong([0, 0, 1], np.array([[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]]))
        array([1, 2, 0])
    """
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    prob = as_probabilities(y_prob, num_examples=y_true.shape[0])
    predicted = prob.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    confidence = prob[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:limit]


def misclassified_figure(
    images: Any,
    y_true: Any,
    y_prob: Any,
    *,
    class_names: Sequence[str] | None = None,
    limit: int = GALLERY_SIZE,
    title: str | None = None,
) -> Figure:
    """A grid of the ``limit`` most confidently wrong images, each titled with the
    true label, the predicted label and its probability.

    Args:
        images: the test images in the order of ``y_true``, ``(n, h, w)`` or
            ``(n, h, w, channels)``, any real dtype (each is shown min-max scaled).
        y_true: integer labels ``(n,)``.
        y_prob: probabilities ``(n, k)`` (or a binary layout, as in the reports).
        class_names: one name per class (default ``"0"``, ``"1"``, …).
    """
    if not hasattr(images, "shape"):  # an array (or a memory map, a lazy view) stays one
        images = np.asarray(images)
    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    prob = as_probabilities(y_prob, num_examples=y_true.shape[0])
    if not is_image_batch(images) or images.shape[0] != y_true.shape[0]:
        raise ReportInputError(
            f"images must be ({y_true.shape[0]}, height, width[, channels]), got {images.shape}"
        )
    names = resolve_class_names(class_names, prob.shape[1])
    chosen = most_confidently_wrong(y_true, prob, limit=limit)
    rows = max(1, -(-len(chosen) // _COLUMNS))
    # A fixed grid: constrained layout takes seconds over 25 small axes.
    height = 2.5 * rows + 0.9
    figure = Figure(figsize=(2.2 * _COLUMNS, height))
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.9 / height,
                           hspace=0.45, wspace=0.1)
    axes = np.atleast_1d(figure.subplots(rows, _COLUMNS)).ravel()
    for ax in axes:
        ax.set_axis_off()
    if not len(chosen):
        axes[0].text(0.0, 0.5, "no misclassified test example", fontsize=12)
    for ax, index in zip(axes, chosen, strict=False):
        predicted = int(prob[index].argmax())
        ax.imshow(_displayable(images[index]), cmap="gray", interpolation="nearest")
        ax.set_title(
            f"true {names[y_true[index]]}\npredicted {names[predicted]} "
            f"({prob[index, predicted]:.2f})",
            fontsize=9,
        )
    figure.suptitle(title or f"Most confidently wrong test images ({len(chosen)} shown)")
    return figure


def _displayable(image: np.ndarray) -> np.ndarray:
    """Grey images as they are (imshow scales them); colour ones min-max scaled to [0, 1]."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        return image[..., 0]
    if image.ndim == 3:
        low, high = image.min(), image.max()
        return (image - low) / (high - low) if high > low else np.zeros_like(image)
    return image
