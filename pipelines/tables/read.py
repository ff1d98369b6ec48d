"""Reading a table: a CSV file, Parquet (a file, a folder of shards or a glob) or a
pandas DataFrame → one DataFrame in which every missing value is a pandas null.

The missing-value tokens are decided here, once, for every reader: an empty
field, ``NA``, ``NaN``, ``?`` and whatever pandas and Arrow read as null
(:data:`MISSING_TOKENS`); text cells that hold one of them become null too, so a
DataFrame built by hand is cleaned the same way as a file.

Example:
    >>> import pandas as pd
    >>> frame = read_table(pd.DataFrame({"a": ["1", "?", " NA "], "y": [0, 1, 0]}))
    >>> frame["a"].isna().tolist()
    [False, True, True]
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.errors import DataFormatError, InvalidDataError

__all__ = ["MISSING_TOKENS", "TABLE_PREFIXES", "is_table", "read_table", "table_files"]

TABLE_PREFIXES = ("csv", "parquet")
# pandas' own NA strings, plus "?" (UCI data sets) and "NaN"-like spellings
MISSING_TOKENS = frozenset(
    {"", "?", "NA", "N/A", "n/a", "NaN", "nan", "NAN", "NULL", "null", "None", "none",
     "<NA>", "#N/A", "-NaN", "-nan", "1.#IND", "1.#QNAN", "#NA", "-1.#IND", "-1.#QNAN"})


def is_table(name: Any) -> bool:
    """True for a DataFrame and for a ``csv:PATH`` or ``parquet:PATH`` name.

    Example:
        >>> is_table("csv:data/x.csv"), is_table("digits")
        (True, False)
    """
    if isinstance(name, pd.DataFrame):
        return True
    prefix, colon, argument = str(name).partition(":")
    return bool(colon) and prefix in TABLE_PREFIXES and bool(argument)


def read_table(source: Any) -> pd.DataFrame:
    """The rows of ``source`` (a DataFrame, ``"csv:PATH"`` or ``"parquet:PATH"``), with
    every missing-value token as a pandas null.  A file that cannot be read as the
    format it claims is a :class:`~pipelines.errors.DataFormatError` naming it.

    Example:
        >>> import pandas as pd
        >>> read_table(pd.DataFrame({"x": [1.5, None]}))["x"].isna().sum()
        np.int64(1)
    """
    if isinstance(source, pd.DataFrame):
        frame, where = source.copy(), "the DataFrame"
    else:
        prefix, _, argument = str(source).partition(":")
        where = f"{prefix}:{argument}"
        frame = _read_csv(argument, where) if prefix == "csv" else _read_parquet(argument, where)
    frame.columns = [str(column) for column in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        doubled = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
        raise DataFormatError(f"{where}: column name(s) {', '.join(doubled)} occur twice; "
                              "give every column its own name")
    if frame.shape[1] == 0:
        raise InvalidDataError(f"{where} has no columns; give a table with a header row")
    if len(frame) == 0:
        raise InvalidDataError(f"{where} has a header but no rows; give a table with data rows")
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            stripped = values.map(lambda v: v.strip() if isinstance(v, str) else v)
            frame[column] = stripped.mask(stripped.map(
                lambda v: isinstance(v, str) and v in MISSING_TOKENS))
    return frame


def _read_csv(argument: str, where: str) -> pd.DataFrame:
    files = table_files(argument, where, "CSV")
    if len(files) > 1:  # shards: each read and checked as a file, then the rows together
        frames = [_read_csv(file, f"csv:{file}") for file in files]
        if len({tuple(frame.columns) for frame in frames}) > 1:
            raise DataFormatError(f"{where}: the CSV files have different headers; give "
                                  "files of the same columns")
        return pd.concat(frames, ignore_index=True)
    path = Path(files[0])
    try:
        frame = pd.read_csv(path, na_values=sorted(MISSING_TOKENS), keep_default_na=True,
                            skipinitialspace=True, encoding="utf-8", low_memory=False)
    except UnicodeDecodeError as error:
        raise DataFormatError(
            f"{where} is not UTF-8 text (byte {error.start}: {error.reason}); save it as "
            "UTF-8 CSV") from None
    except pd.errors.EmptyDataError:
        raise InvalidDataError(f"{where} is empty; give a CSV file with a header row "
                               "and data rows") from None
    except (pd.errors.ParserError, ValueError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
        raise DataFormatError(f"{where} is not a well-formed CSV file ({reason}); check "
                              "that it is complete and has one field per column in "
                              "every row") from None
    _check_complete(path, where, len(frame.columns))
    return frame


def _check_complete(path: Path, where: str, columns: int) -> None:
    """Refuse a file cut short: pandas fills a last row that lacks fields with
    nulls, which would pass a truncated download off as missing values."""
    import csv
    import io

    with open(path, "rb") as handle:
        handle.seek(max(path.stat().st_size - 65536, 0))
        tail = handle.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return
    last = tail.splitlines()[-1].decode("utf-8", errors="replace")
    fields = next(csv.reader(io.StringIO(last)), [])
    if len(fields) < columns:
        raise DataFormatError(
            f"{where} is truncated: its last row has {len(fields)} of {columns} fields and "
            "no line end; copy or download the file again")


def table_files(argument: str, where: str, kind: str) -> list[str]:
    """The files of ``csv:PATH`` or ``parquet:PATH`` (``kind``: ``"CSV"`` or
    ``"Parquet"``): a file, the files of a folder of shards (hidden and ``_`` files
    left out) or those a glob matches, in name order.

    Example:
        >>> table_files("/nowhere/*.csv", "csv:/nowhere/*.csv", "CSV")
        Traceback (most recent call last):
        pipelines.errors.DataFormatError: csv:/nowhere/*.csv: no file matches the pattern; \
give a CSV file, a folder of CSV shards or a glob that matches
    """
    path = Path(argument).expanduser()
    if any(char in argument for char in "*?["):
        files = sorted(glob.glob(os.path.expanduser(argument)))
        if not files:
            raise DataFormatError(f"{where}: no file matches the pattern; give a {kind} "
                                  f"file, a folder of {kind} shards or a glob that matches")
        return files
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir()
                       if p.is_file() and not p.name.startswith((".", "_")))
        if not files:
            raise DataFormatError(f"{where} is an empty folder; put {kind} shards in it")
        return files
    _check_readable(path, where, f"a {kind} file, a folder of shards or a glob")
    return [str(path)]


def _read_parquet(argument: str, where: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.dataset as ds

    files = table_files(argument, where, "Parquet")
    try:
        table = ds.dataset(files, format="parquet").to_table()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise DataFormatError(f"{where} is not a readable Parquet file ({first}); give a "
                              "Parquet file written by pandas, Arrow or Spark") from None
    return table.to_pandas()


def _check_readable(path: Path, where: str, wanted: str) -> None:
    if not path.exists():
        raise DataFormatError(f"{where}: no such file; give the path of {wanted}")
    if path.is_dir():
        raise DataFormatError(f"{where} is a folder; give the path of {wanted}")
    if not os.access(path, os.R_OK):
        raise DataFormatError(f"{where} cannot be read (permission denied); make it "
                              "readable or copy it somewhere you can read")
