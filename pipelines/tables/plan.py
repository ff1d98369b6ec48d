"""The plan of a streamed table (:mod:`pipelines.tables.streaming`): its pieces, the
split of every row, the classes and the fitted preprocessing, from one pass.

A row's split is a hash of its row number (its place in the table, files in name
order) and the seed alone (:func:`split_codes`), so it is the same whichever
process reads the row and in whichever epoch.  The pass
(:func:`fit_streamed`) reads every piece once: each piece's row count and
labelled rows per split, the classes (of every labelled row, as in memory), the
missing values of every column, and the preprocessing statistics of the training
rows (:class:`~pipelines.tables.running.RunningStats`).

Example:
    >>> codes = split_codes(np.arange(10_000), seed=1, test_split=0.2, validation_split=0.1)
    >>> np.bincount(codes).tolist()  # train, validation, test
    [7120, 787, 2093]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import InvalidDataError
from pipelines.tables.encode import preprocessing_state
from pipelines.tables.pieces import Piece, head, plan_pieces, read_piece
from pipelines.tables.running import RunningStats, row_hash
from pipelines.tables.schema import check_target, infer_schema

__all__ = ["SPLITS", "class_indices", "fit_streamed", "label_text", "split_codes"]

SPLITS = ("train", "validation", "test")  # split codes 0, 1, 2
_SPLIT_SALT = 0x5EED_5B17  # keeps the split hash apart from the sample's


def split_codes(rows: np.ndarray, *, seed: int, test_split: float,
                validation_split: float) -> np.ndarray:
    """The split of each row number: 0 train, 1 validation, 2 test, from a hash of
    the row number and ``seed`` alone.

    Example:
        >>> codes = split_codes(np.arange(100_000), seed=1, test_split=0.2,
        ...                     validation_split=0.1)
        >>> np.round(np.bincount(codes) / 100_000, 2).tolist()
        [0.72, 0.08, 0.2]
    """
    uniform = (row_hash(rows, seed ^ _SPLIT_SALT) >> np.uint64(11)).astype(np.float64) / 2**53
    codes = np.zeros(len(rows), np.int8)
    codes[uniform < test_split + (1.0 - test_split) * validation_split] = 1
    codes[uniform < test_split] = 2
    return codes


def _class_names(labels: set[str], numeric: bool, target: str, where: str) -> list[str]:
    if numeric:
        numbers = pd.to_numeric(pd.Series(sorted(labels)), errors="coerce").to_numpy()
        if np.isnan(numbers).any() or not np.all(numbers == np.round(numbers)):
            raise InvalidDataError(
                f"{where}: target {target!r} holds values that are not integer class labels "
                "(text or non-integer numbers after the first rows); give class labels")
        return [str(int(value)) for value in np.unique(numbers)]
    return sorted(labels)


def label_text(text: np.ndarray, numeric: bool) -> np.ndarray:
    """Labels spelled as the class names are (integral numbers without ``.0``).

    Example:
        >>> label_text(np.array(["1", "2.0", ""], object), numeric=True).tolist()
        ['1', '2', '']
    """
    if not numeric:
        return text
    numbers = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(dtype=np.float64)
    missing = np.isnan(numbers)
    spelled = np.where(missing, 0, numbers).astype(np.int64).astype(str).astype(object)
    spelled[missing] = ""
    return spelled


def class_indices(text: np.ndarray, names: Sequence[str], where: str) -> np.ndarray:
    """The index of each label in ``names`` (int32); a label not among them is an error
    naming ``where``.

    Example:
        >>> class_indices(np.array(["b", "a"], object), ["a", "b"], "t.csv").tolist()
        [1, 0]
    """
    indices = pd.Categorical(text, categories=list(names)).codes.astype(np.int32)
    if (indices < 0).any():
        raise InvalidDataError(
            f"{where}: label {text[indices < 0][0]!r} is not among the classes of the "
            f"table's rows ({', '.join(names)}); add rows of it or leave those rows out")
    return indices


def _pass(pieces: Sequence[Piece], kinds: Mapping[str, str], target: str,
          codes: Callable[[np.ndarray], np.ndarray], stats: RunningStats | None,
          missing: dict[str, int]) -> tuple[list[dict[str, Any]], set[str]]:
    """One pass over ``pieces``: each piece's record (first row number, rows, labelled
    rows per split), the label texts seen; training rows go to ``stats``."""
    records, labels, first_row = [], set(), 0
    read_kinds = {**kinds, target: "text"}
    for piece in pieces:
        rows_read, counts = 0, np.zeros(3, np.int64)
        for chunk in read_piece(piece, read_kinds):
            text = chunk.pop(target)
            rows = np.arange(first_row + rows_read, first_row + rows_read + len(text))
            rows_read += len(text)
            labelled = text != ""
            split = codes(rows)
            counts += np.bincount(split[labelled], minlength=3)
            labels.update(np.unique(text[labelled].astype(str)).tolist())
            for name, values in chunk.items():
                missing[name] += int((np.isnan(values) if kinds[name] == "numeric"
                                      else values == "").sum())
            if stats is not None:
                train = labelled & (split == 0)
                stats.update({name: values[train] for name, values in chunk.items()},
                             rows[train])
        records.append({**piece.to_dict(), "first_row": first_row, "rows": rows_read,
                        **dict(zip(SPLITS, counts.tolist(), strict=True))})
        first_row += rows_read
    return records, labels


def fit_streamed(source: str, *, target: str | None, drop: Sequence[str] = (),
                 features: Mapping[str, str] | None = None, test_split: float = 0.2,
                 validation_split: float = 0.1, seed: int = 1337,
                 test_data: str | None = None) -> dict[str, Any]:
    """The fitted preprocessing of a streamed table and its piece plan: one pass.

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/t.csv"
        >>> pd.DataFrame({"x": [1.0, 2.0, 4.0] * 20, "y": ["a", "b"] * 30}).to_csv(
        ...     path, index=False)
        >>> state = fit_streamed(f"csv:{path}", target="y")
        >>> state["class_names"], [p["rows"] for p in state["stream"]["pieces"]]
        (['a', 'b'], [60])
    """
    pieces = plan_pieces(source)
    first = head(pieces)
    where = str(source)
    check_target(list(first.columns), target, where)
    schema = infer_schema(first, target, drop=drop, features=features)
    kinds = {c.name: c.kind for c in schema if c.kind != "drop"}
    numeric = bool(pd.api.types.is_numeric_dtype(first[target])
                   and not pd.api.types.is_bool_dtype(first[target]))
    split = {"seed": int(seed), "test_split": 0.0 if test_data else float(test_split),
             "validation_split": float(validation_split)}
    stats, missing = RunningStats(kinds), dict.fromkeys(kinds, 0)
    records, labels = _pass(pieces, kinds, target, lambda rows: split_codes(rows, **split),
                            stats, missing)
    names = _class_names(labels, numeric, target, where)
    test_records: list[dict[str, Any]] = []
    if test_data:
        test_records, test_labels = _pass(plan_pieces(test_data), kinds, target,
                                          lambda rows: np.full(len(rows), 2, np.int8), None,
                                          dict.fromkeys(kinds, 0))
        class_indices(label_text(np.array(sorted(test_labels), object), numeric), names,
                       str(test_data))
    if len(names) < 2:
        raise InvalidDataError(f"{where}: target {target!r} has only "
                               f"{'one class' if names else 'no values'}; a classifier needs "
                               "rows of at least two classes")
    if not sum(record["train"] for record in records):
        raise InvalidDataError(f"{where}: no labelled training rows; give a larger table")
    schema = [dataclasses.replace(c, missing=missing[c.name]) if c.name in missing else c
              for c in schema]
    return {"target": target, "class_names": names,
            "schema": [column.to_dict() for column in schema],
            **preprocessing_state(stats.columns()),
            "stream": {**split, "numeric_target": numeric, "pieces": records,
                       "test_pieces": test_records}}
