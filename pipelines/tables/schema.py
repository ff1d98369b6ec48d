"""Column types of a table: inferred from its values, overridable per column.

Each column is ``numeric`` (standardized), ``categorical`` (one-hot, from text,
a few integer values or booleans) or ``drop`` (left out, with the reason).  A
column that looks like an id (every value different) or a date is dropped with a
note rather than one-hot encoded; ``--features`` (a ``{column: kind}`` mapping)
overrides any of it.  Types are read from the whole table (they are not
statistics); every statistic is fitted on the training split only
(:mod:`pipelines.tables.encode`).

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": [0.5, 1.5, None], "c": ["a", "b", "a"], "y": [0, 1, 0]})
    >>> [(c.name, c.kind, c.detail) for c in infer_schema(frame, "y")]
    [('x', 'numeric', 'float'), ('c', 'categorical', 'text')]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import InvalidArgumentError, InvalidDataError

__all__ = ["KINDS", "Column", "as_numbers", "as_text", "check_target", "format_schema",
           "infer_schema"]

KINDS = ("numeric", "categorical", "drop")
MAX_INTEGER_CATEGORIES = 10  # an integer column with at most this many values is categorical
MIN_ROWS_FOR_ID = 20  # below this, "every value different" says nothing


@dataclasses.dataclass(frozen=True)
class Column:
    """One column: ``kind`` in :data:`KINDS`, ``detail`` says why (``"float"``,
    ``"text"``, ``"integer, 3 values"``, ``"boolean"``, ``"id-like"`` (text, or integers,
    every value different and nearly consecutive), ``"date-like"``,
    ``"--features"``), ``missing`` counts its missing values in the whole table."""

    name: str
    kind: str
    detail: str
    missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _is_integral(values: pd.Series) -> bool:
    numbers = values.to_numpy(dtype=np.float64)
    return bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)))


def as_numbers(values: pd.Series) -> np.ndarray:
    """float64 values, NaN where missing.

    Example:
        >>> as_numbers(pd.Series(["1", None, "2.5"])).tolist()
        [1.0, nan, 2.5]
    """
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("float64")
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def as_text(values: pd.Series) -> np.ndarray:
    """Text values (object array), ``""`` where missing; integral numbers without
    ``.0`` and booleans as ``true``/``false`` (also ``True``, ``FALSE`` …), so one
    value has one spelling.

    Example:
        >>> as_text(pd.Series([1.0, None, 3.0])).tolist()
        ['1', '', '3']
    """
    def text(value: Any) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        if isinstance(value, (bool, np.bool_)):
            return "true" if value else "false"
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        if isinstance(value, (float, np.floating)):
            return str(int(value)) if float(value).is_integer() else repr(float(value))
        text = str(value).strip()
        return text.lower() if text.lower() in ("true", "false") else text

    return np.array([text(value) for value in values.tolist()], dtype=object)


def _text_column(name: str, present: pd.Series, rows: int, missing: int) -> Column:
    """The kind of a column of text values (none missing in ``present``)."""
    numbers = pd.to_numeric(present, errors="coerce")
    parsed = int(numbers.notna().sum())
    if parsed == len(present):
        return _number_column(name, numbers, rows, missing)
    if parsed:
        example = present[numbers.isna()].iloc[0]
        raise InvalidDataError(
            f"column {name!r} mixes numbers and text ({parsed} numbers, e.g. "
            f"{present[numbers.notna()].iloc[0]!r}, and {len(present) - parsed} text values, "
            f"e.g. {example!r}); clean it, or declare it with --features "
            f"'{{\"{name}\": \"categorical\"}}' (or \"drop\")")
    lowered = set(present.astype(str).str.lower())
    if lowered <= {"true", "false"}:
        return Column(name, "categorical", "boolean", missing)
    dates = pd.to_datetime(present.astype(str), errors="coerce", format="ISO8601")
    if dates.notna().all():
        return Column(name, "drop", "date-like", missing)
    if len(present) >= MIN_ROWS_FOR_ID and present.nunique() == len(present):
        return Column(name, "drop", "id-like: every value different", missing)
    return Column(name, "categorical", "text", missing)


def _number_column(name: str, present: pd.Series, rows: int, missing: int) -> Column:
    if not _is_integral(present):
        return Column(name, "numeric", "float", missing)
    distinct = present.nunique()
    if distinct <= MAX_INTEGER_CATEGORIES:
        return Column(name, "categorical", f"integer, {distinct} values", missing)
    span = float(present.max() - present.min()) + 1
    if len(present) >= MIN_ROWS_FOR_ID and distinct == len(present) and span <= 2 * distinct:
        # every value different and nearly consecutive: a row number, not a measurement
        return Column(name, "drop", "id-like: every value different", missing)
    return Column(name, "numeric", "integer", missing)


def _infer(name: str, values: pd.Series) -> Column:
    rows, present = len(values), values.dropna()
    missing = rows - len(present)
    if present.empty:
        return Column(name, "drop", "no values", missing)
    if pd.api.types.is_bool_dtype(values) or (
        present.map(lambda v: isinstance(v, (bool, np.bool_))).all()
    ):
        return Column(name, "categorical", "boolean", missing)
    if pd.api.types.is_datetime64_any_dtype(values):
        return Column(name, "drop", "date-like", missing)
    if pd.api.types.is_numeric_dtype(values):
        return _number_column(name, present.astype("float64"), rows, missing)
    return _text_column(name, present, rows, missing)


def _checked_spec(features: Mapping[str, str] | None, columns: Sequence[str],
                  target: str) -> dict[str, str]:
    spec = dict(features or {})
    unknown = [name for name in spec if name not in columns or name == target]
    if unknown:
        raise InvalidArgumentError(
            f"--features names column(s) {', '.join(map(repr, unknown))} that the table's "
            f"features lack; its columns: {', '.join(c for c in columns if c != target)}")
    bad = {name: kind for name, kind in spec.items() if kind not in KINDS}
    if bad:
        name, kind = next(iter(bad.items()))
        raise InvalidArgumentError(f"--features: column {name!r} has kind {kind!r}; give one "
                                   f"of {', '.join(KINDS)}")
    return spec


def check_target(columns: Sequence[str], target: str | None, where: str) -> None:
    """Refuse a missing or unknown label column, naming the table's columns.

    Example:
        >>> check_target(["x", "y"], "z", "csv:t.csv")
        Traceback (most recent call last):
        pipelines.errors.InvalidArgumentError: --target 'z' is not a column of csv:t.csv; \
its columns: x, y
    """
    names = ", ".join(columns)
    if target is None:
        raise InvalidArgumentError(f"{where} is a table: name its label column with --target "
                                   f"COLUMN (target= in Python); its columns: {names}")
    if target not in columns:
        raise InvalidArgumentError(f"--target {target!r} is not a column of {where}; its "
                                   f"columns: {names}")


def infer_schema(frame: pd.DataFrame, target: str, *, drop: Sequence[str] = (),
                 features: Mapping[str, str] | None = None) -> list[Column]:
    """The kind of every column of ``frame`` except ``target``: ``drop`` columns and
    ``features`` (``{column: "numeric" | "categorical" | "drop"}``) decide first,
    the values the rest.

    Example:
        >>> frame = pd.DataFrame({"n": [1, 2, 3], "y": ["a", "b", "a"]})
        >>> infer_schema(frame, "y", features={"n": "numeric"})[0].detail
        '--features'
    """
    spec = _checked_spec(features, list(frame.columns), target)
    missing_drop = [name for name in drop if name not in frame.columns]
    if missing_drop:
        raise InvalidArgumentError(
            f"--drop names column(s) {', '.join(map(repr, missing_drop))} that the table "
            f"lacks; its columns: {', '.join(frame.columns)}")
    schema = []
    for name in frame.columns:
        if name == target:
            continue
        values = frame[name]
        missing = int(values.isna().sum())
        if name in drop:
            schema.append(Column(name, "drop", "--drop", missing))
        elif name in spec:
            if spec[name] == "numeric":
                numbers = pd.to_numeric(values.dropna(), errors="coerce")
                if numbers.isna().any():
                    raise InvalidDataError(
                        f"--features says column {name!r} is numeric, but it holds text "
                        f"such as {values.dropna()[numbers.isna()].iloc[0]!r}; declare it "
                        "categorical or clean it")
            schema.append(Column(name, spec[name], "--features", missing))
        else:
            schema.append(_infer(name, values))
    if not any(column.kind != "drop" for column in schema):
        raise InvalidDataError(
            f"no feature columns are left besides the target {target!r} "
            f"(dropped: {', '.join(c.name for c in schema) or 'none'}); give a table with "
            "at least one usable column, or keep one with --features")
    return schema


def format_schema(schema: Sequence[Mapping[str, Any]]) -> str:
    """The schema as a short table, one column per line.

    Example:
        >>> print(format_schema([Column("x", "numeric", "float", 2).to_dict()]))
        column  kind     detail  missing
        x       numeric  float   2
    """
    rows = [("column", "kind", "detail", "missing")] + [
        (str(c["name"]), str(c["kind"]), str(c["detail"]), str(c["missing"])) for c in schema]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                     .rstrip() for row in rows)
