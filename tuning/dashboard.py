"""``--tensorboard`` on a search: each trial's curves and TensorBoard's HParams view, on
every backend.

KerasTuner writes the HParams view on the TensorFlow backend only (its
``_configure_tensorboard_dir`` returns early otherwise).  Here TensorBoard's own
pure-Python pieces do it whatever the backend: ``EventFileWriter`` writes the event
files, ``tensorboard.plugins.hparams.summary_v2`` makes the HParams records
(``hparams_config_pb`` once per search, ``hparams_pb`` once per trial), and the curves
are scalar summaries written at each epoch's end by :class:`TrialBoard`, a Keras
callback: nothing runs inside the training step, and TensorFlow is not needed.

Layout: ``<project>/tensorboard/`` holds the experiment (the hyperparameters and the
metrics the view shows), ``<project>/tensorboard/trial_<id>/`` one run per trial
(``tensorboard --logdir <project>/tensorboard``).

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_experiment(folder, ["units_0", "learning_rate"], "val_accuracy")
    >>> board = TrialBoard(folder, "0", {"units_0": 16, "learning_rate": 0.01})
    >>> board.on_epoch_end(0, {"loss": 1.5, "val_accuracy": 0.5})
    >>> board.on_train_end()
    >>> [row["units_0"] for row in read_trial_rows(folder)]
    [16.0]
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

__all__ = ["TrialBoard", "read_trial_rows", "write_experiment"]

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "val_auc")


def write_experiment(folder: str | Path, hyperparameters: Sequence[str], objective: str) -> None:
    """The HParams experiment of a search in ``folder``: its hyperparameters, and the
    metrics each trial's run reports (the objective first)."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    metrics = [objective, *(name for name in METRICS if name != objective)]
    summary = hp.hparams_config_pb(
        hparams=[hp.HParam(name) for name in hyperparameters],
        metrics=[hp.Metric(name, display_name=name) for name in metrics],
    )
    _write(folder, [summary])


class TrialBoard(keras.callbacks.Callback):
    """One trial's TensorBoard run: its hyperparameters (HParams' session start) when
    created, then every numeric log at each epoch's end, as scalars (step = epoch)."""

    def __init__(self, folder: str | Path, trial_id: str, values: Mapping[str, Any]) -> None:
        super().__init__()
        from tensorboard.plugins.hparams import summary_v2 as hp
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.writer = EventFileWriter(str(Path(folder) / f"trial_{trial_id}"))
        shown = {name: value for name, value in values.items() if not name.startswith("tuner/")}
        self._add(hp.hparams_pb(shown, trial_id=trial_id, start_time_secs=time.time()), 0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = []
        for name, value in (logs or {}).items():
            try:
                values.append(Summary.Value(tag=name, simple_value=float(value)))
            except (TypeError, ValueError):
                continue
        self._add(Summary(value=values), epoch)
        self.writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.writer.close()

    def _add(self, summary: Any, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self.writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))


def read_trial_rows(folder: str | Path) -> list[dict[str, Any]]:
    """The HParams view's rows, read back with TensorBoard's own event reader: one per
    trial run, its hyperparameters and its last value of each scalar."""
    from tensorboard.backend.event_processing import plugin_event_accumulator as event_accumulator
    from tensorboard.plugins.hparams import metadata

    rows = []
    for run in sorted(Path(folder).glob("trial_*")):
        accumulator = event_accumulator.EventAccumulator(
            str(run), size_guidance={event_accumulator.TENSORS: 0})
        accumulator.Reload()
        content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG])
        row: dict[str, Any] = {"run": run.name, "trial_id": start.group_name}
        for name, value in start.hparams.items():
            kind = value.WhichOneof("kind")
            row[name] = getattr(value, kind) if kind else None
        for tag in _scalar_tags(accumulator):
            events = accumulator.Tensors(tag)
            row[tag] = [float(_tensor_value(event)) for event in events]
        rows.append(row)
    return rows


def _scalar_tags(accumulator: Any) -> Iterable[str]:
    return [tag for tag in accumulator.Tags()["tensors"] if not tag.startswith("_hparams_")]


def _tensor_value(event: Any) -> float:
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(event.tensor_proto).item()


def _write(folder: str | Path, summaries: Iterable[Any]) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder))
    for summary in summaries:
        writer.add_event(Event(wall_time=time.time(), summary=summary))
    writer.close()
