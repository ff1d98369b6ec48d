"""The cleaning and encoding of a table: fitted on the training split only, applied
by Keras preprocessing layers inside ``tf.data`` (on every backend) and inside an
exported model.

Numeric column: missing → the training median, plus a missing-indicator column when
training had missing values; then standardized (``keras.layers.Normalization``).
Categorical column: missing (``""``, ``NA``, ``?``, …) → its own value ``[missing]``;
one-hot over the training values (``keras.layers.StringLookup``), a value unseen
in training → the out-of-vocabulary column (index 0).

The fitted state is a plain JSON-able dict (:func:`fit_preprocessing`): the run
directory keeps it (``preprocessing.json``) and evaluate, resume and export rebuild
the same layers from it, never refit.

Example:
    >>> import pandas as pd
    >>> from pipelines.tables.schema import infer_schema
    >>> frame = pd.DataFrame({"x": [1.5, 3.5, None], "c": ["a", "b", None], "y": [0, 1, 0]})
    >>> state = fit_preprocessing(frame, infer_schema(frame, "y"))
    >>> state["feature_names"]
    ['x', 'x missing', 'c=[OOV]', 'c=[missing]', 'c=a', 'c=b']
    >>> encode(frame, state).round(3).tolist()[2]
    [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipelines.tables.read import MISSING_TOKENS
from pipelines.tables.schema import Column, as_numbers, as_text

__all__ = ["MISSING", "OOV", "Preprocessor", "encode", "fit_preprocessing", "preprocessing_state",
           "raw_columns"]

MISSING = "[missing]"  # the value a missing categorical cell becomes
OOV = "[OOV]"  # StringLookup's out-of-vocabulary token (column 0 of the one-hot)
ENCODE_BATCH = 4096  # rows per tf.data element while encoding a split
_MISSING_PATTERN = "|".join(re.escape(token) for token in sorted(MISSING_TOKENS) if token)
_MISSING_PATTERN = f"(?:{_MISSING_PATTERN})?"  # the empty string too


def fit_preprocessing(train: pd.DataFrame, schema: Sequence[Column]) -> dict[str, Any]:
    """The statistics of every kept column, from the training rows ``train`` only.

    Medians, means and variances are computed in float64 NumPy rather than with
    ``Normalization.adapt``, which reduces in the backend's float32 and can differ
    in the last bit between backends; the layers then take them as given.
    Vocabularies are sorted, as scikit-learn's ``OneHotEncoder`` sorts categories.

    Example:
        >>> frame = pd.DataFrame({"x": [1.0, 2.0, 6.0]})
        >>> fit_preprocessing(frame, [Column("x", "numeric", "float")])["columns"][0]["median"]
        2.0
    """
    columns: list[dict[str, Any]] = []
    for column in schema:
        if column.kind == "numeric":
            values = as_numbers(train[column.name])
            missing = np.isnan(values)
            median = float(np.median(values[~missing])) if (~missing).any() else 0.0
            filled = np.where(missing, median, values)
            columns.append({"name": column.name, "kind": "numeric", "median": median,
                            "indicator": bool(missing.any()), "mean": float(filled.mean()),
                            "variance": float(filled.var())})
        elif column.kind == "categorical":
            text = as_text(train[column.name])
            vocabulary = sorted({MISSING if value == "" else value for value in text})
            columns.append({"name": column.name, "kind": "categorical",
                            "vocabulary": vocabulary})
    return preprocessing_state(columns)


def preprocessing_state(columns: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The fitted state of ``columns`` (each a numeric column's ``median``, ``indicator``,
    ``mean`` and ``variance``, or a categorical column's ``vocabulary``) with the names
    of the encoded features and their count.

    Example:
        >>> preprocessing_state([{"name": "c", "kind": "categorical",
        ...                       "vocabulary": ["a"]}])["feature_names"]
        ['c=[OOV]', 'c=a']
    """
    names: list[str] = []
    for column in columns:
        if column["kind"] == "numeric":
            names += [column["name"]] + ([f"{column['name']} missing"]
                                         if column["indicator"] else [])
        else:
            names += [f"{column['name']}={value}" for value in [OOV, *column["vocabulary"]]]
    return {"columns": [dict(column) for column in columns], "feature_names": names,
            "width": len(names)}


def raw_columns(frame: pd.DataFrame, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The kept columns of ``frame`` as the preprocessing takes them: float32 with
    NaN for missing (numeric), text with ``""`` for missing (categorical).

    Example:
        >>> state = {"columns": [{"name": "c", "kind": "categorical", "vocabulary": ["a"]}]}
        >>> raw_columns(pd.DataFrame({"c": ["a", None]}), state)["c"].tolist()
        ['a', '']
    """
    missing = [c["name"] for c in state["columns"] if c["name"] not in frame.columns]
    if missing:
        from pipelines.errors import InvalidDataError

        raise InvalidDataError(
            f"the table lacks column(s) {', '.join(map(repr, missing))} that the run was "
            "trained with; give the table the run was trained on")
    return {c["name"]: (as_numbers(frame[c["name"]]).astype(np.float32)
                        if c["kind"] == "numeric" else as_text(frame[c["name"]]).astype(str))
            for c in state["columns"]}


class Preprocessor:
    """The fitted state as Keras layers; calling it on a dict of raw column tensors
    (one batch) returns the encoded float32 matrix.  Runs in TensorFlow: inside
    ``tf.data`` on every backend, and inside an exported SavedModel.

    Example:
        >>> from pipelines.tf_setup import tf
        >>> state = {"columns": [{"name": "c", "kind": "categorical",
        ...                       "vocabulary": ["[missing]", "a"]}]}
        >>> Preprocessor(state)({"c": tf.constant(["a", "?", "z"])}).numpy().tolist()
        [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """

    def __init__(self, state: Mapping[str, Any]) -> None:
        import keras

        self.columns = list(state["columns"])
        self.layers: dict[str, Any] = {}
        for column in self.columns:
            if column["kind"] == "numeric":
                layer = keras.layers.Normalization(
                    mean=[column["mean"]], variance=[column["variance"]])
                layer.build((None, 1))
                self.layers[column["name"]] = layer
            else:
                self.layers[column["name"]] = keras.layers.StringLookup(
                    vocabulary=list(column["vocabulary"]), num_oov_indices=1, oov_token=OOV,
                    output_mode="one_hot")

    def __call__(self, inputs: Mapping[str, Any]) -> Any:
        from pipelines.tf_setup import tf

        parts = []
        for column in self.columns:
            name, layer = column["name"], self.layers[column["name"]]
            if column["kind"] == "numeric":
                x = tf.cast(inputs[name], tf.float32)
                is_missing = tf.math.is_nan(x)
                filled = tf.where(is_missing, tf.constant(column["median"], tf.float32), x)
                parts.append(tf.cast(layer(filled[:, None]), tf.float32))
                if column["indicator"]:
                    parts.append(tf.cast(is_missing, tf.float32)[:, None])
            else:
                text = tf.strings.strip(tf.strings.as_string(inputs[name])
                                        if inputs[name].dtype != tf.string else inputs[name])
                # as as_text spells them: True, FALSE … → true, false
                text = tf.where(tf.strings.regex_full_match(text, "(?i)true|false"),
                                tf.strings.lower(text), text)
                text = tf.where(tf.strings.regex_full_match(text, _MISSING_PATTERN),
                                tf.constant(MISSING), text)
                parts.append(tf.cast(layer(text), tf.float32))
        return tf.concat(parts, axis=-1)


def encode(frame: pd.DataFrame, state: Mapping[str, Any]) -> np.ndarray:
    """``frame``'s rows encoded by the fitted ``state``: float32 ``(rows, width)``,
    computed by :class:`Preprocessor` in a ``tf.data`` pipeline.

    Example:
        >>> state = {"columns": [{"name": "x", "kind": "numeric", "median": 1.0,
        ...          "indicator": True, "mean": 1.0, "variance": 4.0}]}
        >>> encode(pd.DataFrame({"x": [3.0, None]}), state).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    from pipelines.tf_setup import tf

    preprocess = Preprocessor(state)
    with tf.device("/cpu:0"):
        dataset = tf.data.Dataset.from_tensor_slices(raw_columns(frame, state))
        batches = dataset.batch(ENCODE_BATCH).map(preprocess)
        encoded = [batch.numpy() for batch in batches]
    width = sum(1 + c["indicator"] if c["kind"] == "numeric" else 1 + len(c["vocabulary"])
                for c in state["columns"])
    return np.concatenate(encoded, axis=0) if encoded else np.zeros((0, width), np.float32)
