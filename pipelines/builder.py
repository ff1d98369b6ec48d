"""``pipelines.load``: a named source → train / validation / test ``tf.data`` pipelines.

Steps: read the source (decoded NumPy arrays) → check labels and features
(:mod:`pipelines.checks`) → carve validation from train (stratified, seeded;
never from test) → scale to [0, 1] or standardize (training statistics only)
and flatten, once, into one cached tensor → per epoch, one seeded permutation
(train only, epoch ``e`` shuffled by ``(seed, e)``) and one gather per batch →
``prefetch(AUTOTUNE)``.  That is the order of the TFDS Keras example and the
tf.data performance guide (scale → cache → shuffle → batch → prefetch), with
shuffle and batch done as one gather from the stored examples instead of
streaming single examples through ``shuffle`` and ``batch``: the same kind of
order for 30–60 % of ``tf.data``'s CPU time per epoch (``python -m benchmarks.stream``).

Example:
    >>> train, validation, test, info = load("digits", batch_size=32)
    >>> info.input_shape, info.num_examples
    ((64,), {'train': 1293, 'validation': 144, 'test': 360})
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import TYPE_CHECKING

import numpy as np

from pipelines.checks import check_arguments, checked
from pipelines.constants import BATCH_SIZE, SCALES, SEED, VALIDATION_SPLIT
from pipelines.errors import InvalidArgumentError
from pipelines.info import DatasetInfo, RawData, Splits
from pipelines.sources import read_source
from pipelines.splitting import split_indices
from pipelines.stream import (  # EpochStream and pass_seeds: importable from here too
    EpochStream,
    Examples,
    epoch_stream,
    one_pass,
    pass_seeds,
    reshuffled,
)

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.tf_setup import tf

__all__ = [
    "SCALES", "EpochStream", "Scaling", "load", "make_dataset", "make_stream",
    "pass_seeds", "raw_source_and_scaling", "standardizing", "train_and_validation",
]

SCALE_CHUNK = 8192  # examples scaled per vectorised call when caching


def _scaling(x_train: np.ndarray, scale: str, value_max: float) -> tuple[np.ndarray, np.ndarray]:
    """``(offset, multiplier)`` with ``(x - offset) * multiplier`` the scaled value
    (scalars for unit, per feature for standardize).  Standardize uses the training
    examples only (:func:`standardizing`)."""
    shape = x_train.shape[1:]
    if scale == "unit":
        return np.zeros((), np.float32), np.asarray(1.0 / value_max, np.float32)
    x64 = x_train.reshape(len(x_train), -1).astype(np.float64)
    return standardizing(x64.mean(axis=0), x64.std(axis=0), shape)


def standardizing(mean: np.ndarray, std: np.ndarray, shape: tuple[int, ...]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(offset, multiplier)`` of ``scale="standardize"`` (float32, of ``shape``) from the
    float64 per-feature ``mean`` and population ``std`` of the training examples;
    zero-variance features keep scale 1, as scikit-learn's StandardScaler does.

    Example:
        >>> offset, multiplier = standardizing(np.array([1.0, 2.0]), np.array([0.5, 0.0]), (2,))
        >>> offset.tolist(), multiplier.tolist()
        ([1.0, 2.0], [2.0, 1.0])
    """
    std = np.array(std, np.float64)
    std[std < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0
    return mean.reshape(shape).astype(np.float32), (1.0 / std).reshape(shape).astype(np.float32)


def _make(
    x: np.ndarray,
    y: np.ndarray,
    *,
    offset: np.ndarray,
    multiplier: np.ndarray,
    flatten: bool,
    batch_size: int | None,
    shuffle_seed: int | None,
    cache: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset | EpochStream:
    """The body of :func:`make_dataset` and :func:`make_stream`: the examples stored
    once, each element gathered from them (:mod:`pipelines.stream`)."""
    # Lazily: a bad name, file or label is reported before TensorFlow loads (seconds).
    from pipelines.tf_setup import tf

    num_examples = len(y)
    example_rank = x.ndim - 1
    num_features = math.prod(x.shape[1:])
    offset_t = tf.constant(offset, tf.float32)
    multiplier_t = tf.constant(multiplier, tf.float32)

    def scale_and_flatten(features: tf.Tensor) -> tf.Tensor:
        scaled = (tf.cast(features, tf.float32) - offset_t) * multiplier_t
        if flatten:  # the rank is static: one example, or a batch of them
            batched = scaled.shape.rank > example_rank
            scaled = tf.reshape(scaled, [-1, num_features] if batched else [num_features])
        return scaled

    with tf.device("/cpu:0"):  # tf.data runs on the host: keep the examples there
        if cache:  # scale once, in vectorised chunks, and keep the scaled examples
            features = tf.concat(
                [scale_and_flatten(x[start:start + SCALE_CHUNK])
                 for start in range(0, max(num_examples, 1), SCALE_CHUNK)], axis=0)
        else:
            features = tf.constant(x)
        labels = tf.constant(y.astype(np.int32))
    examples = Examples(features, labels, None if cache else scale_and_flatten)

    if shuffle_seed is not None and repeat:
        return epoch_stream(examples, batch_size=batch_size, seed=int(shuffle_seed))
    if shuffle_seed is None:
        dataset = one_pass(examples, None, batch_size or 1, batched=batch_size is not None)
    else:
        # Pass p (epoch p of fit) is shuffled by (seed, p): the sequence of orders is
        # fixed by the seed alone.
        dataset = reshuffled(examples, batch_size=batch_size, seed=int(shuffle_seed))
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    offset: np.ndarray,
    multiplier: np.ndarray,
    flatten: bool,
    batch_size: int | None,
    shuffle_seed: int | None,
    cache: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """One in-memory split as a ``tf.data`` pipeline of ``(x float32, y int32)``.

    The examples stay one tensor in memory; each element (a batch, or one
    example when ``batch_size`` is None) is sliced from it, or, when shuffled,
    gathered from it through that pass's permutation
    (``tf.random.experimental.stateless_shuffle``).  So ``tf.data`` handles one
    element per batch, not one per example.  Scaling and flattening are
    vectorised: with ``cache`` they run once, on chunks of examples, and the
    scaled float32 examples are kept; without, on each element (they commute
    with shuffling and batching, so the numbers are the same).

    With ``repeat`` and a ``shuffle_seed`` it is the endless stream of
    :func:`make_stream` (its ``dataset``).

    Example:
        >>> ds = make_dataset(np.ones((4, 2, 2), np.uint8), np.arange(4) % 2,
        ...                   offset=np.zeros((2, 2), np.float32),
        ...                   multiplier=np.full((2, 2), 0.5, np.float32),
        ...                   flatten=True, batch_size=2, shuffle_seed=None)
        >>> next(iter(ds))[0].numpy().tolist()
        [[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]
    """
    made = _make(x, y, offset=offset, multiplier=multiplier, flatten=flatten,
                 batch_size=batch_size, shuffle_seed=shuffle_seed, cache=cache, repeat=repeat)
    return made.dataset if isinstance(made, EpochStream) else made


def make_stream(
    x: np.ndarray,
    y: np.ndarray,
    *,
    offset: np.ndarray,
    multiplier: np.ndarray,
    flatten: bool,
    batch_size: int,
    shuffle_seed: int,
    cache: bool = True,
) -> EpochStream:
    """One in-memory training split as an endless stream of epochs: an
    :class:`EpochStream` whose epoch ``e`` is shuffled by ``(shuffle_seed, e)`` alone.

    Example:
        >>> stream = make_stream(np.arange(10)[:, None], np.arange(10) % 2,
        ...                      offset=np.zeros(()), multiplier=np.ones(()),
        ...                      flatten=True, batch_size=4, shuffle_seed=1)
        >>> stream.batches_per_epoch, [len(y) for _, y in stream.dataset.take(4)]
        (3, [4, 4, 2, 4])
    """
    return _make(x, y, offset=offset, multiplier=multiplier, flatten=flatten,
                 batch_size=batch_size, shuffle_seed=shuffle_seed, cache=cache, repeat=True)


@dataclasses.dataclass(frozen=True)
class Scaling:
    """How :func:`load` scales a source's examples: ``(x - offset) * multiplier``
    in float32 (then flattened when asked); ``scale`` is ``"unit"`` or ``"standardize"``."""

    scale: str
    offset: np.ndarray
    multiplier: np.ndarray


def _split_and_scaling(
    raw: RawData, validation_split: float, seed: int, scale: str
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], Scaling]:
    keep, held_out = split_indices(
        raw.y_train, float(validation_split), seed=int(seed), what="validation"
    )
    parts = {
        "train": (raw.x_train[keep], raw.y_train[keep]),
        "validation": (raw.x_train[held_out], raw.y_train[held_out]),
        "test": (raw.x_test, raw.y_test),
    }
    scale = raw.default_scale if scale == "auto" else scale
    offset, multiplier = _scaling(parts["train"][0], scale, raw.value_max)
    return parts, Scaling(scale, offset, multiplier)


def raw_source_and_scaling(
    name: str = "auto",
    *,
    validation_split: float = VALIDATION_SPLIT,
    seed: int = SEED,
    scale: str = "auto",
    data_dir: str | os.PathLike[str] | None = None,
    manual_dir: str | os.PathLike[str] | None = None,
) -> tuple[RawData, Scaling]:
    """The raw (unscaled) arrays of a source and the :class:`Scaling` that
    :func:`load` with the same arguments applies: what a serving artifact needs to
    take raw inputs (``kerasdnn.export``).

    Example:
        >>> raw, scaling = raw_source_and_scaling("digits", scale="standardize")
        >>> raw.x_test.dtype.name, scaling.scale, scaling.offset.shape
        ('uint8', 'standardize', (8, 8))
    """
    check_arguments(None, validation_split, seed, scale)
    raw = checked(read_source(name, data_dir=data_dir, manual_dir=manual_dir))
    return raw, _split_and_scaling(raw, validation_split, seed, scale)[1]


def train_and_validation(splits: Splits, *, batch_size: int, seed: int) -> EpochStream:
    """The training and validation examples of ``splits`` (finite, batched:
    ``pipelines.load(repeat=False)``) as one endless stream of epochs, epoch ``e``
    shuffled by ``(seed, e)`` alone: what a final retraining on both trains on.

    The examples are stored as one pass of ``splits.train`` (its first order)
    followed by ``splits.validation``, scaled as ``splits`` scaled them.

    Example:
        >>> import pipelines
        >>> splits = pipelines.load("digits", batch_size=100)
        >>> train_and_validation(splits, batch_size=100, seed=1).batches_per_epoch
        15
    """
    count = splits.info.num_examples["train"] + splits.info.num_examples["validation"]
    features, labels = (
        splits.train.unbatch().concatenate(splits.validation.unbatch())
        .batch(count).get_single_element()
    )
    return epoch_stream(Examples(features, labels), batch_size=batch_size, seed=seed)


def load(
    name: str = "auto",
    *,
    batch_size: int | None = BATCH_SIZE,
    validation_split: float = VALIDATION_SPLIT,
    seed: int = SEED,
    scale: str = "auto",
    flatten: bool = True,
    data_dir: str | os.PathLike[str] | None = None,
    manual_dir: str | os.PathLike[str] | None = None,
    cache: bool = True,
    repeat: bool = False,
) -> Splits:
    """Load a dataset by name as train / validation / test ``tf.data.Dataset``s.

    Args:
        name: a source from ``python -m pipelines --list`` (``auto``, ``mnist``,
            ``fashion_mnist``, ``digits``, ``tfds:NAME``, ``idx:DIR``, ``npz:PATH``).
        batch_size: examples per batch; ``None`` yields unbatched examples.
        validation_split: fraction of the training split held out (stratified, seeded).
        seed: seeds the validation hold-out and the training shuffle.
        scale: ``"unit"`` (to [0, 1]), ``"standardize"`` (per feature, train
            statistics), or ``"auto"``: the source's own choice (unit for images,
            standardize for digits); ``info.scale`` says which was used.
        flatten: flatten each example to one vector (what a dense network takes).
        data_dir: TFDS data dir (default TFDS's own, honouring ``TFDS_DATA_DIR``).
        manual_dir: folder with the original archive files of a TFDS dataset.
        cache: cache the scaled examples in memory after the first epoch.
        repeat: make train an endless stream of epochs (``ceil(n / batch_size)``
            batches each; give ``fit`` that as ``steps_per_epoch``) in which epoch
            ``e`` is shuffled by ``(seed, e)`` alone, so ``train.skip(k * steps)``
            starts exactly at epoch ``k``; ``splits.stream`` is that stream's
            :class:`EpochStream`, and ``pipelines.feed.for_fit(splits.stream,
            skip=k * steps)`` starts there without producing the skipped epochs
            (how ``kerasdnn.train`` resumes a run).  Needs a ``batch_size``.

    Returns:
        :class:`Splits` ``(train, validation, test, info)`` (and ``stream`` with
        ``repeat``); train is shuffled with ``seed`` and reshuffled each epoch;
        validation and test keep a fixed order.

    Example:
        >>> splits = load("digits", batch_size=None, scale="standardize")
        >>> x, y = next(iter(splits.train))
        >>> x.shape, x.dtype.name, y.dtype.name
        (TensorShape([64]), 'float32', 'int32')
    """
    check_arguments(batch_size, validation_split, seed, scale)
    if repeat and batch_size is None:
        raise InvalidArgumentError("repeat=True needs a batch_size: an endless stream is "
                                   "made of batches")
    raw = checked(read_source(name, data_dir=data_dir, manual_dir=manual_dir))
    parts, scaling = _split_and_scaling(raw, validation_split, seed, scale)
    scale, offset, multiplier = scaling.scale, scaling.offset, scaling.multiplier
    made = {
        split: _make(
            x,
            y,
            offset=offset,
            multiplier=multiplier,
            flatten=flatten,
            batch_size=batch_size,
            shuffle_seed=int(seed) if split == "train" else None,
            cache=cache,
            repeat=repeat and split == "train",
        )
        for split, (x, y) in parts.items()
    }
    example_shape = raw.x_train.shape[1:]
    info = DatasetInfo(
        name=name,
        source=raw.source,
        input_shape=(math.prod(example_shape),) if flatten else tuple(example_shape),
        num_classes=raw.num_classes,
        class_names=list(raw.class_names),
        num_examples={split: len(y) for split, (_, y) in parts.items()},
        note=raw.note,
        scale=scale,
    )
    stream = made["train"] if isinstance(made["train"], EpochStream) else None
    train = stream.dataset if stream is not None else made["train"]
    return Splits(train, made["validation"], made["test"], info, stream)
