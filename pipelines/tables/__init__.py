"""Tables as a data source: CSV, Parquet (a file, a folder of shards or a glob) and
pandas DataFrames with numeric, categorical and missing values and a label column.

``pipelines.load("csv:data.csv", target="label")`` or ``pipelines.load(frame,
target="label")`` reads the rows (:mod:`~pipelines.tables.read`), types the columns
(:mod:`~pipelines.tables.schema`), splits them (seeded, stratified), fits the
cleaning and encoding on the training rows only (:mod:`~pipelines.tables.encode`,
Keras preprocessing layers in ``tf.data``) and returns the usual :class:`Splits`
(:mod:`~pipelines.tables.load`).

Example:
    >>> is_table("csv:data.csv"), is_table("digits")
    (True, False)
"""

from __future__ import annotations

from pipelines.tables.read import TABLE_PREFIXES, is_table

__all__ = ["TABLE_PREFIXES", "is_table"]
