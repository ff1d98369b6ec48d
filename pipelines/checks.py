"""The rules every source's data must meet before a dataset is built, and the
checks of :func:`pipelines.load`'s arguments: one place for each, each failure
one line that names the problem and what to do.
"""

from __future__ import annotations

import numbers

import numpy as np

from pipelines.constants import COUNT_MAX, SCALES, SEED_MAX, is_seed, is_validation_split
from pipelines.errors import InvalidArgumentError, InvalidDataError
from pipelines.info import RawData

__all__ = ["check_arguments", "check_shuffle_buffer", "checked"]


def check_arguments(
    batch_size: int | None, validation_split: float, seed: int, scale: str
) -> None:
    """Refuse a bad argument of :func:`pipelines.load` before anything is read.

    Example:
        >>> check_arguments(0, 0.1, 1, "unit")
        Traceback (most recent call last):
        pipelines.errors.InvalidArgumentError: batch_size (--batch-size) must be a positive \
integer (at most 2147483647) or None, got 0
    """
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or not 1 <= batch_size <= COUNT_MAX
    ):
        raise InvalidArgumentError(
            f"batch_size (--batch-size) must be a positive integer (at most {COUNT_MAX}) or "
            f"None, got {batch_size!r}"
        )
    if not is_validation_split(validation_split):
        raise InvalidArgumentError(
            "validation_split (--validation-split) must be a fraction strictly between 0 and 1, "
            f"got {validation_split!r}"
        )
    if not is_seed(seed):
        raise InvalidArgumentError(
            f"seed (--seed) must be an integer 0 .. {SEED_MAX}, got {seed!r}")
    if scale not in SCALES:
        raise InvalidArgumentError(
            f"scale (--scale) must be one of {', '.join(SCALES)}, got {scale!r}"
        )


def check_shuffle_buffer(shuffle_buffer: int) -> None:
    """Refuse a ``shuffle_buffer`` of a streamed source that is no whole number of rows >= 1.

    Example:
        >>> check_shuffle_buffer(0)
        Traceback (most recent call last):
        pipelines.errors.InvalidArgumentError: shuffle_buffer (--shuffle-buffer) must be a \
whole number of rows >= 1, got 0
    """
    if not isinstance(shuffle_buffer, numbers.Integral) or isinstance(shuffle_buffer, bool) \
            or shuffle_buffer < 1:
        raise InvalidArgumentError("shuffle_buffer (--shuffle-buffer) must be a whole "
                                   f"number of rows >= 1, got {shuffle_buffer!r}")


def _integer_labels(y: np.ndarray, split: str, source: str) -> np.ndarray:
    y = np.asarray(y)
    integral = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    )
    if y.size and not integral:
        raise InvalidDataError(
            f"{source}: {split} labels must be integer class indices, got dtype {y.dtype}; "
            "give labels 0 .. K-1"
        )
    return y.astype(np.int64)


def _values(y: np.ndarray, chosen: np.ndarray) -> str:
    """``"255 (3 examples), 300 (1 example)"``: the labels in ``chosen`` with their counts."""
    found, counts = np.unique(y[np.isin(y, chosen)], return_counts=True)
    shown = [f"{v} ({c} example{'s' if c != 1 else ''})"
             for v, c in zip(found[:5], counts[:5], strict=True)]
    return ", ".join(shown) + (f" and {len(found) - 5} more" if len(found) > 5 else "")


def _spans(values: np.ndarray) -> str:
    """``"10..254"``, ``"3, 5..7"``: sorted integers as runs."""
    runs: list[list[int]] = []
    for value in (int(v) for v in values):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs[:5]) + (
        ", …" if len(runs) > 5 else "")


def _checked_classes(raw: RawData) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The label rule, for every source: labels are the integer class indices
    ``0 .. K-1``, with K the number of class names (or, for a source that names
    no classes, the largest training label + 1 and then every class present in
    train); at least two classes in train; no test class that train lacks.
    Returns int32 labels and the class names."""
    where = raw.source
    y_train = _integer_labels(raw.y_train, "train", where)
    y_test = _integer_labels(raw.y_test, "test", where)
    for split, y in (("train", y_train), ("test", y_test)):
        if np.any(y < 0):
            raise InvalidDataError(
                f"{where}: {split} labels must be class indices >= 0, found "
                f"{_values(y, np.unique(y[y < 0]))}; fix the labels"
            )
    present = np.unique(y_train)
    if raw.class_names is None:
        num_classes = int(present[-1]) + 1 if present.size else 0
        absent = np.setdiff1d(np.arange(num_classes), present)
        if absent.size:
            beyond = present[present > absent[0]]
            raise InvalidDataError(
                f"{where}: train labels must be the class indices 0..K-1 with every class "
                f"present, but {_spans(absent)} are missing while label(s) "
                f"{_values(y_train, beyond)} occur; relabel the classes "
                f"0..{present.size - 1} or drop the examples of stray labels"
            )
        class_names = [str(i) for i in range(num_classes)]
    else:
        class_names = list(raw.class_names)
        num_classes = len(class_names)
        for split, y in (("train", y_train), ("test", y_test)):
            outside = np.unique(y[y >= num_classes])
            if outside.size:
                raise InvalidDataError(
                    f"{where}: {split} labels must be class indices in [0, {num_classes}) "
                    f"for its {num_classes} class names, found {_values(y, outside)}; "
                    "fix the labels or the class names"
                )
    if present.size < 2:
        only = f"only label {_values(y_train, present)}" if present.size else "no labels"
        raise InvalidDataError(
            f"{where}: the training split has {only}; a classifier needs examples of at "
            "least two classes"
        )
    unseen = np.setdiff1d(np.unique(y_test), present)
    if unseen.size:
        raise InvalidDataError(
            f"{where}: test labels {_values(y_test, unseen)} never occur in the training "
            "split, so no model can learn them; add training examples of those classes or "
            "drop them from test"
        )
    return y_train.astype(np.int32), y_test.astype(np.int32), class_names


def _check_features(x: np.ndarray, split: str, source: str) -> None:
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InvalidDataError(
            f"{source}: {split} features must be real numbers, got dtype {x.dtype}"
        )
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        count = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise InvalidDataError(
            f"{source}: {split} features contain {count} NaN or infinite values; "
            "clean the data first"
        )
    if x.ndim < 2:
        raise InvalidDataError(
            f"{source}: {split} features need shape (examples, ...), got {x.shape}"
        )


def checked(raw: RawData) -> RawData:
    """``raw`` with int32 labels and its class names, once every rule holds: both
    splits non-empty, real finite features of one shape, and the label rule of
    :func:`_checked_classes`.  Each way it can fail is one line that says what to fix.

    Example:
        >>> raw = RawData("toy", np.zeros((2, 1)), np.array([0, 1]), np.zeros((1, 1)),
        ...               np.array([2]), class_names=None, value_max=1.0)
        >>> checked(raw)
        Traceback (most recent call last):
        pipelines.errors.InvalidDataError: toy: test labels 2 (1 example) never occur in the \
training split, so no model can learn them; add training examples of those classes or drop \
them from test
    """
    for split, x in (("train", raw.x_train), ("test", raw.x_test)):
        if len(x) == 0:
            raise InvalidDataError(f"{raw.source}: the {split} split is empty; give it examples")
        _check_features(x, split, raw.source)
    if raw.x_train.shape[1:] != raw.x_test.shape[1:]:
        raise InvalidDataError(
            f"{raw.source}: train examples have shape {raw.x_train.shape[1:]} "
            f"but test examples {raw.x_test.shape[1:]}; give train and test examples of "
            "one shape"
        )
    raw.y_train, raw.y_test, raw.class_names = _checked_classes(raw)
    return raw
