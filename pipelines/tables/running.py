"""The preprocessing statistics of a streamed table, fitted in one pass over its
training rows, chunk by chunk, in memory that does not grow with the table.

What :func:`pipelines.tables.encode.fit_preprocessing` computes on a DataFrame,
computed here from chunks, the same numbers within the stated tolerances:

* row and missing counts, vocabularies (categorical values seen): exact;
* mean and variance (of a numeric column with missing values filled by the
  median): Chan's pairwise update of count, mean and sum of squared deviations
  in float64, the same as NumPy's up to the order of the float additions
  (relative difference about 1e-15);
* median: exact while a column has at most :data:`SAMPLE_SIZE` values in the
  training rows; beyond, the median of a uniform sample of that many of them,
  chosen by a hash of the row number (so the same rows on every run, process and
  backend).  A rank error of about ``1 / sqrt(SAMPLE_SIZE)`` (0.3 %) of the values:
  an exact median needs every value at once, which is what streaming avoids.

Written by hand because neither Keras's ``Normalization.adapt`` (float32, no
median) nor Arrow's aggregations (one table at a time) fit a running, mergeable,
deterministic fit of these numbers.

Example:
    >>> import numpy as np
    >>> stats = RunningStats({"x": "numeric", "c": "categorical"})
    >>> stats.update({"x": np.array([1.0, np.nan]), "c": np.array(["a", ""], object)},
    ...              np.arange(2))
    >>> stats.update({"x": np.array([5.0]), "c": np.array(["b"], object)}, np.arange(2, 3))
    >>> [(c["name"], c.get("median"), c.get("vocabulary")) for c in stats.columns()]
    [('x', 3.0, None), ('c', None, ['[missing]', 'a', 'b'])]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipelines.tables.encode import MISSING

__all__ = ["SAMPLE_SIZE", "RunningStats", "row_hash"]

SAMPLE_SIZE = 100_000  # values per numeric column kept for its median


def row_hash(rows: np.ndarray, salt: int) -> np.ndarray:
    """A well-mixed uint64 per row number (SplitMix64 of ``row + salt``'s golden-ratio
    step): the same on every machine, a pure function of its inputs.

    Example:
        >>> row_hash(np.array([0, 1]), 7).dtype.name, len(set(row_hash(np.arange(100), 7)))
        ('uint64', 100)
    """
    with np.errstate(over="ignore"):
        z = (rows.astype(np.uint64) + np.uint64(salt & (2**64 - 1))) * np.uint64(
            0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class _Numeric:
    """Count, mean, sum of squared deviations and a bottom-k sample of one column."""

    def __init__(self, salt: int) -> None:
        self.salt, self.count, self.missing = salt, 0, 0
        self.mean, self.m2 = 0.0, 0.0
        self.sample = np.zeros(0, np.float64)
        self.priority = np.zeros(0, np.uint64)

    def update(self, values: np.ndarray, rows: np.ndarray) -> None:
        present = ~np.isnan(values)
        self.missing += int((~present).sum())
        values, rows = values[present], rows[present]
        if not len(values):
            return
        count, mean = len(values), float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.count * count / total
        self.count = total
        # the SAMPLE_SIZE values of the smallest row hashes: a uniform sample, mergeable
        sample = np.concatenate([self.sample, values])
        priority = np.concatenate([self.priority, row_hash(rows, self.salt)])
        if len(sample) > SAMPLE_SIZE:
            keep = np.argpartition(priority, SAMPLE_SIZE - 1)[:SAMPLE_SIZE]
            sample, priority = sample[keep], priority[keep]
        self.sample, self.priority = sample, priority

    def column(self, name: str) -> dict[str, Any]:
        median = float(np.median(self.sample)) if self.count else 0.0
        rows = self.count + self.missing
        mean = (self.count * self.mean + self.missing * median) / rows if rows else 0.0
        m2 = (self.m2 + self.count * (self.mean - mean) ** 2
              + self.missing * (median - mean) ** 2)
        return {"name": name, "kind": "numeric", "median": median,
                "indicator": self.missing > 0, "mean": float(mean),
                "variance": float(m2 / rows) if rows else 0.0}


class RunningStats:
    """The statistics of the kept columns (``kinds``: ``{name: "numeric" |
    "categorical"}``, in the schema's order), updated a chunk of training rows at a
    time: numeric columns as float64 with NaN for missing, categorical ones as text
    with ``""`` for missing (:func:`pipelines.tables.pieces.read_piece`), and the
    chunk's row numbers in the table."""

    def __init__(self, kinds: Mapping[str, str]) -> None:
        self.kinds = dict(kinds)
        self.numeric = {name: _Numeric(salt=index + 1)
                        for index, (name, kind) in enumerate(self.kinds.items())
                        if kind == "numeric"}
        self.vocabularies: dict[str, set[str]] = {
            name: set() for name, kind in self.kinds.items() if kind == "categorical"}

    def update(self, chunk: Mapping[str, np.ndarray], rows: np.ndarray) -> None:
        for name, stats in self.numeric.items():
            stats.update(np.asarray(chunk[name], np.float64), rows)
        for name, vocabulary in self.vocabularies.items():
            vocabulary.update(MISSING if value == "" else value
                              for value in np.unique(chunk[name].astype(str)).tolist())

    def columns(self) -> list[dict[str, Any]]:
        """The fitted columns, as :func:`pipelines.tables.encode.fit_preprocessing`
        records them."""
        return [self.numeric[name].column(name) if kind == "numeric"
                else {"name": name, "kind": "categorical",
                      "vocabulary": sorted(self.vocabularies[name])}
                for name, kind in self.kinds.items()]
