"""The checkpoint of an unfinished run: one folder per state, replaced atomically.

``<run>/backup/epoch-NNNN/`` holds everything a resumed run needs after NNNN
completed epochs, written together: ``model.weights.h5`` (weights and optimizer
slots: what ``model.save_weights`` saves), ``seed_states.npz`` (the states of the
model's random seed generators, e.g. Dropout's, which ``save_weights`` leaves out),
``history.csv`` (one row per completed epoch), with ``--early-stopping`` its state
and ``early_stopping_best.npz`` (the best weights so far), with ``--lr-schedule
plateau`` the state of its ``ReduceLROnPlateau`` (its rate is an optimizer variable), and
``training_metadata.json`` (the epoch count, that state and the SHA-256 of the
other files, written last).  Each checkpoint is built in a
scratch folder and renamed into place; the previous one is deleted only after
that, so a kill at any instant leaves a complete checkpoint (or none yet).  When
training ends, ``backup/finished/`` holds the final state (after EarlyStopping's
restore), from which ``--resume`` writes whatever of the model and report is missing.

Keras's ``BackupAndRestore`` overwrites its weights and its metadata in place, one
after the other, and ``CSVLogger`` writes the history apart: a kill between or
inside those writes resumes wrong or not at all, hence this hand-written callback.

Example:
    >>> import tempfile, pathlib
    >>> from kerasdnn.core.rundir import BACKUP_DIR
    >>> latest_checkpoint(pathlib.Path(tempfile.mkdtemp()) / BACKUP_DIR) is None
    True
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerasdnn.core.errors import RunDirectoryError
from kerasdnn.core.io import atomic_write_text, fsync_path, read_json
from kerasdnn.core.rundir import HISTORY_FILE
from kerasdnn.training.faults import fault_point

__all__ = [
    "Checkpoint",
    "RunCheckpoint",
    "latest_checkpoint",
    "read_history_csv",
    "remove_checkpoints",
    "restore_checkpoint",
]

WEIGHTS_FILE = "model.weights.h5"
SEEDS_FILE = "seed_states.npz"
BEST_WEIGHTS_FILE = "early_stopping_best.npz"
METADATA_FILE = "training_metadata.json"
FINISHED = "finished"
_REQUIRED = (WEIGHTS_FILE, SEEDS_FILE, HISTORY_FILE)  # with their digests in the metadata
_EARLY_STOPPING_STATE = ("wait", "best", "best_epoch", "stopped_epoch")
_PLATEAU_STATE = ("wait", "cooldown_counter", "best")  # ReduceLROnPlateau's
_EPOCH = re.compile(r"epoch-(\d+)")
_REMOVING = ".removing-"  # prefix of a backup folder moved aside to be deleted


@dataclasses.dataclass
class Checkpoint:
    """A verified checkpoint: its folder, the completed epochs, their history rows and
    the state of EarlyStopping (``None`` without it)."""

    path: Path
    epochs_done: int
    finished: bool
    rows: list[dict[str, float]]
    early_stopping: dict[str, Any] | None = None
    plateau: dict[str, Any] | None = None

    @property
    def stopped(self) -> bool:
        """Training is over: finished, or EarlyStopping stopped it."""
        return self.finished or bool((self.early_stopping or {}).get("stopped_epoch"))


def latest_checkpoint(backup_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint in ``backup_dir``, verified; ``None`` if there is none.

    Scratch folders of checkpoints a kill left half-written are ignored.  A
    checkpoint damaged from outside raises :class:`~kerasdnn.core.errors.RunDirectoryError`.
    """
    if not backup_dir.is_dir():
        return None
    names = {entry.name for entry in backup_dir.iterdir() if not entry.name.startswith(".")}
    if FINISHED in names:
        return _verified(backup_dir / FINISHED, backup_dir, finished=True)
    epochs = [int(match[1]) for name in names if (match := _EPOCH.fullmatch(name))]
    if not epochs:
        if names:
            raise _damaged(backup_dir, backup_dir, "it holds no checkpoint of this kerasdnn")
        return None
    return _verified(backup_dir / f"epoch-{max(epochs):04d}", backup_dir, finished=False)


def restore_checkpoint(model: Any, backup_dir: Path) -> Checkpoint | None:
    """Load the newest checkpoint of ``backup_dir`` into ``model`` (weights, optimizer
    slots, seed states) and return it; ``None`` (model untouched) when there is none.
    The scratch folders of checkpoints a kill left half-written are removed."""
    checkpoint = latest_checkpoint(backup_dir)
    for leftover in backup_dir.glob(".*.tmp"):  # a checkpoint killed while being written
        shutil.rmtree(leftover, ignore_errors=True)
    if checkpoint is None:
        return None
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its slots must exist to load them
    for name in (WEIGHTS_FILE, SEEDS_FILE):
        path = checkpoint.path / name
        try:
            if name == WEIGHTS_FILE:
                model.load_weights(path)
            else:
                _load_seed_states(model, path)
        except (OSError, ValueError, KeyError) as error:
            raise _damaged(path, backup_dir, f"cannot load it: {error}") from None
    return checkpoint


def remove_checkpoints(backup_dir: Path) -> None:
    """Delete ``backup_dir`` (and what earlier removals a kill interrupted left):
    first renamed aside, so no kill leaves a half-deleted checkpoint behind."""
    parent = backup_dir.parent
    if backup_dir.exists():
        aside = Path(tempfile.mkdtemp(prefix=_REMOVING, dir=parent))
        os.replace(backup_dir, aside / backup_dir.name)
        fault_point("finish_cleanup")
    for leftover in parent.glob(f"{_REMOVING}*"):
        shutil.rmtree(leftover, ignore_errors=True)


class RunCheckpoint(keras.callbacks.Callback):
    """Writes the run's checkpoint after every epoch and at the end of training, and
    the run's ``history.csv`` after each.

    Args:
        backup_dir: the checkpoint folder (``<run>/backup``).
        history_path: the run's ``history.csv``, rewritten atomically after each checkpoint.
        restored: the checkpoint a resumed run started from (its rows and
            EarlyStopping state are carried on).
        early_stopping: the run's EarlyStopping callback, placed before this one in
            ``fit``'s callbacks; its state is checkpointed and restored with the rest.
        plateau: the run's ``ReduceLROnPlateau`` (``--lr-schedule plateau``), placed
            before this one; its state is checkpointed and restored likewise.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from kerasdnn.core.rundir import BACKUP_DIR
        >>> run = Path(tempfile.mkdtemp())
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> callback = RunCheckpoint(run / BACKUP_DIR, run / HISTORY_FILE)
        >>> _ = model.fit(np.ones((4, 2)), np.ones(4), epochs=2, verbose=0, callbacks=[callback])
        >>> latest_checkpoint(run / BACKUP_DIR).epochs_done, sorted(callback.history())
        (2, ['loss'])
    """

    def __init__(self, backup_dir: Path, history_path: Path, restored: Checkpoint | None = None,
                 early_stopping: keras.callbacks.EarlyStopping | None = None,
                 plateau: keras.callbacks.ReduceLROnPlateau | None = None) -> None:
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.history_path = Path(history_path)
        self.restored = restored
        self.rows: list[dict[str, float]] = list(restored.rows) if restored else []
        self.early_stopping = early_stopping
        self.plateau = plateau

    def on_train_begin(self, logs: dict | None = None) -> None:
        # EarlyStopping and ReduceLROnPlateau (earlier in the list) have just reset
        # themselves: give them their state back.
        plateau_state = self.restored.plateau if self.restored else None
        if self.plateau is not None and plateau_state is not None:
            for key in _PLATEAU_STATE:
                setattr(self.plateau, key, plateau_state[key])
        state = self.restored.early_stopping if self.restored else None
        if self.early_stopping is None or state is None:
            return
        for key in _EARLY_STOPPING_STATE:
            setattr(self.early_stopping, key, state[key])
        best = self.restored.path / BEST_WEIGHTS_FILE
        if best.exists():
            with np.load(best) as saved:
                self.early_stopping.best_weights = [saved[f"arr_{i}"]
                                                    for i in range(len(saved.files))]

    def finish_training(self) -> None:
        """End a resumed run whose training was over when it was killed: what
        ``fit`` would still have done (EarlyStopping's restore), then the final checkpoint."""
        if self.restored is not None and self.restored.finished:  # in place: keep it
            atomic_write_text(self.history_path, _to_csv(self.rows))
            return
        self.on_train_begin()
        if self.early_stopping is not None:
            self.early_stopping.set_model(self.model)
            self.early_stopping.on_train_end()
        self.save(finished=True)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        fault_point("batch")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        fault_point("epoch_end")
        row = {"epoch": float(epoch)}
        row.update({key: _scalar(value) for key, value in (logs or {}).items()})
        self.rows.append(row)
        self.save(finished=False)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.save(finished=True)

    def save(self, *, finished: bool) -> None:
        """Write the model's state and the rows as the newest checkpoint, atomically."""
        epochs_done = len(self.rows)
        name = FINISHED if finished else f"epoch-{epochs_done:04d}"
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=self.backup_dir))
        self.model.save_weights(scratch / WEIGHTS_FILE)
        fault_point("checkpoint_weights")
        with open(scratch / SEEDS_FILE, "wb") as handle:
            np.savez(handle, *(keras.ops.convert_to_numpy(v) for v in _seed_states(self.model)))
        history = _to_csv(self.rows)
        (scratch / HISTORY_FILE).write_text(history, encoding="utf-8")
        metadata: dict[str, Any] = {"epochs_done": epochs_done, "finished": finished}
        if self.early_stopping is not None:
            stopping = self.early_stopping
            metadata["early_stopping"] = {
                key: None if getattr(stopping, key) is None else _scalar(getattr(stopping, key))
                for key in _EARLY_STOPPING_STATE
            }
            if stopping.best_weights is not None:
                with open(scratch / BEST_WEIGHTS_FILE, "wb") as handle:
                    np.savez(handle, *stopping.best_weights)
        if self.plateau is not None:
            metadata["plateau"] = {key: _scalar(getattr(self.plateau, key))
                                   for key in _PLATEAU_STATE}
        metadata["sha256"] = {path.name: _sha256(path) for path in scratch.iterdir()}
        (scratch / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        for path in [*scratch.iterdir(), scratch]:  # the files, then the folder's entries
            fsync_path(path)
        fault_point("checkpoint_rename")
        target = self.backup_dir / name
        if target.exists():  # never the one restored: that is older, or finished (kept)
            shutil.rmtree(target)
        os.replace(scratch, target)
        fsync_path(self.backup_dir)
        fault_point("checkpoint_renamed")
        for older in self.backup_dir.iterdir():
            if older.name != name and (older.name == FINISHED or _EPOCH.fullmatch(older.name)):
                shutil.rmtree(older)
        atomic_write_text(self.history_path, history)

    def history(self) -> dict[str, list[float]]:
        """All completed epochs as ``{metric: [value per epoch]}`` (like ``History.history``)."""
        keys = [key for key in _columns(self.rows) if key != "epoch"]
        return {key: [row.get(key, float("nan")) for row in self.rows] for key in keys}


def _verified(folder: Path, backup_dir: Path, *, finished: bool) -> Checkpoint:
    metadata_path = folder / METADATA_FILE
    try:
        metadata = read_json(metadata_path)
        epochs_done = int(metadata["epochs_done"])
        digests = dict(metadata["sha256"])
        missing = [name for name in _REQUIRED if name not in digests]
        if missing:
            raise KeyError(f"no digest of {', '.join(missing)}")
        state = metadata.get("early_stopping")
        if state is not None:
            state = {key: state[key] for key in _EARLY_STOPPING_STATE}
            for key in ("wait", "best_epoch", "stopped_epoch"):
                state[key] = int(state[key] or 0)
        plateau = metadata.get("plateau")
        if plateau is not None:
            plateau = {key: plateau[key] for key in _PLATEAU_STATE}
            for key in ("wait", "cooldown_counter"):
                plateau[key] = int(plateau[key])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise _damaged(metadata_path, backup_dir, f"unreadable: {error}") from None
    match = _EPOCH.fullmatch(folder.name)
    if bool(metadata.get("finished")) != finished or (match and int(match[1]) != epochs_done):
        raise _damaged(metadata_path, backup_dir, f"it does not describe {folder.name}")
    for name, digest in digests.items():
        path = folder / name
        if not path.is_file() or _sha256(path) != digest:
            raise _damaged(path, backup_dir, f"it is not the file {METADATA_FILE} describes")
    rows = read_history_csv(folder / HISTORY_FILE)
    if [int(row["epoch"]) for row in rows] != list(range(epochs_done)):
        raise _damaged(folder / HISTORY_FILE, backup_dir,
                       f"its rows are not the {epochs_done} epoch(s) {METADATA_FILE} records")
    return Checkpoint(folder, epochs_done, finished, rows, state, plateau)


def _damaged(path: Path, backup_dir: Path, why: str) -> RunDirectoryError:
    return RunDirectoryError(
        f"the checkpoint {path} is damaged ({why}); delete {backup_dir} and rerun "
        "with --resume to train again from the first epoch, or start a new run with another --out"
    )


def _seed_states(model: Any) -> list[Any]:
    """The model's variables ``save_weights`` leaves out: its seed generators' states."""
    saved = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in saved]


def _load_seed_states(model: Any, path: Path) -> None:
    states = _seed_states(model)
    with np.load(path) as saved:
        if len(saved.files) != len(states):
            raise ValueError(f"{len(saved.files)} seed states for a model with {len(states)}")
        for index, variable in enumerate(states):
            variable.assign(saved[f"arr_{index}"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _scalar(value: object) -> float:
    return float(keras.ops.convert_to_numpy(value)) if not isinstance(value, float) else value


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
