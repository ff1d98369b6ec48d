"""A table larger than memory: ``pipelines.load("csv:big.csv", target="y", stream=True)``
reads it piece by piece (:mod:`pipelines.tables.pieces`), never whole, through the
plan of one pass (:mod:`pipelines.tables.plan`).

* **One pass to fit.**  The column types come from the first rows
  (:data:`~pipelines.tables.pieces.HEAD_ROWS`; ``--features`` overrides them);
  then one streaming pass over every piece counts the rows of each split, the
  classes and the missing values, and fits the preprocessing on the training
  rows (:class:`~pipelines.tables.running.RunningStats`: exact counts and
  vocabularies, means and variances to float rounding, medians exact up to
  100,000 values and sampled beyond).  The result, with the piece plan, is the
  run's ``preprocessing.json``: resume, evaluate and export reuse it, never refit.
* **Splits by hash.**  A row's split is decided by a hash of its row number (its
  place in the table, files in name order) and the seed alone
  (:func:`split_codes`): ``test_split`` of the rows are test, ``validation_split``
  of the rest validation.  So the splits never overlap, whichever process reads
  a row and in whichever epoch; unlike the in-memory split they are not
  stratified (the proportions hold in expectation).
* **Bounded shuffle.**  Each epoch reads the pieces in an order shuffled by
  ``(seed, epoch)`` and permutes every window of about ``shuffle_buffer`` rows
  (seeded by ``(seed, epoch, window)``): a row moves within its window only, so
  this is not a full permutation of the table (that needs all of it at once).
  Epoch ``e``'s order depends on the seed and ``e`` alone: a resumed run starts
  at its epoch exactly, as the in-memory stream does.
* **Per-process pieces.**  With ``shard=Shard(index, count, replicas)`` (a
  multi-process run) each process reads only its own pieces, dealt out once so
  that the processes' training rows are as even as the pieces allow.  Each step
  every process takes ``batch_size // count`` rows (the first ``batch_size %
  count`` processes one more): the global batch is ``batch_size`` rows, as on one
  process.  When the shares are uneven, a process that has read all its rows
  goes on with empty batches until the largest share is done (steps per epoch:
  the largest share's); every batch is padded to the same rows per process and
  weighted so that the loss is the mean over the step's real rows
  (``sample_weight``, 0 for padding), as the in-memory data-parallel path does.

Example:
    >>> import tempfile, numpy as np, pandas as pd
    >>> path = tempfile.mkdtemp() + "/t.csv"
    >>> rng = np.random.default_rng(0)
    >>> pd.DataFrame({"x": rng.normal(size=200), "y": rng.choice(["a", "b"], 200)}
    ...              ).to_csv(path, index=False)
    >>> splits = load_streamed(f"csv:{path}", target="y", batch_size=32)
    >>> splits.info.num_examples
    {'train': 146, 'validation': 14, 'test': 40}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pipelines.constants import SHUFFLE_BUFFER
from pipelines.errors import InvalidArgumentError
from pipelines.info import DatasetInfo, Splits
from pipelines.piece_stream import (
    Shard,
    batched,
    in_caller,
    shuffled_pieces,
    training_stream,
)
from pipelines.read_ahead import read_ahead
from pipelines.stream import EpochStream, pass_seeds
from pipelines.tables.encode import Preprocessor
from pipelines.tables.pieces import Piece, read_piece
from pipelines.tables.plan import SPLITS, class_indices, fit_streamed, label_text, split_codes
from pipelines.tables.schema import Column

__all__ = ["Shard", "fit_streamed", "load_streamed", "raw_split", "split_codes"]

@dataclasses.dataclass(frozen=True)
class _Reader:
    """Reads the rows of one split from the planned pieces of a fitted ``state``."""

    state: Mapping[str, Any]
    where: str

    @property
    def kinds(self) -> dict[str, str]:
        return {c["name"]: c["kind"] for c in self.state["columns"]}

    def records(self, split: str) -> list[dict[str, Any]]:
        plan = self.state["stream"]
        if split == "test" and plan["test_pieces"]:
            return list(plan["test_pieces"])
        return [record for record in plan["pieces"] if record[split]]

    def chunks(self, split: str, records: Sequence[Mapping[str, Any]]
               ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """``(columns, class indices)`` of the labelled rows of ``split``, piece by piece."""
        plan, target = self.state["stream"], self.state["target"]
        code = SPLITS.index(split)
        read_kinds = {**self.kinds, target: "text"}
        hashed = not (split == "test" and plan["test_pieces"])  # else a test table's own
        for record in records:
            piece = Piece(record["format"], record["path"], record["start"], record["stop"],
                          record["row_group"], tuple(record["columns"]))
            first_row = record["first_row"]
            for chunk in read_piece(piece, read_kinds):
                text = label_text(chunk.pop(target), plan["numeric_target"])
                rows = np.arange(first_row, first_row + len(text))
                first_row += len(text)
                keep = text != ""
                if hashed:
                    keep &= split_codes(rows, seed=plan["seed"], test_split=plan["test_split"],
                                        validation_split=plan["validation_split"]) == code
                if keep.any():
                    yield ({name: values[keep].astype(np.float32) if
                            self.kinds[name] == "numeric" else values[keep]
                            for name, values in chunk.items()},
                           class_indices(text[keep], self.state["class_names"], self.where))

    def shuffled(self, records: Sequence[Mapping[str, Any]], seed: Sequence[int],
                 buffer: int) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """The training rows of ``records`` in an order shuffled by ``seed``: pieces in
        a permuted order, rows permuted within windows of at least ``buffer`` rows."""
        return shuffled_pieces(records, lambda pieces: self.chunks("train", pieces), seed,
                               buffer)


def raw_split(state: Mapping[str, Any], split: str, rows: np.ndarray | None = None
              ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The raw kept columns and the class indices of one split of a streamed table,
    read through its fitted ``state`` (as :func:`pipelines.tables.encode.raw_columns`
    gives them): what an export checks its artifact on.  ``rows``: only the rows at
    these places in the split (increasing; a report's sample), held alone.

    Example:
        >>> import tempfile, pandas as pd
        >>> path = tempfile.mkdtemp() + "/t.csv"
        >>> pd.DataFrame({"x": np.arange(40) % 7 + 0.5, "y": ["a", "b"] * 20}).to_csv(
        ...     path, index=False)
        >>> columns, labels = raw_split(fit_streamed(f"csv:{path}", target="y"), "test")
        >>> columns["x"].dtype.name, len(labels) == len(columns["x"])
        ('float32', True)
    """
    reader = _Reader(state, "the table")
    chunks = list(reader.chunks(split, reader.records(split)) if rows is None
                  else _rows_at(reader.chunks(split, reader.records(split)), rows))
    if not chunks:
        return ({name: np.zeros(0, np.float32 if kind == "numeric" else object)
                 for name, kind in reader.kinds.items()}, np.zeros(0, np.int32))
    return ({name: np.concatenate([columns[name] for columns, _ in chunks])
             for name in reader.kinds}, np.concatenate([labels for _, labels in chunks]))

def _rows_at(chunks: Iterator[tuple[dict[str, np.ndarray], np.ndarray]], rows: np.ndarray
             ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """The rows at the increasing places ``rows`` of the split that ``chunks`` read."""
    rows = np.asarray(rows, np.int64)
    start = 0
    for columns, labels in chunks:
        stop = start + len(labels)
        wanted = rows[np.searchsorted(rows, start):np.searchsorted(rows, stop)] - start
        start = stop
        if len(wanted):
            yield {name: values[wanted] for name, values in columns.items()}, labels[wanted]


def _dataset(reader: _Reader, generate: Callable[..., Iterator[Any]],
             args: tuple[Any, ...] = ()) -> Any:
    """The generated ``(columns, labels)`` chunks, encoded by the state's
    :class:`~pipelines.tables.encode.Preprocessor` in ``tf.data``: ``(x, y)`` chunks."""
    from pipelines.tf_setup import tf

    signature = ({name: tf.TensorSpec([None], tf.float32 if kind == "numeric" else tf.string)
                  for name, kind in reader.kinds.items()}, tf.TensorSpec([None], tf.int32))
    preprocess = Preprocessor(reader.state)
    chunks = tf.data.Dataset.from_generator(generate, args=args or None,
                                            output_signature=signature)
    return in_caller(chunks.map(lambda columns, labels: (preprocess(columns), labels)))


def _training_stream(reader: _Reader, *, batch_size: int, seed: int, buffer: int,
                     shard: Shard) -> EpochStream:
    """The endless training stream; with several processes, this process's share."""
    from pipelines.tf_setup import tf

    @tf.autograph.experimental.do_not_convert  # builds a generator's dataset: no graph
    def epoch_rows(records: Sequence[Mapping[str, Any]], index: int, epoch: Any) -> Any:
        def generate(epoch: np.int64) -> Iterator[Any]:
            yield from read_ahead(reader.shuffled(records, (seed, int(epoch), index), buffer))

        return _dataset(reader, generate, (epoch,))

    return training_stream(reader.records("train"), epoch_rows, batch_size=batch_size,
                           shard=shard, where=reader.where,
                           too_few="split it into more files (a folder or glob of CSV or "
                           "Parquet shards) or write Parquet with smaller row groups")


def load_streamed(
    source: str,
    *,
    target: str | None = None,
    drop: Sequence[str] = (),
    features: Mapping[str, str] | None = None,
    test_split: float = 0.2,
    batch_size: int | None = 100,
    validation_split: float = 0.1,
    seed: int = 1337,
    repeat: bool = False,
    preprocessing: Mapping[str, Any] | None = None,
    test_data: str | None = None,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    shard: Shard | None = None,
) -> Splits:
    """:func:`pipelines.tables.load.load_table` of a ``csv:`` or ``parquet:`` table that is
    read piece by piece, never whole (the module's docstring says how); the
    :class:`Splits` of every other source, ``info.table`` the fitted preprocessing
    and piece plan (``preprocessing``: a run's own, reused without a pass).

    Example:
        >>> import tempfile, pandas as pd
        >>> path = tempfile.mkdtemp() + "/t.parquet"
        >>> pd.DataFrame({"x": np.arange(90) % 7 + 0.5, "y": [0, 1, 2] * 30}).to_parquet(path)
        >>> splits = load_streamed(f"parquet:{path}", target="y", repeat=True)
        >>> splits.info.input_shape, splits.stream.batches_per_epoch
        ((1,), 1)
    """
    where = str(source)
    if preprocessing is not None and "stream" not in preprocessing:
        raise InvalidArgumentError("the run was trained on the table in memory; leave out "
                                   "--stream (stream=False) to use it")
    if preprocessing is not None and preprocessing.get("target") != target:
        raise InvalidArgumentError(f"the run was trained with --target "
                                   f"{preprocessing.get('target')!r}, not {target!r}; give the "
                                   "run's own target")
    state = dict(preprocessing) if preprocessing is not None else fit_streamed(
        source, target=target, drop=drop, features=features, test_split=test_split,
        validation_split=validation_split, seed=seed, test_data=test_data)
    reader = _Reader(state, where)
    counts = {split: sum(r[split] for r in reader.records(split)) for split in SPLITS}
    made: dict[str, Any] = {}
    for split in ("validation", "test"):
        records = reader.records(split)
        made[split] = batched(_dataset(reader, lambda records=records, split=split:
                                        read_ahead(reader.chunks(split, records))),
                               batch_size, counts[split])
    stream = None
    if repeat:
        if batch_size is None:
            raise InvalidArgumentError("repeat=True needs a batch_size: an endless stream is "
                                       "made of batches")
        stream = _training_stream(reader, batch_size=batch_size, seed=int(seed),
                                  buffer=int(shuffle_buffer), shard=shard or Shard())
        made["train"] = stream.dataset
    else:
        records = reader.records("train")
        made["train"] = batched(pass_seeds(int(seed)).flat_map(lambda pass_seed: _dataset(
            reader, lambda p: read_ahead(reader.shuffled(records, (int(seed), int(p)),
                                                         shuffle_buffer)),
            (pass_seed[1],))), batch_size, counts["train"])
    schema = [Column(**column) for column in state["schema"]]
    dropped = [f"{c.name} ({c.detail})" for c in schema
               if c.kind == "drop" and c.detail not in ("--drop", "--features")]
    info = DatasetInfo(
        name=where, source=where, input_shape=(int(state["width"]),),
        num_classes=len(state["class_names"]), class_names=list(state["class_names"]),
        num_examples=counts,
        note=(f"left out column(s) {', '.join(dropped)}: keep one with --features"
              if dropped else None),
        scale="standardize", table=state)
    return Splits(made["train"], made["validation"], made["test"], info, stream)
