"""Export a run for serving, preprocessing inside: :func:`export`, what
``python -m kerasdnn.export`` and ``kerasdnn.export(...)`` run.

The artifact takes the **raw** examples of the run's data source (MNIST's
28×28 ``uint8`` images, digits' 8×8 values in 0..16, ...), applies the run's
scaling (the offset and multiplier ``pipelines.load`` used, recomputed from the
recorded source, split and seed) and flattening, and returns float32 class
probabilities.  Input ``inputs`` (batch, *raw example shape), the source's
dtype; output ``output_0`` (batch, classes) float32.

Keras's ``model.export`` writes it, on the TensorFlow backend (a subprocess when
this one runs another backend: ``model.keras`` loads on any backend, and
TensorFlow exports both formats).  The artifact is then loaded in its own runtime
(``tf.saved_model.load`` or ``onnxruntime``), fed the run's raw test split, and
must give ``predictions.npz``'s probabilities within 1e-5; otherwise it is
removed and the export fails with one line.
``export("runs/digits", format="onnx")`` returns the artifact's path,
``runs/digits/model.onnx``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kerasdnn.core.errors import KerasDNNError, RunDirectoryError
from kerasdnn.core.rundir import (
    EXPORT_NAMES,
    MODEL_FILE,
    PREDICTIONS_FILE,
    read_predictions,
    read_run_config,
)
from kerasdnn.core.runtime import check_backend, quiet_tensorflow
from kerasdnn.evaluation.predict import trained_data
from kerasdnn.training.data import load_arguments
from pipelines.backends import backend_spec, with_feature
from pipelines.builder import raw_source_and_scaling

__all__ = [
    "DEFAULT_NAMES",
    "FORMATS",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "TOLERANCE",
    "ExportError",
    "export",
    "run_artifact",
    "verify",
]

COMMAND = "kerasdnn.export"  # run on the TensorFlow backend when this one is another
FORMATS = tuple(EXPORT_NAMES)
DEFAULT_NAMES = EXPORT_NAMES  # the artifact's name beside the model, per format
INPUT_NAME = "inputs"
OUTPUT_NAME = "output_0"  # Keras's name for a single-output export
TOLERANCE = 1e-5
# Python module → what the `export` extra installs for it, per format.
_NEEDS = {
    "tf_saved_model": {},
    "onnx": {"onnx": "onnx", "onnxruntime": "onnxruntime", "tf2onnx": "tf2onnx"},
}


class ExportError(KerasDNNError):
    """The artifact cannot be made or does not reproduce the run's predictions."""


def export(run_dir: str | os.PathLike[str], format: str = "onnx",
           out: str | os.PathLike[str] | None = None) -> Path:
    """Write the run's model with its preprocessing as a serving artifact, and check it.

    Args:
        run_dir: a finished run directory (``model.keras``, ``config.json``,
            ``predictions.npz``).
        format: ``"tf_saved_model"`` (a folder) or ``"onnx"`` (a file).
        out: where to write it (default: ``RUN_DIR/saved_model`` or
            ``RUN_DIR/model.onnx``); must not exist yet.

    Returns:
        The artifact's path.

    Raises:
        ExportError: a missing ``export`` extra, or an artifact whose probabilities
            on the raw test split differ from ``predictions.npz`` by more than 1e-5
            (nothing is left behind).
        RunDirectoryError: ``run_dir`` is not a finished run, or ``out`` exists.

    A SavedModel is then served as ``tf.saved_model.load(str(path)).serve(raw_x)``,
    an ONNX file by ``onnxruntime`` (:func:`run_artifact` does either).
    """
    if format not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    _check_extra(format)
    run_dir = Path(run_dir)
    record = read_run_config(run_dir)
    for name in (MODEL_FILE, PREDICTIONS_FILE):
        if not (run_dir / name).is_file():
            raise RunDirectoryError(
                f"{run_dir} has no {name}: the run has not finished; finish it with "
                f"`python -m kerasdnn.train --out {run_dir} --resume`"
            )
    target = Path(out) if out is not None else run_dir / DEFAULT_NAMES[format]
    if target.exists():
        raise RunDirectoryError(f"{target} already exists; remove it or give another --out")
    if not backend_spec(check_backend()).exports:
        return _export_in_subprocess(run_dir, format, target)
    from kerasdnn.serving.table_export import is_table_run, write_table_export

    if is_table_run(run_dir):  # raw columns in: kerasdnn/serving/table_export.py
        return write_table_export(run_dir, record, format, target)
    raw, scaling = _source(record)
    raw_x, expected = _raw_test_split(run_dir, record, raw)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        artifact = staging / target.name
        _write(run_dir, scaling, format, artifact, raw_x)
        verify(artifact, format, raw_x, expected)
        os.replace(artifact, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def run_artifact(artifact: str | os.PathLike[str], format: str, x: np.ndarray) -> np.ndarray:
    """Probabilities ``(n, classes)`` of an exported artifact on raw inputs ``x``
    (``n`` examples as the source gives them), in its own runtime."""
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
        return np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0])
    quiet_tensorflow()
    import tensorflow as tf

    loaded = tf.saved_model.load(str(artifact))  # held: serve needs its variables alive
    return np.asarray(loaded.serve(tf.constant(x)))


def verify(artifact: str | os.PathLike[str], format: str, x: np.ndarray,
           expected: np.ndarray) -> None:
    """Raise :class:`ExportError` unless the artifact's probabilities on ``x`` are
    within 1e-5 of ``expected``."""
    try:
        got = run_artifact(artifact, format, x)
    except Exception as error:  # any runtime failure means the artifact is unusable
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ExportError(f"the {format} artifact {artifact} does not run in its own "
                          f"runtime ({first_line}); it was not kept") from None
    if got.shape != expected.shape:
        raise ExportError(f"the {format} artifact returns shape {got.shape}, the run's "
                          f"predictions have {expected.shape}; it was not kept")
    gap = float(np.max(np.abs(got.astype(np.float64) - expected)))
    if not gap <= TOLERANCE:
        raise ExportError(
            f"the {format} artifact's probabilities differ from {PREDICTIONS_FILE} by up to "
            f"{gap:.3g} (> {TOLERANCE:g}) on the raw test split; it was not kept"
        )


def _check_extra(format: str) -> None:
    missing = [package for module, package in _NEEDS[format].items()
               if importlib.util.find_spec(module) is None]
    if missing:
        raise ExportError(
            f"{format} export needs {', '.join(missing)}: "
            "pip install 'kerasdnn[export]'"
        )


def _export_in_subprocess(run_dir: Path, format: str, target: Path) -> Path:
    """The same export, on the TensorFlow backend (the one that writes both formats)."""
    package_root = str(Path(__file__).resolve().parents[2])  # above kerasdnn/
    env = {**os.environ, "KERAS_BACKEND": with_feature("exports")[0],
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root,
                                                       os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", COMMAND, str(run_dir), "--format", format,
         "--out", str(target)],
        env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode == 0:
        return target
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    prefix = f"python -m {COMMAND}: error: "
    errors = [line[len(prefix):] for line in lines if line.startswith(prefix)]
    if errors:
        raise ExportError(errors[-1])
    raise ExportError(f"the export on the TensorFlow backend failed (exit {done.returncode}): "
                      f"{lines[-1] if lines else 'no message'}")


def _raw_test_split(run_dir: Path, record: dict[str, Any],
                    raw: Any) -> tuple[np.ndarray, np.ndarray]:
    """The run's test examples as the source gives them, and the run's probabilities
    (of the report's sample of them, when its ``predictions.npz`` has ``rows``)."""
    y_true, y_prob = read_predictions(run_dir)
    with np.load(run_dir / PREDICTIONS_FILE) as saved:
        rows = saved.get("rows")
    x_test, y_test = (raw.x_test, raw.y_test) if rows is None else (
        np.asarray(raw.x_test[rows]), raw.y_test[rows])
    if y_test.shape != y_true.shape or np.any(y_test != y_true):
        raise ExportError(
            f"the test split of {record['dataset'].get('source')} is not the one "
            f"{run_dir / PREDICTIONS_FILE} was made on (labels differ); has the data changed?"
        )
    return x_test, y_prob


def _source(record: dict[str, Any]) -> Any:
    """``(raw arrays, Scaling)`` of the run's source, as ``pipelines.load`` saw them (a
    streamed ``npz:``/``idx:`` run: its test arrays and its streamed scaling)."""
    config = trained_data(record)
    if config.stream:
        from pipelines.array_stream import raw_test_and_scaling

        return raw_test_and_scaling(**load_arguments(config))
    return raw_source_and_scaling(**load_arguments(config))


def _write(run_dir: Path, scaling: Any, format: str, path: Path, raw_x: np.ndarray) -> None:
    import keras

    import kerasdnn.network.models  # noqa: F401  registers kerasdnn>DNN for loading

    model = keras.saving.load_model(run_dir / MODEL_FILE, compile=False)
    serving = _serving_model(model, raw_x.shape[1:], raw_x.dtype, scaling,
                             binary=bool(model.model_config.binary))
    serving(raw_x[:1])  # Keras exports only a model that has been called
    serving.export(str(path), format=format, verbose=False)
    if format == "onnx":
        _name_onnx_output(path)


def _name_onnx_output(path: Path) -> None:
    """Rename the ONNX output to Keras's ``output_0`` (tf2onnx names it after the TF
    tensor, ``Identity:0``), so that both formats have the same names."""
    import onnx

    model = onnx.load(str(path))
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [OUTPUT_NAME if name == old else name for name in node.output]
    model.graph.output[0].name = OUTPUT_NAME
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _serving_model(model: Any, example_shape: tuple[int, ...], dtype: np.dtype,
                   scaling: Any, *, binary: bool) -> Any:
    """raw examples → cast, ``(x - offset) * multiplier``, flatten → model → probabilities."""
    import keras

    scale_layer, probabilities_layer = _layers()
    inputs = keras.Input(shape=example_shape, dtype=str(dtype), name=INPUT_NAME)
    x = scale_layer(scaling.offset, scaling.multiplier, name="scale")(inputs)
    if len(example_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    probabilities = probabilities_layer(binary, name="probabilities")(model(x))
    return keras.Model(inputs, probabilities, name="serving")


@functools.cache
def _layers() -> tuple[type, type]:
    """The serving model's two layers (defined on first use: ``--help`` imports no Keras)."""
    import keras

    class Scale(keras.layers.Layer):
        """``(float32(x) - offset) * multiplier``: the float32 arithmetic of
        ``pipelines.make_dataset``."""

        def __init__(self, offset: np.ndarray, multiplier: np.ndarray, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.offset = np.asarray(offset, np.float32)
            self.multiplier = np.asarray(multiplier, np.float32)

        def call(self, x: Any) -> Any:
            return (keras.ops.cast(x, "float32") - self.offset) * self.multiplier

    class Probabilities(keras.layers.Layer):
        """Softmax of the logits; for a one-unit binary head ``[1 - sigmoid, sigmoid]``
        (the columns of ``predictions.npz``)."""

        def __init__(self, binary: bool, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.binary = binary

        def call(self, logits: Any) -> Any:
            if self.binary:
                positive = keras.ops.sigmoid(logits)
                return keras.ops.concatenate([1.0 - positive, positive], axis=-1)
            return keras.ops.softmax(logits, axis=-1)

    return Scale, Probabilities
