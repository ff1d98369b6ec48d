"""Keras callbacks of a kerasdnn run besides the checkpoint (:mod:`kerasdnn.training.checkpoint`)
and Keras's own (EarlyStopping, TensorBoard)."""

from __future__ import annotations

import time
from pathlib import Path

import keras

from kerasdnn.core.io import atomic_write_json, read_json

__all__ = ["EpochTimer"]


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of every epoch (validation included), rewritten atomically
    after each one as ``{"epoch_seconds": [...]}``; on resume it keeps the
    ``epochs_done`` epochs already completed.  Kept out of ``history.csv``, whose
    numbers a resumed run repeats.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> timer = EpochTimer(Path(tempfile.mkdtemp()) / "epoch_times.json")
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> _ = model.fit(np.ones((4, 2)), np.ones(4), epochs=2, verbose=0, callbacks=[timer])
        >>> len(read_json(timer.path)["epoch_seconds"])
        2
    """

    def __init__(self, path: str | Path, epochs_done: int = 0) -> None:
        super().__init__()
        self.path = Path(path)
        self.epochs_done = epochs_done
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        previous = (read_json(self.path)["epoch_seconds"]
                    if self.path.exists() else [])
        self.seconds = previous[: self.epochs_done]

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        atomic_write_json(self.path, {"epoch_seconds": self.seconds})
