"""``pipelines.load("npz:PATH" or "idx:DIR", stream=True)``: arrays larger than memory,
read piece by piece (:mod:`pipelines.array_files`), never whole.

* **Pieces.**  A piece is a range of rows of the training arrays (about
  :data:`PIECE_BYTES` of features, at least :data:`MIN_PIECES` pieces); the test
  split is the file's own ``x_test``/``y_test``, read in pieces too.  Only the labels
  (one integer a row) are held whole, to check them as the in-memory load does.
* **Validation by hash.**  A training row is held out for validation by a hash of
  its row number and the seed alone (:func:`~pipelines.tables.plan.split_codes`, as a
  streamed table): ``validation_split`` of the rows in expectation, whichever process
  reads them; unlike the in-memory split, not stratified (that needs every label
  before the first row is read).
* **Scaling** as in memory: ``"unit"`` (the default of these sources) divides by the
  dtype's range (uint8: 255; other integers: the largest value of ``x_train``, one
  pass; floats: 1); ``"standardize"`` takes the per-feature mean and standard
  deviation of the training rows in one pass, in float64 (pieces merged with Chan et
  al.'s pairwise update: NumPy's two-pass ``mean``/``std`` to 1e-10 relative, tested).
* **Refused**: members compressed by ``np.savez_compressed`` and gzipped IDX files,
  which have no rows at an offset to read (:mod:`pipelines.array_files`).
* **Bounded shuffle and per-process pieces** as for tables
  (:mod:`pipelines.piece_stream`).

Example:
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/m.npz"
    >>> rng = np.random.default_rng(0)
    >>> np.savez(path, x_train=rng.integers(0, 255, (300, 4, 4), np.uint8),
    ...          y_train=np.arange(300) % 3, x_test=np.zeros((30, 4, 4), np.uint8),
    ...          y_test=np.arange(30) % 3)
    >>> splits = load_streamed_arrays(f"npz:{path}", batch_size=32, repeat=True)
    >>> splits.info.input_shape, splits.info.num_examples, splits.info.scale
    ((16,), {'train': 275, 'validation': 25, 'test': 30}, 'unit')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pipelines.array_files import StoredArray, StoredArrays, stored_arrays
from pipelines.builder import Scaling, standardizing
from pipelines.checks import check_arguments, check_shuffle_buffer, checked
from pipelines.constants import BATCH_SIZE, SEED, SHUFFLE_BUFFER, VALIDATION_SPLIT
from pipelines.errors import InvalidArgumentError, InvalidDataError
from pipelines.info import DatasetInfo, RawData, Splits
from pipelines.piece_stream import (
    Shard,
    batched,
    in_caller,
    shuffled_pieces,
    training_stream,
)
from pipelines.read_ahead import read_ahead
from pipelines.sources import check_counts
from pipelines.stream import EpochStream, pass_seeds
from pipelines.tables.plan import split_codes

__all__ = ["MIN_PIECES", "PIECE_BYTES", "load_streamed_arrays", "pieces", "raw_test_and_scaling",
           "training_moments"]

PIECE_BYTES = 8 << 20  # features per piece: ~8 MiB
MIN_PIECES = 16  # a small file still shuffles across pieces and deals to processes


def pieces(count: int, row_bytes: int, piece_bytes: int = PIECE_BYTES) -> list[tuple[int, int]]:
    """``(start, stop)`` row ranges of about ``piece_bytes`` each (at most ``count /
    MIN_PIECES`` rows), covering ``count`` rows.

    Example:
        >>> pieces(100, 4, 32)[:3], len(pieces(100, 1, 1 << 20))
        ([(0, 7), (7, 14), (14, 21)], 15)
    """
    step = max(1, min(piece_bytes // max(row_bytes, 1), -(-count // MIN_PIECES)))
    return [(start, min(start + step, count)) for start in range(0, count, step)]


@dataclasses.dataclass(frozen=True)
class _Rows:
    """The rows of one source as the streams read them: stored features, checked
    labels, each training row's split code and the scaling."""

    stored: StoredArrays
    labels: Mapping[str, np.ndarray]  # "train" (the file's), "test": int32
    split: Mapping[str, float]  # seed and validation_split
    offset: np.ndarray
    multiplier: np.ndarray
    flatten: bool

    def codes(self, start: int, stop: int) -> np.ndarray:
        return _codes(self.split["validation_split"], int(self.split["seed"]))(start, stop)

    def chunks(self, split: str, records: Sequence[Mapping[str, Any]]
               ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """``({"x": raw rows}, labels)`` of ``split`` in ``records``, piece by piece."""
        file = "test" if split == "test" else "train"
        x = self.stored.x_test if file == "test" else self.stored.x_train
        for record in records:
            start, stop = record["start"], record["stop"]
            rows, labels = x.rows(start, stop), self.labels[file][start:stop]
            if file == "train":
                keep = self.codes(start, stop) == (1 if split == "validation" else 0)
                rows, labels = rows[keep], labels[keep]
            if len(labels):
                yield {"x": rows}, labels

    def scaled(self, chunks: Iterator[tuple[dict[str, np.ndarray], np.ndarray]]
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for columns, labels in chunks:
            x = (columns["x"].astype(np.float32) - self.offset) * self.multiplier
            yield (x.reshape(len(x), -1) if self.flatten else x), labels

    def dataset(self, generate: Any, args: tuple[Any, ...] = ()) -> Any:
        """The generated ``(x, y)`` chunks as a ``tf.data.Dataset``."""
        from pipelines.tf_setup import tf

        shape = self.stored.x_train.shape[1:]
        signature = (tf.TensorSpec([None, math.prod(shape)] if self.flatten
                                   else [None, *shape], tf.float32),
                     tf.TensorSpec([None], tf.int32))
        return in_caller(tf.data.Dataset.from_generator(generate, args=args or None,
                                                        output_signature=signature))

    def shuffled(self, records: Sequence[Mapping[str, Any]], seed: Sequence[int],
                 buffer: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.scaled(shuffled_pieces(
            records, lambda pieces: self.chunks("train", pieces), seed, buffer))


@dataclasses.dataclass
class _Scan:
    """What one pass over the training file's rows found: the largest value (integer
    features), and ``count``, ``mean``, ``m2`` (float64) of the training rows."""

    largest: float = 0.0
    count: int = 0
    mean: np.ndarray | float = 0.0
    m2: np.ndarray | float = 0.0

    def add(self, x64: np.ndarray) -> None:
        """Merge the moments of ``x64`` (rows × features) in (Chan et al.'s pairwise
        update: no running sum of squares to lose precision in)."""
        if not len(x64):
            return
        piece_mean = x64.mean(axis=0)
        piece_m2 = ((x64 - piece_mean) ** 2).sum(axis=0)
        total = self.count + len(x64)
        delta = piece_mean - self.mean
        self.mean = self.mean + delta * (len(x64) / total)
        self.m2 = self.m2 + piece_m2 + delta**2 * (self.count * len(x64) / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.asarray(self.m2) / max(self.count, 1))


def _scan(x: StoredArray, records: Sequence[Mapping[str, Any]], codes: Any, *,
          where: str, split: str, moments: bool) -> _Scan:
    """One pass over ``records`` of ``x``: every value checked finite (floats), the
    largest value (integers) and, with ``moments``, the training rows' moments."""
    found = _Scan()
    for record in records:
        start, stop = record["start"], record["stop"]
        piece = x.rows(start, stop)
        if np.issubdtype(piece.dtype, np.floating) and not np.all(np.isfinite(piece)):
            raise InvalidDataError(f"{where}: {split} features contain NaN or infinite values "
                                   f"(rows {start}..{stop - 1}); clean the data first")
        if piece.size and np.issubdtype(piece.dtype, np.integer):
            found.largest = max(found.largest, float(piece.max()))
        if moments:
            found.add(piece[codes(start, stop) == 0].reshape(-1, math.prod(x.shape[1:]))
                      .astype(np.float64))
    return found


def training_moments(name: str, *, validation_split: float = VALIDATION_SPLIT,
                     seed: int = SEED, piece_bytes: int = PIECE_BYTES
                     ) -> tuple[int, np.ndarray, np.ndarray]:
    """``(count, mean, std)`` per feature (float64) of the training rows of a streamed
    ``npz:``/``idx:`` source, from one pass: what ``scale="standardize"`` uses.

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/m.npz"
        >>> x = np.arange(40, dtype=np.float32).reshape(20, 2)
        >>> np.savez(path, x_train=x, y_train=np.arange(20) % 2, x_test=x, y_test=x[:, 0] % 2)
        >>> count, mean, std = training_moments(f"npz:{path}", validation_split=0.25, seed=1)
        >>> count, mean.shape
        (11, (2,))
    """
    stored = stored_arrays(name)
    records = _train_records(stored, validation_split, seed, piece_bytes)
    codes = _codes(validation_split, seed)
    found = _scan(stored.x_train, records, codes, where=name, split="train", moments=True)
    return found.count, np.asarray(found.mean, np.float64), found.std


def _codes(validation_split: float, seed: int) -> Any:
    def codes(start: int, stop: int) -> np.ndarray:
        return split_codes(np.arange(start, stop), seed=int(seed), test_split=0.0,
                           validation_split=float(validation_split))

    return codes


def _train_records(stored: StoredArrays, validation_split: float, seed: int,
                   piece_bytes: int) -> list[dict[str, int]]:
    codes = _codes(validation_split, seed)
    records = []
    for start, stop in pieces(len(stored.x_train), stored.x_train.row_bytes, piece_bytes):
        validation = int(codes(start, stop).sum())
        records.append({"start": start, "stop": stop, "train": stop - start - validation,
                        "validation": validation})
    return records


def _scaling(stored: StoredArrays, records: Sequence[Mapping[str, Any]],
             validation_split: float, seed: int, scale: str, piece_bytes: int) -> Scaling:
    """The :class:`Scaling` of a streamed source: its features checked finite and, where
    the scale needs them, its largest value or training moments, in one pass."""
    x, name = stored.x_train, stored.source
    scale = "unit" if scale == "auto" else scale
    needs_pass = np.issubdtype(x.dtype, np.floating) or scale == "standardize" or (
        np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8)
    codes = _codes(validation_split, seed)
    found = _scan(x, records, codes, where=name, split="train",
                  moments=scale == "standardize") if needs_pass else _Scan()
    if np.issubdtype(stored.x_test.dtype, np.floating):
        _scan(stored.x_test, [{"start": a, "stop": b} for a, b in pieces(
            len(stored.x_test), stored.x_test.row_bytes, piece_bytes)], codes, where=name,
            split="test", moments=False)
    if scale == "standardize":
        return Scaling(scale, *standardizing(np.asarray(found.mean, np.float64), found.std,
                                             x.shape[1:]))
    # as pipelines.sources' value_max: the dtype's range, the data's largest value, or 1
    value_max = 255.0 if x.dtype == np.uint8 else max(found.largest, 1.0) if \
        np.issubdtype(x.dtype, np.integer) else 1.0
    return Scaling(scale, np.zeros((), np.float32), np.asarray(1.0 / value_max, np.float32))


def raw_test_and_scaling(name: str, *, validation_split: float = VALIDATION_SPLIT,
                     seed: int = SEED, scale: str = "auto", piece_bytes: int = PIECE_BYTES,
                     **_: Any) -> tuple[RawData, Scaling]:
    """The test arrays of a streamed ``npz:``/``idx:`` source (the images memory-mapped,
    read as they are used; the training arrays left empty) and the :class:`Scaling` its
    streamed load applies: what an export of a streamed run checks its artifact on
    (``_``: load arguments it ignores).

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/m.npz"
        >>> x = np.arange(800, dtype=np.uint8).reshape(200, 2, 2)
        >>> np.savez(path, x_train=x, y_train=np.arange(200) % 2, x_test=x[:10],
        ...          y_test=np.arange(10) % 2)
        >>> raw, scaling = raw_test_and_scaling(f"npz:{path}", scale="standardize", stream=True)
        >>> raw.x_test.shape, raw.x_train.shape, scaling.offset.shape
        ((10, 2, 2), (0, 2, 2), (2, 2))
    """
    check_arguments(None, validation_split, seed, scale)
    stored = stored_arrays(name)
    y_train, y_test, class_names = _checked_labels(stored)
    records = _train_records(stored, validation_split, seed, piece_bytes)
    scaling = _scaling(stored, records, validation_split, seed, scale, piece_bytes)
    raw = RawData(name, stored.x_train.rows(0, 0), y_train[:0], stored.x_test.memmap(),
                  y_test, class_names, 1.0, default_scale="unit")  # x_test: read when used
    return raw, scaling


def _checked_labels(stored: StoredArrays) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The labels (read whole: one integer a row) and class names, checked by the
    in-memory rules (:func:`pipelines.checks.checked`) on the first row of features."""
    where = stored.source
    for split in ("train", "test"):
        x, y = getattr(stored, f"x_{split}"), getattr(stored, f"y_{split}")
        check_counts(split, x, y, where, f"x_{split} and y_{split} need one label per example")
    raw = checked(RawData(where, stored.x_train.rows(0, 1), stored.y_train.rows(0, len(
        stored.y_train)), stored.x_test.rows(0, 1), stored.y_test.rows(0, len(stored.y_test)),
        stored.class_names, 1.0))
    return raw.y_train, raw.y_test, list(raw.class_names or ())


def load_streamed_arrays(
    name: str,
    *,
    batch_size: int | None = BATCH_SIZE,
    validation_split: float = VALIDATION_SPLIT,
    seed: int = SEED,
    scale: str = "auto",
    flatten: bool = True,
    repeat: bool = False,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    shard: Shard | None = None,
    piece_bytes: int = PIECE_BYTES,
) -> Splits:
    """:func:`pipelines.builder.load` of an ``npz:PATH`` or ``idx:DIR`` source read piece by
    piece, never whole (the module's docstring says how): the same :class:`Splits` and
    ``info`` fields, train an :class:`EpochStream` with ``repeat`` (with ``shard``, this
    process's pieces).

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/m.npz"
        >>> x = np.arange(800, dtype=np.uint8).reshape(200, 2, 2)
        >>> np.savez(path, x_train=x, y_train=np.arange(200) % 2, x_test=x[:10],
        ...          y_test=np.arange(10) % 2)
        >>> train, validation, test, info = load_streamed_arrays(f"npz:{path}", batch_size=50)
        >>> sum(len(y) for _, y in train) == info.num_examples["train"], info.class_names
        (True, ['0', '1'])
    """
    check_arguments(batch_size, validation_split, seed, scale)
    check_shuffle_buffer(shuffle_buffer)
    shard = shard or Shard()
    if repeat and batch_size is None:
        raise InvalidArgumentError("repeat=True needs a batch_size: an endless stream is "
                                   "made of batches")
    if shard.count > 1 and not flatten:
        raise InvalidArgumentError("a multi-process stream takes flattened examples; leave "
                                   "flatten=True")
    stored = stored_arrays(name)
    y_train, y_test, class_names = _checked_labels(stored)
    records = _train_records(stored, validation_split, seed, piece_bytes)
    counts = {split: sum(r[split] for r in records) for split in ("train", "validation")}
    counts["test"] = len(y_test)
    for split in ("train", "validation"):
        if not counts[split]:
            raise InvalidDataError(
                f"{name}: cannot split {len(y_train)} examples into a non-empty validation part "
                f"(fraction {validation_split}) and a non-empty rest: an empty split; use more "
                "data or another fraction")
    scaling = _scaling(stored, records, validation_split, seed, scale, piece_bytes)
    offset, multiplier = scaling.offset, scaling.multiplier
    x = stored.x_train
    rows = _Rows(stored, {"train": y_train, "test": y_test},
                 {"seed": seed, "validation_split": validation_split}, offset, multiplier,
                 flatten)
    test_records = [{"start": a, "stop": b} for a, b in pieces(
        len(stored.x_test), stored.x_test.row_bytes, piece_bytes)]
    made = {split: batched(rows.dataset(lambda split=split, chosen=chosen: read_ahead(
        rows.scaled(rows.chunks(split, chosen)))), batch_size, counts[split])
        for split, chosen in (("validation", records), ("test", test_records))}
    stream = None
    buffer = int(shuffle_buffer)
    if repeat:
        stream = _training_stream(rows, records, batch_size=int(batch_size or 1),
                                  seed=int(seed), buffer=buffer, shard=shard)
        made["train"] = stream.dataset
    else:
        made["train"] = batched(pass_seeds(int(seed)).flat_map(lambda pass_seed: rows.dataset(
            lambda p: read_ahead(rows.shuffled(records, (int(seed), int(p)), buffer)),
            (pass_seed[1],))), batch_size, counts["train"])
    shape = x.shape[1:]
    info = DatasetInfo(name=name, source=name,
                       input_shape=(math.prod(shape),) if flatten else tuple(shape),
                       num_classes=len(class_names), class_names=class_names,
                       num_examples=counts, scale=scaling.scale)
    return Splits(made["train"], made["validation"], made["test"], info, stream)


def _training_stream(rows: _Rows, records: Sequence[Mapping[str, Any]], *, batch_size: int,
                     seed: int, buffer: int, shard: Shard) -> EpochStream:
    from pipelines.tf_setup import tf

    @tf.autograph.experimental.do_not_convert  # builds a generator's dataset: no graph
    def epoch_rows(own: Sequence[Mapping[str, Any]], index: int, epoch: Any) -> Any:
        def generate(epoch: np.int64) -> Iterator[Any]:
            yield from read_ahead(rows.shuffled(own, (seed, int(epoch), index), buffer))

        return rows.dataset(generate, (epoch,))

    return training_stream(records, epoch_rows, batch_size=batch_size, shard=shard,
                           where=rows.stored.source,
                           too_few="give more training rows or use fewer processes")
