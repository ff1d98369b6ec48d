"""A table file read piece by piece, never whole: the pieces of a streamed table
(:mod:`pipelines.tables.streaming`) and the columns of each as NumPy arrays.

A piece is what can be read on its own and handed to one process: a row group
of a Parquet file, or a byte range of a CSV file of about :data:`PIECE_BYTES`
that starts and ends at a line end.  So a single large file still has many
pieces to shuffle and to share out.  A CSV piece is cut at line ends, which
assumes no quoted field holds a line break (the piece's parse then fails with
one line naming the file).

Each piece is read in chunks of at most :data:`CHUNK_ROWS` rows (Arrow's CSV
reader on the piece's bytes, Arrow's Parquet batch reader on the row group);
a chunk's kept columns come out as the preprocessing takes them
(:func:`pipelines.tables.encode.raw_columns`): float64 with NaN where missing
for numeric columns, text with ``""`` where missing for the others.

Example:
    >>> import tempfile, pandas as pd
    >>> path = tempfile.mkdtemp() + "/t.csv"
    >>> pd.DataFrame({"x": [1.5, None, 3.0], "y": ["a", "b", "a"]}).to_csv(path, index=False)
    >>> pieces = plan_pieces(f"csv:{path}")
    >>> chunk = next(read_piece(pieces[0], {"x": "numeric", "y": "text"}))
    >>> chunk["x"].tolist(), chunk["y"].tolist()
    ([1.5, nan, 3.0], ['a', 'b', 'a'])
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import DataFormatError, InvalidDataError
from pipelines.tables.read import MISSING_TOKENS, table_files

__all__ = ["CHUNK_ROWS", "PIECE_BYTES", "Piece", "head", "plan_pieces", "read_piece"]

PIECE_BYTES = 8 << 20  # a CSV piece: about this many bytes, cut at line ends
CHUNK_ROWS = 16384  # rows per chunk read from a piece
HEAD_ROWS = 10_000  # rows that the column types are inferred from
_NULLS = sorted(MISSING_TOKENS | {f" {token}" for token in MISSING_TOKENS})


@dataclasses.dataclass(frozen=True)
class Piece:
    """One readable piece: ``path`` and either the byte range ``[start, stop)`` of a
    CSV file (``columns``: its header's names) or ``row_group`` of a Parquet file."""

    format: str
    path: str
    start: int = 0
    stop: int = 0
    row_group: int = 0
    columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "columns": list(self.columns)}


def _header(path: str, where: str) -> tuple[tuple[str, ...], int]:
    """``(column names, byte offset of the first data row)`` of a CSV file."""
    with open(path, "rb") as handle:
        line = handle.readline()
        end = handle.tell()
    try:
        names = next(csv.reader([line.decode("utf-8")]), [])
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{where} is not UTF-8 text (byte {error.start}: "
                              f"{error.reason}); save it as UTF-8 CSV") from None
    names = [name.strip() for name in names]
    if not names or names == [""]:
        raise InvalidDataError(f"{where} is empty; give a CSV file with a header row and "
                               "data rows")
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise DataFormatError(f"{where}: column name(s) {', '.join(doubled)} occur twice; "
                              "give every column its own name")
    return tuple(names), end


def _csv_pieces(path: str, where: str, piece_bytes: int) -> list[Piece]:
    names, first = _header(path, where)
    size = Path(path).stat().st_size
    cuts = [first]
    with open(path, "rb") as handle:
        for nominal in range(first + piece_bytes, size, piece_bytes):
            handle.seek(nominal - 1)
            handle.readline()  # to the end of the line the nominal cut falls in
            if handle.tell() > cuts[-1] and handle.tell() < size:
                cuts.append(handle.tell())
    cuts.append(size)
    return [Piece("csv", path, start, stop, columns=names)
            for start, stop in itertools.pairwise(cuts) if stop > start]


def plan_pieces(source: str, *, piece_bytes: int | None = None) -> list[Piece]:
    """The pieces of ``csv:PATH`` or ``parquet:PATH`` (a file, a folder of shards or a
    glob), files in name order and each file's pieces in file order; a CSV piece
    about ``piece_bytes`` (default :data:`PIECE_BYTES`) long.

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/t.csv"
        >>> _ = Path(path).write_text("x,y\\n" + "1.0,a\\n" * 1000)
        >>> len(plan_pieces(f"csv:{path}", piece_bytes=2048))
        3
    """
    prefix, _, argument = str(source).partition(":")
    where = f"{prefix}:{argument}"
    if prefix == "csv":
        pieces = [piece for path in table_files(argument, where, "CSV")
                  for piece in _csv_pieces(path, f"csv:{path}", piece_bytes or PIECE_BYTES)]
        names = {piece.columns for piece in pieces}
        if len(names) > 1:
            raise DataFormatError(f"{where}: the CSV files have different headers; give "
                                  "files of the same columns")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pieces = []
        for path in table_files(argument, where, "Parquet"):
            try:
                groups = pq.ParquetFile(path).num_row_groups
            except (pa.ArrowInvalid, OSError) as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
                raise DataFormatError(f"parquet:{path} is not a readable Parquet file "
                                      f"({first}); give a Parquet file written by pandas, "
                                      "Arrow or Spark") from None
            pieces += [Piece("parquet", path, row_group=group) for group in range(groups)]
    if not pieces:
        raise InvalidDataError(f"{where} has a header but no rows; give a table with data rows")
    return pieces


def head(pieces: list[Piece], rows: int | None = None) -> pd.DataFrame:
    """The first ``rows`` (default :data:`HEAD_ROWS`) rows of the table, read as
    :func:`pipelines.tables.read.read_table` reads a whole one: what the column types
    are inferred from.

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/t.csv"
        >>> _ = Path(path).write_text("x,y\\n1.5,a\\n?,b\\n")
        >>> head(plan_pieces(f"csv:{path}"))["x"].isna().tolist()
        [False, True]
    """
    from pipelines.tables.read import read_table

    rows = rows or HEAD_ROWS
    first = pieces[0]
    if first.format == "csv":
        with open(first.path, "rb") as handle:
            handle.readline()
            lines = [line for _, line in zip(range(rows), handle, strict=False)]
        text = ",".join(_quoted(name) for name in first.columns) + "\n"
        frame = pd.read_csv(io.StringIO(text + b"".join(lines).decode("utf-8", "replace")),
                            na_values=sorted(MISSING_TOKENS), keep_default_na=True,
                            skipinitialspace=True, low_memory=False)
    else:
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(first.path).iter_batches(batch_size=rows), None)
        if batch is None:
            raise InvalidDataError(f"parquet:{first.path} has no rows; give a table with "
                                   "data rows")
        frame = batch.to_pandas()
    return read_table(frame)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\n') else name


def read_piece(piece: Piece, kinds: Mapping[str, str], *,
               chunk_rows: int = CHUNK_ROWS) -> Iterator[dict[str, np.ndarray]]:
    """The chunks of ``piece``: for each column in ``kinds`` (``"numeric"``: float64,
    NaN where missing; ``"text"``: text, ``""`` where missing), its values.

    Raises:
        InvalidDataError: a numeric column holds text, or a column is missing.
        DataFormatError: the piece is not well-formed CSV or readable Parquet.
    """
    where = f"{piece.format}:{piece.path}"
    absent = [name for name in kinds if piece.format == "csv" and name not in piece.columns]
    if absent:
        raise InvalidDataError(f"{where} lacks column(s) {', '.join(map(repr, absent))}; "
                               "give the table the run was trained on")
    for batch in (_csv_batches(piece, kinds, chunk_rows, where) if piece.format == "csv"
                  else _parquet_batches(piece, kinds, chunk_rows, where)):
        yield {name: (_numbers(batch.column(name), name, where) if kind == "numeric"
                      else _text(batch.column(name)))
               for name, kind in kinds.items()}


def _csv_batches(piece: Piece, kinds: Mapping[str, str], chunk_rows: int,
                 where: str) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(piece.path, "rb") as handle:
        handle.seek(piece.start)
        data = handle.read(piece.stop - piece.start)
    if not data.strip():
        return
    options = pacsv.ConvertOptions(
        column_types={name: pa.float64() if kind == "numeric" else pa.string()
                      for name, kind in kinds.items()},
        include_columns=list(kinds), null_values=_NULLS, strings_can_be_null=True)
    try:
        table = pacsv.read_csv(io.BytesIO(data),
                               pacsv.ReadOptions(column_names=list(piece.columns),
                                                 use_threads=False),
                               pacsv.ParseOptions(), options)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise _csv_error(str(error), where) from None
    yield from table.to_batches(max_chunksize=chunk_rows)


def _csv_error(message: str, where: str) -> Exception:
    first = message.strip().splitlines()[0] if message.strip() else "unreadable"
    if "conversion error to double" in first:
        return InvalidDataError(
            f"{where}: a numeric column holds text further down than the "
            f"{HEAD_ROWS:,} rows its type was inferred from ({first}); clean it, or declare "
            "the column categorical with --features")
    return DataFormatError(f"{where} is not a well-formed CSV file ({first}); check that it "
                           "is complete, UTF-8, has one field per column in every row and "
                           "no line breaks inside quoted fields")


def _parquet_batches(piece: Piece, kinds: Mapping[str, str], chunk_rows: int,
                     where: str) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(piece.path)
        absent = [name for name in kinds if name not in reader.schema_arrow.names]
        if absent:
            raise InvalidDataError(f"{where} lacks column(s) {', '.join(map(repr, absent))}; "
                                   "give the table the run was trained on")
        yield from reader.iter_batches(batch_size=chunk_rows, row_groups=[piece.row_group],
                                       columns=list(kinds))
    except (pa.ArrowInvalid, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise DataFormatError(f"{where} is not a readable Parquet file ({first})") from None


def _numbers(column: Any, name: str, where: str) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type) or \
            pa.types.is_boolean(column.type):
        return column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    text = pd.Series(_text(column))
    numbers = pd.to_numeric(text.mask(text == ""), errors="coerce")
    bad = numbers.isna() & (text != "")
    if bad.any():
        raise InvalidDataError(
            f"{where}: numeric column {name!r} holds text such as {text[bad].iloc[0]!r} further "
            f"down than the {HEAD_ROWS:,} rows its type was inferred from; clean it, or declare "
            "the column categorical with --features")
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def _text(column: Any) -> np.ndarray:
    """As :func:`pipelines.tables.schema.as_text` spells values: stripped, ``true`` and
    ``false`` in lower case, integral numbers without ``.0``, ``""`` where missing (a
    missing-value token included)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        from pipelines.tables.schema import as_text

        return as_text(column.to_pandas())
    text = pc.utf8_trim_whitespace(column.fill_null(""))
    lower = pc.utf8_lower(text)
    text = pc.if_else(pc.is_in(lower, pa.array(["true", "false"])), lower, text)
    text = pc.if_else(pc.is_in(text, pa.array(sorted(MISSING_TOKENS))), "", text)
    return text.to_numpy(zero_copy_only=False)
