"""Keras callbacks of a kerasdnn run (the rest are Keras's own: BackupAndRestore,
EarlyStopping, TensorBoard).

Example:
    >>> import tempfile, pathlib
    >>> writer = AtomicCSVLogger(pathlib.Path(tempfile.mkdtemp()) / "history.csv")
    >>> writer.rows
    []
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import keras

from kerasdnn.io import atomic_write_json, atomic_write_text

__all__ = ["AtomicCSVLogger", "EpochTimer", "read_history_csv"]


class AtomicCSVLogger(keras.callbacks.Callback):
    """Like ``keras.callbacks.CSVLogger``, but every epoch rewrites the whole file
    atomically, so a killed run never leaves a torn line; on resume it keeps
    the rows of the epochs already completed.

    Args:
        path: the CSV file (``epoch`` column first, then the logs, sorted).

    Example:
        >>> logger = AtomicCSVLogger("history.csv")  # doctest: +SKIP
        >>> model.fit(data, epochs=3, callbacks=[logger])  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        # BackupAndRestore (which runs first) has set the epoch training restarts from.
        initial_epoch = int(getattr(self.model, "_initial_epoch", 0) or 0)
        previous = read_history_csv(self.path) if self.path.exists() else []
        self.rows = [row for row in previous if int(row["epoch"]) < initial_epoch]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": float(epoch)}
        row.update({key: _scalar(value) for key, value in (logs or {}).items()})
        self.rows.append(row)
        atomic_write_text(self.path, _to_csv(self.rows))

    def history(self) -> dict[str, list[float]]:
        """All completed epochs as ``{metric: [value per epoch]}`` (like ``History.history``)."""
        keys = [key for key in _columns(self.rows) if key != "epoch"]
        return {key: [row.get(key, math.nan) for row in self.rows] for key in keys}


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of every epoch (validation included), rewritten atomically
    after each one as ``{"epoch_seconds": [...]}``; on resume it keeps the epochs
    already completed.  Kept out of ``history.csv``, whose numbers a resumed run repeats.

    Example:
        >>> timer = EpochTimer("epoch_times.json")  # doctest: +SKIP
        >>> model.fit(data, epochs=3, callbacks=[timer])  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        initial_epoch = int(getattr(self.model, "_initial_epoch", 0) or 0)
        previous = (json.loads(self.path.read_text(encoding="utf-8"))["epoch_seconds"]
                    if self.path.exists() else [])
        self.seconds = previous[:initial_epoch]

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        atomic_write_json(self.path, {"epoch_seconds": self.seconds})


def read_history_csv(path: str | Path) -> list[dict[str, float]]:
    """Rows of a history CSV as dicts of floats.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "h.csv"
        >>> _ = path.write_text("epoch,loss\\n0,0.5\\n")
        >>> read_history_csv(path)
        [{'epoch': 0.0, 'loss': 0.5}]
    """
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            {key: float(value) for key, value in row.items() if value not in ("", None)}
            for row in csv.DictReader(handle)
        ]


def _scalar(value: object) -> float:
    return float(keras.ops.convert_to_numpy(value)) if not isinstance(value, float) else value


def _columns(rows: list[dict[str, float]]) -> list[str]:
    keys = sorted({key for row in rows for key in row} - {"epoch"})
    return ["epoch", *keys]


def _to_csv(rows: list[dict[str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "epoch": int(row["epoch"])})
    return buffer.getvalue()

