"""Rebuild the report of a saved model, on any backend: :func:`evaluate`, what
``python -m kerasdnn.evaluate`` and ``kerasdnn.evaluate(...)`` run.

A model trained on JAX evaluates on TensorFlow or PyTorch: the ``.keras`` file
is backend-independent.  The report files go to a new folder
(``<run_dir>/eval-<backend>-<timestamp>`` by default), never over the training
report.

Predictions go through :mod:`kerasdnn.evaluation.predict`, the data through
:func:`kerasdnn.training.data.load_splits` with the run's settings (``TrainConfig``'s
defaults for a ``.keras`` file without a ``config.json``).
"""

from __future__ import annotations

import datetime as _dt
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from kerasdnn.core.errors import ConfigError, RunDirectoryError
from kerasdnn.core.rundir import (
    CONFIG_FILE,
    MODEL_FILE,
    check_writable_dir,
    evaluation_dir,
    read_run_config,
    write_predictions,
)
from kerasdnn.core.runtime import check_backend, quiet_tensorflow
from kerasdnn.evaluation.predict import (
    SampledRows,
    collect_sample,
    is_binary,
    load_test_images,
    report_rows,
    sampled_from,
    trained_data,
    validation_predictions,
)
from kerasdnn.training.data import load_splits

__all__ = ["evaluate"]


def evaluate(
    source: str | Path,
    *,
    dataset: str | None = None,
    out: str | Path | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Evaluate a saved model on a test split and write its report.

    Args:
        source: a run directory written by ``python -m kerasdnn.train`` (holding
            ``model.keras`` and ``config.json``), or a ``.keras`` file (its
            folder's ``config.json`` is used when there is one).
        dataset: dataset name (default: the one the run was trained on, with the
            same seed and validation split, so the test split is the same).
        out: folder for the report (default:
            ``<run_dir>/eval-<backend>-<timestamp>``).  Never the run directory.
        batch_size: prediction batch size (default: the run's, else 100).

    Returns:
        The report dict (see :func:`kerasdnn.evaluation.reports.classification_report`)
        with ``metadata``: model, run_dir, backend, trained_on, dataset, out_dir.
        ``out`` receives ``report.json``, ``report.md``, ``roc.png``,
        ``confusion_matrix.png``, ``pr.png``, ``calibration.png``,
        ``misclassified.png`` (image datasets) and ``predictions.npz``
        (``y_true``, ``y_prob``).  A binary task's threshold is chosen on the
        validation split (same seed and split as the run).

    Raises:
        RunDirectoryError: a missing path, a folder that is not a finished
            run, an unloadable model, a model that does not fit the data.
        ConfigError: an unknown ``KERAS_BACKEND`` or bad arguments.
        pipelines.errors.PipelineError: an unknown or unavailable dataset.

    E.g. ``evaluate("runs/digits", out="runs/digits-on-torch")`` on
    ``KERAS_BACKEND=torch`` rebuilds a JAX run's report on PyTorch (not a
    doctest: its five plots take seconds).
    """
    backend = check_backend()
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    model_path, run_dir, record = _resolve_source(Path(source))
    if dataset is None and record is None:
        raise ConfigError(
            f"no {CONFIG_FILE} beside {model_path}: pass --dataset NAME to say what to test on"
        )
    data = trained_data(record)
    dataset_name = dataset or data.dataset
    out_dir = _output_dir(out, run_dir, backend)

    quiet_tensorflow()
    # Before Keras starts its backend: a bad name fails fast.
    splits = load_splits(data, name=dataset_name, batch_size=batch_size or data.batch_size)
    info = splits.info
    model = _load_model(model_path)
    _check_fits(model, model_path, info)
    limit = report_rows(data.stream)
    y_true, y_prob, rows = collect_sample(model, splits.test, max_rows=limit, seed=data.seed)
    validation = validation_predictions(model, splits, max_rows=limit)
    images = load_test_images(dataset_name, data_dir=data.data_dir, manual_dir=data.manual_dir,
                              stream=data.stream)

    metadata = {
        "model": str(model_path),
        "run_dir": str(run_dir),
        "backend": backend,
        "trained_on": (record or {}).get("backend"),
        "dataset": {
            "name": dataset_name,
            "source": info.source,
            "split": "test",
            "num_examples": len(y_true),
            "note": getattr(info, "note", None),
        },
        "out_dir": str(out_dir),
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    return _write_outputs(out_dir, (y_true, y_prob, rows), info, metadata, validation,
                          images)


def _resolve_source(source: Path) -> tuple[Path, Path, dict[str, Any] | None]:
    """``(model file, run directory, config.json record or None)``."""
    if not source.exists():
        raise RunDirectoryError(
            f"{source}: no such file or directory; give a run directory or a .keras file"
        )
    if source.is_dir():
        model_path, run_dir = source / MODEL_FILE, source
        if not model_path.is_file():
            if (source / CONFIG_FILE).is_file():
                raise RunDirectoryError(
                    f"the run in {source} has not finished (no {MODEL_FILE}); "
                    f"finish it with `python -m kerasdnn.train --out {source} --resume`"
                )
            raise RunDirectoryError(
                f"{source} is not a kerasdnn run directory (no {MODEL_FILE}); give the --out "
                "folder of `python -m kerasdnn.train` or a .keras file"
            )
    else:
        if source.suffix != ".keras":
            raise RunDirectoryError(
                f"{source} is not a .keras model file; give a run directory or a .keras file"
            )
        model_path, run_dir = source, source.parent
    if not zipfile.is_zipfile(model_path):  # checked before any heavy import
        raise RunDirectoryError(
            f"cannot load {model_path}: not a .keras archive (damaged or truncated); "
            "retrain it or give another model"
        )
    record = read_run_config(run_dir) if (run_dir / CONFIG_FILE).is_file() else None
    return model_path, run_dir, record


def _output_dir(out: str | Path | None, run_dir: Path, backend: str) -> Path:
    if out is None:
        candidate = evaluation_dir(run_dir, backend)
        check_writable_dir(candidate, "--out")
        return candidate
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirectoryError(f"--out {out_dir} is a file; give a directory for the report")
    if (out_dir / MODEL_FILE).exists() or (out_dir / CONFIG_FILE).exists():
        raise RunDirectoryError(
            f"--out {out_dir} is a run directory: its training report would be overwritten; "
            "choose another --out"
        )
    check_writable_dir(out_dir, "--out")
    return out_dir


def _load_model(model_path: Path) -> Any:
    import keras

    import kerasdnn.network.models  # noqa: F401  (registers kerasdnn>DNN for deserialization)

    try:
        return keras.saving.load_model(model_path, compile=False)
    except Exception as error:  # any failure to read the file is the user's to fix
        detail = " ".join(str(error).split())[:200] or type(error).__name__
        raise RunDirectoryError(
            f"cannot load {model_path} ({detail}); the file is damaged or not a Keras model: "
            "retrain it or give another model"
        ) from None


def _check_fits(model: Any, model_path: Path, info: Any) -> None:
    expected_inputs = tuple(model.input_shape)[1:]
    if tuple(info.input_shape) != expected_inputs:
        raise RunDirectoryError(
            f"{model_path} takes inputs of shape {expected_inputs} but dataset {info.source} "
            f"gives {tuple(info.input_shape)}; pass the --dataset it was trained on"
        )
    units = tuple(model.output_shape)[-1]
    classes = 2 if is_binary(model) else units
    if classes != info.num_classes:
        raise RunDirectoryError(
            f"{model_path} predicts {classes} classes but dataset {info.source} has "
            f"{info.num_classes}; pass the --dataset it was trained on"
        )


def _write_outputs(
    out_dir: Path,
    scored: tuple[np.ndarray, np.ndarray, np.ndarray],
    info: Any,
    metadata: dict[str, Any],
    validation: tuple[np.ndarray, np.ndarray] | None,
    images: Any,
) -> dict[str, Any]:
    """Report files and predictions.npz of ``scored`` (``collect_sample``'s); a new
    folder is removed again on failure."""
    from kerasdnn.evaluation.reports import write_report

    y_true, y_prob, rows = scored
    scored_from = sampled_from(info, y_true)
    if images is not None and scored_from is not None:
        images = SampledRows(images, rows)
    created = not out_dir.exists()
    try:
        report = write_report(
            out_dir,
            y_true,
            y_prob,
            class_names=list(info.class_names),
            title=f"{info.source} test split · {Path(metadata['model']).name} "
            f"on {metadata['backend']}",
            metadata=metadata,
            scored_from=scored_from,
            validation=validation,
            images=images,
        )
        write_predictions(out_dir, y_true, y_prob, rows=None if scored_from is None else rows)
    except BaseException:
        if created and out_dir.exists():
            shutil.rmtree(out_dir)
        raise
    return report
