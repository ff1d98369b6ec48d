"""The records :func:`pipelines.load` returns, and the raw arrays sources hand over.

Example:
    >>> info = DatasetInfo(name="digits", source="digits", input_shape=(64,),
    ...                    num_classes=10, class_names=[str(i) for i in range(10)],
    ...                    num_examples={"train": 1293, "validation": 144, "test": 360})
    >>> info.num_examples["test"]
    360
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from pipelines.stream import EpochStream

__all__ = ["DatasetInfo", "RawData", "Splits"]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a :class:`Splits` holds.

    Attributes:
        name: the dataset name as asked (e.g. ``"auto"``).
        source: the source actually used (e.g. ``"mnist"``, ``"digits"``, ``"idx:/data"``).
        input_shape: shape of one example as the model sees it (after flatten).
        num_classes: number of classes; labels are in ``[0, num_classes)``.
        class_names: one name per class.
        num_examples: examples per split, keys ``train``, ``validation``, ``test``.
        note: one line for the user (e.g. why ``auto`` fell back to digits), or None.
        scale: the scaling applied, ``"unit"`` or ``"standardize"`` (``"auto"`` resolved).
        table: for a table, its fitted preprocessing (:mod:`pipelines.tables`:
            target, class names, schema, statistics), JSON-able; else None.
    """

    name: str
    source: str
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: list[str]
    num_examples: dict[str, int]
    note: str | None = None
    scale: str = "unit"
    table: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict.

        Example:
            >>> info = DatasetInfo("d", "d", (2,), 2, ["a", "b"], {"train": 1})
            >>> info.to_dict()["input_shape"]
            [2]
        """
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data


@dataclasses.dataclass(frozen=True)
class Splits:
    """Three ``tf.data.Dataset`` of ``(x float32, y int32)``, the :class:`DatasetInfo`,
    and, for ``pipelines.load(repeat=True)``, the training stream's
    :class:`pipelines.stream.EpochStream` (``train`` is then ``stream.dataset``).

    It unpacks as ``train, validation, test, info``.

    Example:
        >>> import pipelines
        >>> train, validation, test, info = pipelines.load("digits")
        >>> pipelines.load("digits", repeat=True).stream.batches_per_epoch
        13
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    info: DatasetInfo
    stream: EpochStream | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.train, self.validation, self.test, self.info))


@dataclasses.dataclass
class RawData:
    """Decoded arrays of one source, before any splitting or scaling.

    ``x_*`` have shape ``(n, *example_shape)`` (any real dtype), ``y_*`` shape ``(n,)``.
    ``class_names`` is ``None`` when the source does not name its classes: the
    labels are then the class indices ``0 .. K-1`` (checked, and named, by
    :func:`pipelines.load`).
    ``value_max`` is what ``scale="unit"`` divides by (255 for uint8 images);
    ``default_scale`` is what ``scale="auto"`` means for this source.

    Example:
        >>> raw = RawData("s", np.zeros((4, 2)), np.array([0, 1, 0, 1]),
        ...               np.zeros((2, 2)), np.array([0, 1]), ["a", "b"], 1.0)
        >>> raw.num_classes
        2
    """

    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] | None
    value_max: float
    note: str | None = None
    default_scale: str = "unit"

    @property
    def num_classes(self) -> int:
        return len(self.class_names or ())
