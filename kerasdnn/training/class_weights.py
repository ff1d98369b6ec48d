"""Class weights: ``class_weight`` of a :class:`~kerasdnn.core.config.TrainConfig` turned
into per-example sample weights of the training stream.

Keras's ``fit(class_weight=...)`` maps a ``tf.data`` input to ``(x, y, sample_weight)``
with ``sample_weight = weights[y]`` in its data adapter, and refuses iterators, which
the JAX and PyTorch feeds are (:mod:`pipelines.feed`).  :func:`weighted_stream` does
the same map on the stream itself, before the feed, on every backend; each custom
step then computes Keras's weighted loss (``sum(w * loss) / batch``, see
:mod:`kerasdnn.network.steps`), which is what stock ``fit(class_weight=...)`` computes.
The validation data stays unweighted, as in Keras.

``"balanced"`` weights are scikit-learn's ``compute_class_weight("balanced")`` of
the training split's labels: ``n_samples / (n_classes * count)``, from the count of each
class (counted batch by batch: a streamed table is never held whole).

Example:
    >>> import numpy as np
    >>> class_weight_vector("balanced", np.array([3, 1]), ["a", "b"]).tolist()
    [0.6666666666666666, 2.0]
    >>> class_weight_vector({"b": 3}, np.array([1, 1]), ["a", "b"]).tolist()
    [1.0, 3.0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kerasdnn.core.config import TrainConfig
from kerasdnn.core.errors import ConfigError

__all__ = ["class_weight_vector", "training_class_counts", "weighted_stream"]


def class_weight_vector(spec: str | Mapping[str, float] | None, counts: np.ndarray,
                        class_names: Sequence[str]) -> np.ndarray | None:
    """One weight per class (float64) for ``spec``: ``None`` (none), ``"balanced"``
    (from ``counts``, the training examples of each class) or ``{class name or index:
    weight}`` (the others weigh 1).

    Raises:
        ConfigError: ``balanced`` with a class of no example, or a key that names no
            class (the classes are listed).
    """
    if spec is None:
        return None
    count = len(class_names)
    if spec == "balanced":
        from sklearn.utils.class_weight import compute_class_weight

        counts = np.bincount(np.arange(len(counts)), weights=counts, minlength=count)
        if not np.all(counts > 0):
            missing = [class_names[i] for i in range(count) if counts[i] == 0]
            raise ConfigError(f"class_weight balanced: class(es) {', '.join(missing)} have no "
                              "training example; give weights as a JSON object instead")
        # each class once, weighing its count: the labels' weights without the labels
        return compute_class_weight("balanced", classes=np.arange(count), y=np.arange(count),
                                    sample_weight=counts)
    weights = np.ones(count)
    names = [str(name) for name in class_names]
    for key, weight in spec.items():
        if key in names:
            weights[names.index(key)] = weight
        elif key.isdigit() and int(key) < count:
            weights[int(key)] = weight
        else:
            raise ConfigError(f"class_weight names no class {key!r}; the classes are "
                              f"{', '.join(names)} (or their indices 0-{count - 1})")
    return weights


def training_class_counts(splits: Any, num_classes: int,
                          merge_validation: bool = False) -> np.ndarray:
    """The examples of each class in one epoch of the training split (with
    ``merge_validation``, and in the validation split), counted batch by batch
    (NumPy ``int64``, ``(num_classes,)``).

    Example:
        >>> import pipelines
        >>> training_class_counts(pipelines.load("digits", batch_size=500), 10).sum()
        np.int64(1293)
    """
    stream = splits.stream
    batches = (stream.blocks(0, 1).take(stream.batches_per_epoch) if stream is not None
               else splits.train)
    datasets = [batches, splits.validation] if merge_validation else [batches]
    counts = np.zeros(num_classes, np.int64)
    for dataset in datasets:
        for batch in dataset.as_numpy_iterator():
            counts += np.bincount(np.asarray(batch[1]).reshape(-1), minlength=num_classes)
    return counts


def weighted_stream(train_data: Any, splits: Any, train_config: TrainConfig,
                    merge_validation: bool = False) -> Any:
    """``train_data`` (a ``tf.data.Dataset`` or an
    :class:`~pipelines.builder.EpochStream` of ``(x, y)``) as ``(x, y, weight of y's
    class)``; unchanged without ``class_weight``.

    Example:
        >>> import pipelines
        >>> splits = pipelines.load("digits", batch_size=50)
        >>> data = weighted_stream(splits.train, splits, TrainConfig(class_weight={"0": 2}))
        >>> [round(float(w), 1) for w in next(iter(data))[2][:3]]
        [1.0, 1.0, 1.0]
    """
    if train_config.class_weight is None:
        return train_data
    import tensorflow as tf

    names = list(splits.info.class_names)
    vector = class_weight_vector(train_config.class_weight,
                                 training_class_counts(splits, len(names), merge_validation),
                                 names)
    table = tf.constant(vector, tf.float32)  # float32, as Keras's own class-weight map

    def weigh(x: Any, y: Any) -> tuple[Any, Any, Any]:
        classes = tf.cast(tf.reshape(y, [-1]), tf.int32)
        return x, y, tf.gather(table, classes)

    def mapped(dataset: Any) -> Any:
        return dataset.map(weigh, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    if hasattr(train_data, "blocks"):  # an EpochStream: the map on each of its blocks
        blocks = train_data.blocks
        # no longer its bare examples: not kept on the device (pipelines.resident)
        return dataclasses.replace(train_data, blocks=lambda epoch, size: mapped(
            blocks(epoch, size)), examples=None, seed=None)
    return mapped(train_data)
