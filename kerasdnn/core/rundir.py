"""The run directory: its layout (every file name, here only), where it goes, what
``config.json`` holds, and the checks made before anything is written into it.

A run directory holds ``config.json`` (everything needed to repeat the run),
``history.csv``, ``epoch_times.json``, ``model.keras``, ``predictions.npz`` and the
report files (:data:`FINISHED_FILES`).  ``config.json`` is written first; the model,
predictions and report only once training has finished.  ``backup/`` holds the
checkpoint while a run is unfinished (:mod:`kerasdnn.training.checkpoint`) and is removed
last (:func:`is_finished`).  ``python -m kerasdnn.evaluate`` writes into
``eval-<backend>-<timestamp>/``, ``python -m kerasdnn.export`` beside the model
(:data:`EXPORT_NAMES`); a comparison folder holds one run directory per backend.

Example:
    >>> from kerasdnn.core.config import ModelConfig, TrainConfig
    >>> record = run_record(ModelConfig(), TrainConfig(), backend="jax")
    >>> sorted(record)[:3]
    ['backend', 'created', 'dataset']
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import platform
import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerasdnn.core.config import DATA_FIELDS, ModelConfig, TrainConfig
from kerasdnn.core.errors import ConfigError, RunDirectoryError
from kerasdnn.core.io import atomic_write_bytes, atomic_write_json, read_json

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "BACKUP_DIR",
    "CALIBRATION_PNG",
    "COMPARE_JSON",
    "COMPARE_MD",
    "COMPARE_PNG",
    "COMPARE_SETTINGS_FILE",
    "CONFIG_FILE",
    "CONFUSION_PNG",
    "EPOCH_TIMES_FILE",
    "EXPORT_NAMES",
    "FINISHED_FILES",
    "HISTORY_FILE",
    "HISTORY_PNG",
    "MISCLASSIFIED_PNG",
    "MODEL_FILE",
    "PREDICTIONS_FILE",
    "PR_PNG",
    "REPORT_FILES",
    "REPORT_JSON",
    "REPORT_MD",
    "ROC_PNG",
    "TENSORBOARD_DIR",
    "backend_run_dir",
    "backend_stderr_file",
    "changed_settings",
    "check_new_run_dir",
    "check_resumable",
    "check_writable_dir",
    "dataset_record",
    "default_run_dir",
    "evaluation_dir",
    "is_finished",
    "path_safe_name",
    "read_predictions",
    "read_run_config",
    "run_record",
    "versions",
    "write_predictions",
    "write_run_config",
]

# The layout of a run directory: every file name a reader or writer uses, here only.
CONFIG_FILE = "config.json"  # written first: everything needed to repeat the run
HISTORY_FILE = "history.csv"  # one row per epoch (also inside each checkpoint)
EPOCH_TIMES_FILE = "epoch_times.json"  # seconds per epoch, written by callbacks.EpochTimer
BACKUP_DIR = "backup"  # the checkpoint while the run is unfinished (kerasdnn.training.checkpoint)
TENSORBOARD_DIR = "tensorboard"  # with --tensorboard
MODEL_FILE = "model.keras"  # written once training has finished
PREDICTIONS_FILE = "predictions.npz"  # y_true, y_prob of the test split
REPORT_JSON = "report.json"  # the report, written last of the report files
REPORT_MD = "report.md"
ROC_PNG = "roc.png"
CONFUSION_PNG = "confusion_matrix.png"
PR_PNG = "pr.png"
CALIBRATION_PNG = "calibration.png"
HISTORY_PNG = "history.png"  # when a history is given (a training run)
MISCLASSIFIED_PNG = "misclassified.png"  # image datasets only
PREPROCESSING_FILE = "preprocessing.json"  # a table run's fitted cleaning and schema
REPORT_FILES = (REPORT_JSON, REPORT_MD, ROC_PNG, CONFUSION_PNG, PR_PNG, CALIBRATION_PNG,
                MISCLASSIFIED_PNG, HISTORY_PNG)
# Serving artifacts (python -m kerasdnn.export), per format.
EXPORT_NAMES = {"tf_saved_model": "saved_model", "onnx": "model.onnx"}
# What a finished training run always holds (history.png and misclassified.png
# depend on the run); an unfinished one still has BACKUP_DIR.
FINISHED_FILES = (CONFIG_FILE, HISTORY_FILE, EPOCH_TIMES_FILE, MODEL_FILE, PREDICTIONS_FILE,
                  REPORT_JSON, REPORT_MD, ROC_PNG, CONFUSION_PNG, PR_PNG, CALIBRATION_PNG)
# A comparison folder (python -m kerasdnn.compare): one run directory per backend.
COMPARE_SETTINGS_FILE = "settings.json"
COMPARE_JSON = "compare.json"
COMPARE_MD = "compare.md"
COMPARE_PNG = "compare.png"
_VERSIONED = (
    "kerasdnn", "keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch",
    "numpy", "scikit-learn", "tensorflow-datasets", "keras-tuner",
)


def is_finished(run_dir: Path) -> bool:
    """Whether the training run in ``run_dir`` has written every file: its model is
    there and its checkpoint is gone (removed only once everything else is written).

    Example:
        >>> is_finished(Path("/nonexistent"))
        False
    """
    return (run_dir / MODEL_FILE).exists() and not (run_dir / BACKUP_DIR).exists()


def write_predictions(folder: Path, y_true: np.ndarray, y_prob: np.ndarray,
                      rows: np.ndarray | None = None) -> None:
    """``predictions.npz`` (``y_true``, ``y_prob``; compressed), atomically; ``rows``
    (when the predictions are a sample of the split's rows): their places in the split.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> folder = Path(tempfile.mkdtemp())
        >>> write_predictions(folder, np.array([1, 0]), np.array([[0.2, 0.8], [0.9, 0.1]]))
        >>> read_predictions(folder)[0].tolist()
        [1, 0]
    """
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, y_true=y_true, y_prob=y_prob,
                        **({} if rows is None else {"rows": rows}))
    atomic_write_bytes(folder / PREDICTIONS_FILE, buffer.getvalue())


def read_predictions(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_prob)`` of ``folder/predictions.npz``."""
    import numpy as np

    with np.load(folder / PREDICTIONS_FILE) as saved:
        return saved["y_true"], saved["y_prob"]


def evaluation_dir(run_dir: Path, backend: str) -> Path:
    """A new folder for a rebuilt report: ``<run_dir>/eval-<backend>-<timestamp>``
    (``-2``, ``-3``, ... when taken).

    Example:
        >>> evaluation_dir(Path("/nonexistent"), "torch").name.startswith("eval-torch-")
        True
    """
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = run_dir / f"eval-{backend}-{stamp}"
    number = 1
    while candidate.exists():
        number += 1
        candidate = run_dir / f"eval-{backend}-{stamp}-{number}"
    return candidate


def backend_run_dir(compare_dir: Path, backend: str) -> Path:
    """A comparison's run directory of ``backend``: ``<compare_dir>/<backend>``.

    Example:
        >>> backend_run_dir(Path("cmp"), "jax").as_posix()
        'cmp/jax'
    """
    return compare_dir / backend


def backend_stderr_file(compare_dir: Path, backend: str) -> Path:
    """Where a comparison keeps the error output of a backend that failed.

    Example:
        >>> backend_stderr_file(Path("cmp"), "jax").as_posix()
        'cmp/jax.stderr.txt'
    """
    return compare_dir / f"{backend}.stderr.txt"


def default_run_dir(dataset: str, backend: str, root: str | Path = "runs") -> Path:
    """``runs/<dataset>-<backend>-<timestamp>``, the dataset name made path-safe.

    Example:
        >>> default_run_dir("idx:/data/mnist", "jax").name.startswith("idx_data_mnist-jax-")
        True
    """
    safe = path_safe_name(dataset, default="data")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{safe}-{backend}-{stamp}"


def path_safe_name(text: str, default: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``_``,
    ``.`` and ``-`` made one ``_``, without leading or trailing ``_`` and ``.``
    (``default`` when nothing is left): a name safe as one path component.

    Example:
        >>> path_safe_name("idx:/data/mnist", "data"), path_safe_name("::", "data")
        ('idx_data_mnist', 'data')
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or default


def check_new_run_dir(out: Path) -> None:
    """Refuse an ``--out`` that is a file, a folder that already holds something,
    or a place where no folder can be written."""
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"--out {out} is a file; give a directory path for the run")
    if out.is_dir() and any(out.iterdir()):
        raise RunDirectoryError(
            f"{out} is not empty; pass --resume to continue the run in it, "
            "or choose another --out"
        )
    check_writable_dir(out, "--out")


def check_writable_dir(path: Path, flag: str) -> None:
    """Refuse a folder that cannot be written or created: the folder, else its
    nearest existing parent, must be a folder this process may write in.

    Checked before any data is loaded, so that a bad ``--out`` fails at once.
    ``os.access`` answers for this process: it says no on a read-only file
    system, and yes wherever the user (root included) may write.

    Example:
        >>> check_writable_dir(Path("/etc/hostname/run"), "--out")
        Traceback (most recent call last):
        kerasdnn.core.errors.RunDirectoryError: --out /etc/hostname/run: /etc/hostname is a file, \
not a folder; choose another --out
    """
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = f"{flag} {path} is a file" if existing == path else (
            f"{flag} {path}: {existing} is a file")
        raise RunDirectoryError(f"{where}, not a folder; choose another {flag}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirectoryError(
            f"{flag} {path}: {existing} is not writable (read-only or no permission); "
            f"make it writable or choose another {flag}"
        )


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """Read ``run_dir/config.json``; a clear error when ``run_dir`` is not a run.

    Example:
        >>> read_run_config(Path("/nonexistent"))  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        RunDirectoryError: /nonexistent is not a kerasdnn run directory ...
    """
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir() or not path.is_file():
        raise RunDirectoryError(
            f"{run_dir} is not a kerasdnn run directory (no {CONFIG_FILE}); "
            "give the --out folder of an earlier `python -m kerasdnn.train`"
        )
    try:
        record = read_json(path)
        ModelConfig.from_dict(record["model"])
        TrainConfig.from_dict(record["train"])
    except (ValueError, KeyError, TypeError, ConfigError) as error:
        raise RunDirectoryError(
            f"{path} is damaged ({error}); start a new run with another --out"
        ) from None
    return record


def run_record(
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    backend: str,
    dataset: dict[str, Any] | None = None,
    merge_validation: bool = False,
) -> dict[str, Any]:
    """The content of ``config.json``: configs, backend, versions and the data actually used."""
    return {
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "merge_validation": merge_validation,
        "backend": backend,
        "versions": versions(),
        "dataset": dataset or {},
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def write_run_config(run_dir: Path, record: dict[str, Any]) -> None:
    """Write ``config.json`` atomically (creating ``run_dir``)."""
    atomic_write_json(run_dir / CONFIG_FILE, record)


def changed_keys(saved: Mapping[str, Any], asked: Mapping[str, Any]) -> list[str]:
    """The one "same settings as before?" comparison (a resumed run, a continued
    search): the keys whose values differ, sorted; a key missing on one side
    counts as ``None``.

    Example:
        >>> changed_keys({"epochs": 10, "seed": 1}, {"epochs": 5, "seed": 1, "out": None})
        ['epochs']
    """
    return [key for key in sorted(set(saved) | set(asked)) if saved.get(key) != asked.get(key)]


def changed_settings(saved: Mapping[str, Any], asked: Mapping[str, Any]) -> list[str]:
    """:func:`changed_keys` with the values: ``["epochs: 10 → 5", ...]``.

    Example:
        >>> changed_settings({"epochs": 10, "seed": 1}, {"epochs": 5, "seed": 1})
        ['epochs: 10 → 5']
    """
    return [f"{key}: {saved.get(key)!r} → {asked.get(key)!r}"
            for key in changed_keys(saved, asked)]


def check_resumable(
    out_dir: Path,
    train_config: TrainConfig,
    model_config: ModelConfig,
    merge_validation: bool,
    *,
    data_known: bool,
) -> None:
    """Refuse to resume a finished run, an unfinished one with other settings, or a
    damaged checkpoint.  A run killed after training resumes to write what is missing:
    its checkpoint is removed only once every file of the run is written.
    ``data_known=False`` (before the data is loaded) leaves out the fields the data
    decides and checks the checkpoint too, so that a damaged one is said at once.

    Example:
        >>> check_resumable(Path("/nonexistent"), TrainConfig(), ModelConfig(), False,
        ...                 data_known=False)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        RunDirectoryError: /nonexistent is not a kerasdnn run directory ...
    """
    from kerasdnn.training.checkpoint import latest_checkpoint, remove_checkpoints  # imports Keras

    record = read_run_config(out_dir)
    check_writable_dir(out_dir, "--out")
    if is_finished(out_dir):
        remove_checkpoints(out_dir / BACKUP_DIR)  # what a kill while removing it left
        raise RunDirectoryError(
            f"the run in {out_dir} has already finished; nothing to resume "
            "(evaluate it with `python -m kerasdnn.evaluate`)"
        )
    # the data is loaded later; either input path gives the same numbers
    ignored = {"out", "input_path", *(() if data_known else DATA_FIELDS)}
    changes = changed_settings(_without(record["train"], ignored),
                               _without(train_config.to_dict(), ignored))
    changes += changed_settings(_without(record["model"], ignored),
                                _without(model_config.to_dict(), ignored))
    if record.get("merge_validation", False) != merge_validation:
        changes.append(f"merge_validation: {not merge_validation!r} → {merge_validation!r}")
    if not data_known:
        latest_checkpoint(out_dir / BACKUP_DIR)  # damaged: said now, before the data loads
    if changes:
        raise RunDirectoryError(
            f"cannot resume {out_dir} with other settings ({'; '.join(changes)}); "
            "resume with the saved settings or start a new run with another --out"
        )


def _without(values: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in keys}


def dataset_record(info: Any) -> dict[str, Any]:
    """The ``dataset`` entry of ``config.json``: what a ``pipelines.DatasetInfo`` says
    of the data actually used."""
    return {
        "name": info.name,
        "source": info.source,
        "input_shape": list(info.input_shape),
        "num_classes": info.num_classes,
        "class_names": list(info.class_names),
        "num_examples": dict(info.num_examples),
        "note": info.note,
        "scale": info.scale,
    }


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide the numbers."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
