"""The run directory: where it goes, what ``config.json`` holds, and the checks
made before anything is written into it.

A run directory holds ``config.json`` (everything needed to repeat the run),
``history.csv``, ``model.keras``, ``predictions.npz`` and the report files.
``config.json`` is written first; the rest only once training has finished.
``backup/`` holds the checkpoint while a run is unfinished (:mod:`kerasdnn.checkpoint`).

Example:
    >>> from kerasdnn.config import ModelConfig, TrainConfig
    >>> record = run_record(ModelConfig(), TrainConfig(), backend="jax")
    >>> sorted(record)[:3]
    ['backend', 'created', 'dataset']
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

from kerasdnn.config import ModelConfig, TrainConfig
from kerasdnn.errors import ConfigError, RunDirectoryError
from kerasdnn.io import atomic_write_json

__all__ = [
    "BACKUP_DIR",
    "CONFIG_FILE",
    "EPOCH_TIMES_FILE",
    "check_new_run_dir",
    "check_writable_dir",
    "default_run_dir",
    "describe_differences",
    "read_run_config",
    "run_record",
    "versions",
    "write_run_config",
]

CONFIG_FILE = "config.json"
BACKUP_DIR = "backup"
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
EPOCH_TIMES_FILE = "epoch_times.json"  # seconds per epoch, written by callbacks.EpochTimer
_VERSIONED = (
    "kerasdnn", "keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch",
    "numpy", "scikit-learn", "tensorflow-datasets", "keras-tuner",
)


def default_run_dir(dataset: str, backend: str, root: str | Path = "runs") -> Path:
    """``runs/<dataset>-<backend>-<timestamp>``, the dataset name made path-safe.

    Example:
        >>> default_run_dir("idx:/data/mnist", "jax").name.startswith("idx_data_mnist-jax-")
        True
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset).strip("_.") or "data"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{safe}-{backend}-{stamp}"


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
        kerasdnn.errors.RunDirectoryError: --out /etc/hostname/run: /etc/hostname is a file, \
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
        record = json.loads(path.read_text(encoding="utf-8"))
        ModelConfig.from_dict(record["model"])
        TrainConfig.from_dict(record["train"])
    except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as error:
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


def describe_differences(saved: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """``["epochs: 10 → 5", ...]`` for the keys whose values differ.

    Example:
        >>> describe_differences({"epochs": 10, "seed": 1}, {"epochs": 5, "seed": 1})
        ['epochs: 10 → 5']
    """
    return [
        f"{key}: {saved.get(key)!r} → {asked.get(key)!r}"
        for key in sorted(set(saved) | set(asked))
        if saved.get(key) != asked.get(key)
    ]


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide the numbers."""
    from importlib import metadata  # not at import time: keeps --help fast

    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
