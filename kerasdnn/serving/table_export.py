"""Export of a table run (``python -m kerasdnn.export RUN --format tf_saved_model``):
a SavedModel whose ``serve`` takes a dict of **raw** columns and returns class
probabilities, with the run's fitted cleaning and encoding inside.

Inputs, one 1-D tensor per kept column (``preprocessing.json``'s ``columns``):
float32 for a numeric column (NaN where missing), string for a categorical one
(``""``, ``NA``, ``?`` … where missing; an unseen value is fine).  Output
``(rows, classes)`` float32, the columns in the order of the run's class names.
The cleaning is :class:`pipelines.tables.encode.Preprocessor` (Keras
``Normalization`` and ``StringLookup`` layers rebuilt from the saved state, never
refit), which needs TensorFlow's string ops: ONNX is refused with one line.

Before it is kept, the artifact is loaded with ``tf.saved_model.load`` and fed the
run's raw test rows (missing values and all): it must give ``predictions.npz``'s
probabilities within 1e-5.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kerasdnn.core.errors import KerasDNNError
from kerasdnn.core.io import read_json
from kerasdnn.core.rundir import MODEL_FILE, PREDICTIONS_FILE, PREPROCESSING_FILE
from kerasdnn.evaluation.predict import trained_data

__all__ = ["is_table_run", "raw_test_rows", "serve_rows", "write_table_export"]



def is_table_run(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a table run's fitted preprocessing.

    Example:
        >>> is_table_run(Path("/nonexistent"))
        False
    """
    return (Path(run_dir) / PREPROCESSING_FILE).is_file()


def _state(run_dir: Path) -> dict[str, Any]:
    return read_json(run_dir / PREPROCESSING_FILE)


def raw_test_rows(run_dir: Path, record: dict[str, Any]) -> tuple[dict[str, np.ndarray],
                                                                  np.ndarray]:
    """The run's raw test rows as the artifact takes them, and their labels."""
    from kerasdnn.training.data import load_arguments
    from pipelines.tables.encode import raw_columns
    from pipelines.tables.load import split_table

    config = trained_data(record)
    arguments = load_arguments(config)
    if config.dataset == "dataframe":
        raise KerasDNNError(f"{run_dir} was trained on a DataFrame in Python, which the run "
                            "cannot read again; train it from a csv: or parquet: file to "
                            "export it")
    state = _state(run_dir)
    if "stream" in state:  # never whole: the test rows (or the report's sample of them)
        from pipelines.tables.streaming import raw_split

        with np.load(run_dir / PREDICTIONS_FILE) as saved:
            rows = saved.get("rows")
        return raw_split(state, "test", rows)
    parts = split_table(arguments["name"], target=arguments["target"],
                        test_split=arguments["test_split"],
                        validation_split=arguments["validation_split"],
                        seed=arguments["seed"], preprocessing=state,
                        test_data=arguments.get("test_data"))
    return raw_columns(parts.frames["test"], parts.state), parts.labels["test"]


def serve_rows(artifact: str | os.PathLike[str], rows: dict[str, Any]) -> np.ndarray:
    """Class probabilities of a table SavedModel on a dict of raw columns.

    E.g. ``serve_rows("runs/t/saved_model", {"age": [41.0, float("nan")],
    "color": ["red", "?"]})`` (every kept column, one value per row).
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(str(artifact))
    signature = loaded.signatures["serve"].structured_input_signature[1]  # {column: spec}
    inputs = {name: tf.constant(np.asarray(rows[name], np.float32)) if spec.dtype == tf.float32
              else tf.constant([str(value) for value in rows[name]], tf.string)
              for name, spec in signature.items()}
    return np.asarray(loaded.serve(inputs))


def write_table_export(run_dir: Path, record: dict[str, Any], format: str,
                       target: Path) -> Path:
    """Write and check the SavedModel of a table run (on the TensorFlow backend)."""
    from kerasdnn.serving.artifact import TOLERANCE, ExportError

    if format != "tf_saved_model":
        raise ExportError(
            f"{run_dir} is a table run: its cleaning (string lookups, imputation) needs "
            "TensorFlow's string ops, which ONNX cannot express; use --format tf_saved_model")
    rows, labels = raw_test_rows(run_dir, record)
    with np.load(run_dir / PREDICTIONS_FILE) as saved:
        y_true, expected = saved["y_true"], saved["y_prob"]
    if labels.shape != y_true.shape or np.any(labels != y_true):
        raise ExportError(f"the test rows of {record['train']['dataset']} are not the ones "
                          f"{run_dir / PREDICTIONS_FILE} was made on; has the table changed?")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        artifact = staging / target.name
        _write(run_dir, artifact)
        got = serve_rows(artifact, rows)
        gap = float(np.max(np.abs(got.astype(np.float64) - expected)))
        if got.shape != expected.shape or not gap <= TOLERANCE:
            raise ExportError(
                f"the SavedModel's probabilities differ from {PREDICTIONS_FILE} by up to "
                f"{gap:.3g} (> {TOLERANCE:g}) on the raw test rows; it was not kept")
        os.replace(artifact, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write(run_dir: Path, path: Path) -> None:
    import keras
    import tensorflow as tf

    import kerasdnn.network.models  # noqa: F401  registers kerasdnn>DNN for loading
    from pipelines.tables.encode import Preprocessor

    state = _state(run_dir)
    model = keras.saving.load_model(run_dir / MODEL_FILE, compile=False)
    preprocess = Preprocessor(state)
    binary = bool(model.model_config.binary)

    def serve(inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        logits = model(preprocess(inputs), training=False)
        if binary:
            positive = tf.sigmoid(logits)
            return tf.concat([1.0 - positive, positive], axis=-1)
        return tf.nn.softmax(logits, axis=-1)

    signature = {c["name"]: tf.TensorSpec([None], tf.float32 if c["kind"] == "numeric"
                                          else tf.string, name=c["name"])
                 for c in state["columns"]}
    serve({c["name"]: tf.constant([np.nan] if c["kind"] == "numeric" else [""])
           for c in state["columns"]})  # Keras exports only layers that have been called
    archive = keras.export.ExportArchive()
    archive.track(model)
    for layer in preprocess.layers.values():
        archive.track(layer)
    archive.add_endpoint(name="serve", fn=serve, input_signature=[signature])
    archive.write_out(str(path), verbose=False)
