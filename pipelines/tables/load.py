"""``pipelines.load`` of a table: rows → labels and class names → a seeded, stratified
train / validation / test split → preprocessing fitted on the training rows (or
the run's own, reused) → the same ``tf.data`` streams as every other source.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["u", "v"], 60),
    ...                       "y": rng.choice(["cat", "dog"], 60)})
    >>> splits = load_table(frame, target="y", batch_size=16)
    >>> splits.info.class_names, splits.info.num_examples
    (['cat', 'dog'], {'train': 43, 'validation': 5, 'test': 12})
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.checks import check_arguments, check_shuffle_buffer
from pipelines.constants import SHUFFLE_BUFFER, VALIDATION_SPLIT
from pipelines.errors import InvalidArgumentError, InvalidDataError
from pipelines.info import DatasetInfo, Splits
from pipelines.splitting import split_indices
from pipelines.tables.encode import encode, fit_preprocessing
from pipelines.tables.read import is_table, read_table
from pipelines.tables.schema import Column, as_text, check_target, infer_schema
from pipelines.tables.streaming import Shard, load_streamed

__all__ = ["TEST_SPLIT", "TableSplits", "load", "load_table", "split_table"]

TEST_SPLIT = 0.2


@dataclasses.dataclass(frozen=True)
class TableSplits:
    """A table split and its fitted preprocessing, before encoding: what
    :func:`load_table` streams and what an export checks its raw rows on.

    ``frames`` and ``labels`` have keys ``train``, ``validation``, ``test``;
    ``state`` is the JSON-able preprocessing (with ``target``, ``class_names``,
    ``schema``); ``note`` one line for the user, or None.
    """

    frames: dict[str, pd.DataFrame]
    labels: dict[str, np.ndarray]
    state: dict[str, Any]
    note: str | None
    where: str


def _describe(source: Any) -> str:
    return "the DataFrame" if isinstance(source, pd.DataFrame) else str(source)


def _class_names(values: pd.Series, target: str, where: str) -> list[str]:
    """The classes of the labelled rows, sorted (numerically for integer labels)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        if not np.all(numbers == np.round(numbers)):
            example = numbers[numbers != np.round(numbers)][0]
            raise InvalidDataError(
                f"{where}: target {target!r} holds non-integer numbers (e.g. {example:g}), "
                "which look like a regression target; kerasdnn classifies: give class "
                "labels (text or integers)")
        return [str(int(v)) for v in np.unique(numbers)]
    return sorted(set(as_text(values)))


def _labels(frame: pd.DataFrame, target: str, where: str,
            class_names: Sequence[str] | None) -> tuple[pd.DataFrame, np.ndarray, list[str], int]:
    """``(labelled rows, class indices, class names, rows left out for a missing label)``."""
    labelled = frame[frame[target].notna()].reset_index(drop=True)
    dropped = len(frame) - len(labelled)
    if labelled.empty:
        raise InvalidDataError(f"{where}: target {target!r} has no values; name the label "
                               "column with --target")
    names = list(class_names) if class_names is not None else _class_names(
        labelled[target], target, where)
    text = as_text(labelled[target])
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise InvalidDataError(
            f"{where}: target {target!r} holds label(s) {', '.join(map(repr, unknown[:5]))} "
            f"that are not among the classes of the training rows ({', '.join(names)}); "
            "add training rows of them or leave those rows out")
    if len(names) < 2:
        raise InvalidDataError(
            f"{where}: target {target!r} has only one class ({names[0]!r}); a classifier "
            "needs rows of at least two classes")
    return labelled, np.array([index[value] for value in text], np.int64), names, dropped


def _check_every_class(parts: Mapping[str, np.ndarray], names: Sequence[str],
                       y: np.ndarray, where: str) -> None:
    counts = np.bincount(y, minlength=len(names))
    for split, indices in parts.items():
        absent = np.setdiff1d(np.arange(len(names)), np.unique(y[indices]))
        if absent.size:
            rare = int(absent[np.argmin(counts[absent])])
            raise InvalidDataError(
                f"{where}: class {names[rare]!r} has {counts[rare]} row(s), too few to "
                f"appear in the {split} split (the stratified train, validation and test "
                "splits each need one); add rows of that class or leave its rows out")


def _read_state(preprocessing: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(preprocessing, Mapping):
        return dict(preprocessing)
    path = Path(preprocessing)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidDataError(f"cannot read the run's preprocessing {path} ({error}); "
                               "train the run again") from None


def _check_test_split(test_split: Any) -> None:
    if not isinstance(test_split, (int, float)) or isinstance(test_split, bool) or not (
            0.0 < test_split < 1.0):
        raise InvalidArgumentError("test_split (--test-split) must be a fraction strictly "
                                   f"between 0 and 1, got {test_split!r}")


def split_table(
    source: Any,
    *,
    target: str | None,
    drop: Sequence[str] = (),
    features: Mapping[str, str] | None = None,
    test_split: float = TEST_SPLIT,
    validation_split: float = VALIDATION_SPLIT,
    seed: int = 1337,
    preprocessing: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    test_data: Any = None,
) -> TableSplits:
    """Read and split a table, and fit its preprocessing on the training rows (or
    take ``preprocessing``, a run's saved state, as it is).  ``test_data`` (a table
    of the same columns) is the test split instead of ``test_split`` of the rows.

    Example:
        >>> frame = pd.DataFrame({"x": np.arange(30) % 7 + 0.5, "y": ["a", "b", "c"] * 10})
        >>> parts = split_table(frame, target="y", test_split=0.2, validation_split=0.2)
        >>> {k: len(v) for k, v in parts.frames.items()}
        {'train': 19, 'validation': 5, 'test': 6}
    """
    where = _describe(source)
    _check_test_split(test_split)
    frame = read_table(source)
    check_target(list(frame.columns), target, where)
    saved = _read_state(preprocessing) if preprocessing is not None else None
    if saved is not None and saved.get("target") != target:
        raise InvalidArgumentError(f"the run was trained with --target {saved.get('target')!r},"
                                   f" not {target!r}; give the run's own target")
    if saved is None:
        schema = infer_schema(frame, target, drop=drop, features=features)
    else:
        schema = [Column(**column) for column in saved["schema"]]
    labelled, y, names, unlabelled = _labels(
        frame, target, where, saved["class_names"] if saved else None)
    if test_data is None:
        rest, test = split_indices(y, float(test_split), seed=int(seed), what="test")
    else:
        rest, test = np.arange(len(y)), np.arange(0)
    keep, held_out = split_indices(y[rest], float(validation_split), seed=int(seed),
                                   what="validation")
    parts = {"train": rest[keep], "validation": rest[held_out], "test": test}
    if test_data is not None:
        del parts["test"]
    _check_every_class(parts, names, y, where)
    frames = {split: labelled.iloc[rows].reset_index(drop=True) for split, rows in parts.items()}
    labels = {split: y[rows] for split, rows in parts.items()}
    if test_data is not None:  # a table of its own: its labelled rows, the same classes
        test_frame = read_table(test_data)
        if target not in test_frame.columns:
            raise InvalidArgumentError(f"the test table {_describe(test_data)} lacks the target "
                                       f"column {target!r}; its columns: "
                                       f"{', '.join(test_frame.columns)}")
        frames["test"], labels["test"], _, _ = _labels(test_frame, target,
                                                       _describe(test_data), names)
    if saved is None:
        state = {"target": target, "class_names": names,
                 "schema": [column.to_dict() for column in schema],
                 **fit_preprocessing(frames["train"], schema)}
    else:
        state = saved
    notes = [f"{column.name} ({column.detail})" for column in schema
             if column.kind == "drop" and column.detail not in ("--drop", "--features")]
    note = "; ".join(
        ([f"left out column(s) {', '.join(notes)}: keep one with --features"] if notes else [])
        + ([f"left out {unlabelled} row(s) without a {target!r} label"] if unlabelled else []))
    return TableSplits(frames, labels, state, note or None, where)


def load_table(
    source: Any,
    *,
    target: str | None = None,
    drop: Sequence[str] = (),
    features: Mapping[str, str] | None = None,
    test_split: float = TEST_SPLIT,
    batch_size: int | None = 100,
    validation_split: float = VALIDATION_SPLIT,
    seed: int = 1337,
    cache: bool = True,
    repeat: bool = False,
    preprocessing: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    name: str | None = None,
    test_data: Any = None,
    stream: bool = False,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    shard: Shard | None = None,
) -> Splits:
    """A table (a DataFrame, ``csv:PATH`` or ``parquet:PATH``) as the :class:`Splits` of
    :func:`pipelines.load`: each example the encoded float32 row, ``info.table`` the
    fitted preprocessing (write it beside the model; pass it back as
    ``preprocessing`` to see the same rows the same way).

    ``stream=True`` reads a ``csv:`` or ``parquet:`` table piece by piece instead of
    whole (:mod:`pipelines.tables.streaming`: splits by a hash of the row number,
    shuffled within windows of ``shuffle_buffer`` rows; ``shard``: this process's
    pieces in a multi-process run).

    Example:
        >>> frame = pd.DataFrame({"x": np.arange(40) / 3, "y": [0, 1] * 20})
        >>> load_table(frame, target="y").info.input_shape
        (1,)
    """
    from pipelines.builder import make_dataset, make_stream

    check_arguments(batch_size, validation_split, seed, "standardize")
    if repeat and batch_size is None:
        raise InvalidArgumentError("repeat=True needs a batch_size: an endless stream is "
                                   "made of batches")
    if stream:
        if isinstance(source, pd.DataFrame):
            raise InvalidArgumentError("stream (--stream) reads a csv: or parquet: file piece "
                                       "by piece; a DataFrame is in memory already: leave "
                                       "it out")
        if isinstance(test_data, pd.DataFrame):
            raise InvalidArgumentError("with stream (--stream), give test_data as csv:PATH or "
                                       "parquet:PATH, not a DataFrame")
        _check_test_split(test_split)
        check_shuffle_buffer(shuffle_buffer)
        return load_streamed(
            str(source), target=target, drop=drop, features=features, test_split=test_split,
            batch_size=batch_size, validation_split=validation_split, seed=seed, repeat=repeat,
            preprocessing=None if preprocessing is None else _read_state(preprocessing),
            test_data=test_data, shuffle_buffer=shuffle_buffer, shard=shard or Shard())
    saved = None if preprocessing is None else _read_state(preprocessing)  # read once
    if saved is not None and "stream" in saved:
        raise InvalidArgumentError("the run was trained on a streamed table; give --stream "
                                   "(stream=True) to read it the same way")
    parts = split_table(source, target=target, drop=drop, features=features,
                        test_split=test_split, validation_split=validation_split, seed=seed,
                        preprocessing=saved, test_data=test_data)
    made = {}
    for split, frame in parts.frames.items():
        x = encode(frame, parts.state)
        arguments = dict(offset=np.zeros((), np.float32), multiplier=np.ones((), np.float32),
                         flatten=True, batch_size=batch_size, cache=cache)
        if split == "train" and repeat:
            made[split] = make_stream(x, parts.labels[split].astype(np.int32),
                                      shuffle_seed=int(seed), **arguments)
        else:
            made[split] = make_dataset(x, parts.labels[split].astype(np.int32),
                                       shuffle_seed=int(seed) if split == "train" else None,
                                       **arguments)
    source_name = name or ("dataframe" if isinstance(source, pd.DataFrame) else str(source))
    info = DatasetInfo(
        name=source_name,
        source=source_name,
        input_shape=(int(parts.state["width"]),),
        num_classes=len(parts.state["class_names"]),
        class_names=list(parts.state["class_names"]),
        num_examples={split: len(y) for split, y in parts.labels.items()},
        note=parts.note,
        scale="standardize",
        table=parts.state,
    )
    stream = made["train"] if repeat else None
    train = stream.dataset if stream is not None else made["train"]
    return Splits(train, made["validation"], made["test"], info, stream)



def load(
    name: Any = "auto",
    *,
    target: str | None = None,
    drop: Sequence[str] = (),
    features: Mapping[str, str] | None = None,
    test_split: float = TEST_SPLIT,
    preprocessing: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    test_data: Any = None,
    **arguments: Any,
) -> Splits:
    """:func:`pipelines.load`: a table (a DataFrame, ``csv:PATH``, ``parquet:PATH``)
    through :func:`load_table`, any other source through
    :func:`pipelines.builder.load` (``arguments``: its keyword arguments).

    Example:
        >>> load("digits", target="label")
        Traceback (most recent call last):
        pipelines.errors.InvalidArgumentError: target (--target) is for a table \
(csv:PATH, parquet:PATH or a DataFrame), not 'digits'; leave it out
    """
    if isinstance(name, str) and name == "dataframe":  # what a DataFrame run records
        raise InvalidArgumentError(
            "the run was trained on a DataFrame from Python, which it cannot read again; "
            "save the DataFrame (frame.to_parquet('t.parquet')) and train on "
            "--dataset parquet:t.parquet to evaluate, resume or export from the command line")
    if not is_table(name):
        given = [key for key, value in (("target", target), ("drop", drop),
                                        ("features", features), ("preprocessing", preprocessing),
                                        ("test_data", test_data)) if value]
        if given:
            raise InvalidArgumentError(
                f"{given[0]} (--{given[0].replace('_', '-')}) is for a table (csv:PATH, "
                f"parquet:PATH or a DataFrame), not {name!r}; leave it out")
        if arguments.pop("stream", False):  # npz:PATH or idx:DIR, piece by piece
            from pipelines.array_stream import load_streamed_arrays

            for ignored in ("cache", "data_dir", "manual_dir"):
                arguments.pop(ignored, None)  # nothing cached, no TFDS
            return load_streamed_arrays(name, **arguments)
        from pipelines.builder import load as load_source

        for ignored in ("shuffle_buffer", "shard"):
            arguments.pop(ignored, None)  # the stream's own: nothing to stream here
        return load_source(name, **arguments)
    for ignored in ("scale", "flatten", "data_dir", "manual_dir"):
        arguments.pop(ignored, None)  # a table's rows are standardized vectors, read locally
    return load_table(name, target=target, drop=drop, features=features,
                      test_split=test_split, preprocessing=preprocessing, test_data=test_data,
                      **arguments)
