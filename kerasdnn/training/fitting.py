"""The training loop: :func:`fit_stream`, Keras's ``fit`` on an endless epoch
stream, the one loop of a run, a tuning trial and the scikit-learn estimator; and
:func:`fit_run`, a run's use of it, with the run's checkpoint, epoch timer, early
stopping and TensorBoard, resumable exactly.

:func:`fit_run` is what :func:`kerasdnn.training.run.train` calls between building the
model and writing the report.  Keras, TensorFlow and what imports them (the
callbacks, :mod:`pipelines.feed`) are imported inside the functions that use them.

Example:
    >>> steps_per_execution_for(540, 10)
    10
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerasdnn.core.config import TrainConfig
from kerasdnn.core.rundir import (
    BACKUP_DIR,
    EPOCH_TIMES_FILE,
    HISTORY_FILE,
    TENSORBOARD_DIR,
    read_run_config,
    write_run_config,
)
from kerasdnn.training.distribute import (
    Processes,
    padded_dataset,
    padded_iterator,
    replication_callback,
)
from kerasdnn.training.input_path import resolve_input_path

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.stream import EpochStream

__all__ = ["early_stopping", "fit_run", "fit_stream", "steps_per_execution_for"]


def fit_run(
    model: Any,
    splits: Any,
    train_config: TrainConfig,
    out_dir: Path,
    *,
    merge_validation: bool = False,
    verbose: str | int = "auto",
    replicas: int = 1,
    processes: Processes | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` on ``splits`` (from :func:`kerasdnn.training.data.load_splits`) for the
    run in ``out_dir``, from its last checkpoint if there is one; return the history
    of every epoch (resumed ones included).

    The checkpoint (weights, optimizer slots, epoch and history together) decides
    where an interrupted run restarts; :func:`fit_stream` then leaves out the batches
    of the epochs already done (epoch k's order depends on the seed and k alone, and
    the stream starts right at it), so a resumed run sees exactly what an unbroken one does.
    """
    import keras

    from kerasdnn.training.callbacks import EpochTimer
    from kerasdnn.training.checkpoint import RunCheckpoint, restore_checkpoint
    from kerasdnn.training.class_weights import weighted_stream
    from kerasdnn.training.schedules import attach_schedule, schedule_callbacks

    stream, validation_data = _training_data(splits, train_config, merge_validation)
    # the schedule replaces the rate variable: before the optimizer's variables load
    attach_schedule(model, train_config.epochs, stream.batches_per_epoch)
    stream = weighted_stream(stream, splits, train_config, merge_validation)
    processes = processes or Processes()
    input_path = resolve_input_path(train_config.input_path, keras.backend.backend(), stream,
                                    data_parallel=train_config.data_parallel,
                                    jit=_jit(model))
    if processes.writes:
        record_input_path(out_dir, input_path)
    restored = restore_checkpoint(model, out_dir / BACKUP_DIR)
    epochs_done = restored.epochs_done if restored else 0
    # The timer writes before the checkpoint: a kill between the two leaves it an epoch
    # ahead, which resuming drops, never one behind.
    # In a multi-process run the others keep their copies of these files apart.
    own_dir = out_dir if processes.writes else _private_dir()
    stopping = early_stopping(train_config.early_stopping, validation_data is not None)
    scheduling = schedule_callbacks(model.model_config,
                                    "val_loss" if validation_data is not None else "loss")
    plateau = next((c for c in scheduling if isinstance(c, keras.callbacks.ReduceLROnPlateau)),
                   None)
    callbacks = [EpochTimer(own_dir / EPOCH_TIMES_FILE, epochs_done), stopping, *scheduling]
    saver = RunCheckpoint(own_dir / BACKUP_DIR, own_dir / HISTORY_FILE, restored, stopping,
                          plateau)
    if restored is not None and (restored.stopped or epochs_done >= train_config.epochs):
        saver.set_model(model)  # killed after training: only the finishing is missing
        _steps_per_epoch(model, stream)  # the model predicts next, as it would have after fit
        saver.finish_training()
        return saver.history()
    if train_config.tensorboard and processes.writes:  # the others' logs are process 0's
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / TENSORBOARD_DIR)))
    callbacks.append(saver)  # last: it sees EarlyStopping's state and restored weights
    fit_stream(
        model, stream,
        epochs=train_config.epochs,
        initial_epoch=epochs_done,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=verbose,
        data_parallel=(replicas, processes) if train_config.data_parallel else None,
        input_path=input_path,
    )
    return saver.history()


def fit_stream(
    model: Any,
    stream: EpochStream,
    *,
    epochs: int,
    initial_epoch: int = 0,
    validation_data: Any = None,
    callbacks: Sequence[Any | None] = (),
    verbose: str | int = "auto",
    data_parallel: tuple[int, Processes] | None = None,
    input_path: str = "auto",
    **fit_kwargs: Any,
) -> Any:
    """The one training loop of kerasdnn: Keras's ``fit`` of ``model`` on the endless
    ``stream`` from epoch ``initial_epoch`` to ``epochs``; returns Keras's ``History``.

    A run (:func:`fit_run`: checkpoint, resume, early stopping), a tuning trial
    (``tuning.hypermodel.DNNHyperModel.fit``: KerasTuner's callbacks, Hyperband's
    ``initial_epoch``) and the scikit-learn estimator (its own stream with sample
    weights) all train through here, so what changes how a model is fitted (a
    callback, an argument of ``fit``, how the stream is fed) is written once.

    * the stream: ``stream.batches_per_epoch`` steps per epoch, handed over by
      :func:`pipelines.feed.for_fit` from the start of epoch ``initial_epoch`` (its
      order depends on the seed and the epoch alone, so a resumed fit trains on
      what an unbroken one does);
    * ``model.steps_per_execution`` becomes the largest divisor of the steps per
      epoch up to its own (:func:`steps_per_execution_for`);
    * ``data_parallel=(replicas, processes)`` pads every training and validation
      batch to a multiple of the replicas (zero-weight rows) and keeps this
      process's share; where the engine does not replicate the model itself
      (PyTorch), every process starts from process 0's weights;
    * ``input_path`` (:mod:`kerasdnn.training.input_path`): ``"resident"`` keeps the
      training examples on the device and gathers each batch there
      (:mod:`pipelines.resident`), ``"stream"`` hands the ``tf.data`` stream over,
      ``"auto"`` picks resident where it can run and fits; the same batches either way;
    * ``callbacks`` in their order (``None`` entries left out), ``verbose`` and
      ``fit_kwargs`` go to ``fit``.

    Example:
        >>> import pipelines
        >>> from kerasdnn.network.models import build_model
        >>> splits = pipelines.load("digits", batch_size=256, repeat=True)
        >>> model = build_model(input_shape=(64,), hidden_units=(8,))
        >>> history = fit_stream(model, splits.stream, epochs=1, verbose=0)
        >>> steps = splits.stream.batches_per_epoch
        >>> len(history.history["loss"]), steps % model.steps_per_execution
        (1, 0)
    """
    import keras

    import pipelines.feed
    from pipelines.backends import backend_spec

    steps = _steps_per_epoch(model, stream)
    backend = keras.backend.backend()
    resident = resolve_input_path(input_path, backend, stream, jit=_jit(model),
                                  data_parallel=data_parallel is not None) == "resident"
    fed = pipelines.feed.for_fit(stream, skip=initial_epoch * steps, resident=resident)
    callbacks = list(callbacks)
    if data_parallel is not None:  # every batch divisible by the devices, exactly
        replicas, processes = data_parallel
        # A compiled step needs one batch structure; the eager PyTorch step takes its
        # native path on unweighted batches only, so only padded batches get weights.
        if not stream.sharded:  # else each process reads its own share, padded
            fed = (padded_dataset(fed, replicas, processes) if hasattr(fed, "element_spec")
                   else padded_iterator(fed, replicas, processes,
                                        full_weights=backend_spec(backend).jit is not None))
        if validation_data is not None:
            validation_data = padded_dataset(validation_data, replicas, processes)
        callbacks.insert(0, replication_callback(backend, model))
    return model.fit(
        fed,
        steps_per_epoch=steps,
        validation_data=validation_data,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=[callback for callback in callbacks if callback is not None],
        shuffle=False,  # the stream shuffles, reproducibly
        verbose=verbose,
        **fit_kwargs,
    )


def early_stopping(patience: int | None, validated: bool) -> Any:
    """Keras's ``EarlyStopping`` as a run (and the estimator) stops: after ``patience``
    epochs without a better validation loss (the training loss when nothing is
    ``validated``), keeping the best weights; ``None`` when ``patience`` is.

    Example:
        >>> early_stopping(3, validated=False).monitor, early_stopping(None, True)
        ('loss', None)
    """
    if patience is None:
        return None
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_loss" if validated else "loss",
                                         patience=patience, restore_best_weights=True)


def steps_per_execution_for(steps_per_epoch: int, wanted: int) -> int:
    """The largest number of steps per execution, at most ``wanted``, that divides
    ``steps_per_epoch``: Keras takes that many batches per call even at an epoch's
    end, so anything else would move batches of an endless stream between epochs.

    Example:
        >>> steps_per_execution_for(540, 10), steps_per_execution_for(13, 10)
        (10, 1)
    """
    return max(k for k in range(1, max(1, min(wanted, steps_per_epoch)) + 1)
               if steps_per_epoch % k == 0)


def record_input_path(out_dir: Path, input_path: str) -> None:
    """Note in the run's ``config.json`` the input path its training takes (a resumed
    run notes its own: either path gives the same numbers)."""
    record = read_run_config(out_dir)
    if record.get("input_path") != input_path:
        write_run_config(out_dir, {**record, "input_path": input_path})


def _jit(model: Any) -> bool:
    """Whether Keras compiles ``model``'s step (``jit_compile`` resolved by ``compile``)."""
    return bool(model.jit_compile) and not model.run_eagerly


def _steps_per_epoch(model: Any, stream: EpochStream) -> int:
    """``stream``'s batches per epoch; ``model.steps_per_execution`` set to divide them
    (Keras takes steps_per_execution batches per call, across epoch ends of a stream)."""
    steps = stream.batches_per_epoch
    model.steps_per_execution = steps_per_execution_for(steps, model.steps_per_execution)
    return steps


def _training_data(
    splits: Any, train_config: TrainConfig, merge_validation: bool
) -> tuple[EpochStream, Any]:
    """``(training stream, validation data or None)``: with ``merge_validation`` the
    training and validation examples together (``splits`` finite), else
    ``splits.stream`` (``splits`` from ``load_splits(repeat=True)``)."""
    if merge_validation:
        from pipelines.builder import train_and_validation

        return train_and_validation(splits, batch_size=train_config.batch_size,
                                    seed=train_config.seed), None
    return splits.stream, splits.validation


def _private_dir() -> Path:
    """A folder of this process's own, removed when it exits."""
    folder = Path(tempfile.mkdtemp(prefix="kerasdnn-process-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
