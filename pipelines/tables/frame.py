"""A DataFrame handed to a scikit-learn estimator: when it holds text or missing
values, the same cleaning and encoding as a table run, fitted on the rows given to
``fit`` (``kerasdnn.DNNClassifier`` uses it).

Example:
    >>> import pandas as pd
    >>> X = pd.DataFrame({"x": [1.5, None, 3.5], "c": ["a", "b", "a"]})
    >>> state = fit_frame(X)
    >>> encode_frame(X, state).shape
    (3, 5)
    >>> fit_frame(pd.DataFrame({"x": [1.5, 2.5]})) is None
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.tables.encode import encode, fit_preprocessing
from pipelines.tables.read import read_table
from pipelines.tables.schema import infer_schema

__all__ = ["encode_frame", "fit_frame"]

_NO_TARGET = "\0"  # infer_schema's target: a name no column has


def _needs_cleaning(X: Any) -> bool:
    if not isinstance(X, pd.DataFrame):
        return False
    numeric = all(pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
                  for c in X.columns)
    return not numeric or bool(X.isna().to_numpy().any())


def fit_frame(X: Any) -> dict[str, Any] | None:
    """The fitted preprocessing of a DataFrame with text or missing values (every
    column kept, types inferred as for a table); None for anything else, which the
    estimator takes as numbers."""
    if not _needs_cleaning(X):
        return None
    frame = read_table(X)
    schema = infer_schema(frame, _NO_TARGET)
    return {"schema": [column.to_dict() for column in schema],
            **fit_preprocessing(frame, schema)}


def encode_frame(X: Any, state: dict[str, Any]) -> np.ndarray:
    """``X``'s rows encoded by ``state`` (float32), a DataFrame or rows in its columns."""
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(X, columns=[c["name"] for c in state["schema"]])
    return encode(read_table(X), state)
