"""The training loop of a run: Keras's ``fit`` on the run's data stream, with the
run's checkpoint, epoch timer, early stopping and TensorBoard, resumable exactly.

:func:`fit_run` is what :func:`kerasdnn.run.train` calls between building the
model and writing the report.  Keras, TensorFlow and what imports them (the
callbacks, :mod:`pipelines.feed`) are imported inside the functions that use them.

Example:
    >>> steps_per_execution_for(540, 10)
    10
"""

from __future__ import annotations

import atexit
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kerasdnn.config import TrainConfig
from kerasdnn.distribute import Processes, padded_dataset, padded_iterator
from kerasdnn.rundir import BACKUP_DIR, EPOCH_TIMES_FILE, HISTORY_FILE

__all__ = ["fit_run", "steps_per_execution_for"]


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
    """Train ``model`` on ``splits`` (from :func:`kerasdnn.data.load_splits`) for the
    run in ``out_dir``, from its last checkpoint if there is one; return the history
    of every epoch (resumed ones included).

    The checkpoint (weights, optimizer slots, epoch and history together) decides
    where an interrupted run restarts; the feed then leaves out the batches of the
    epochs already done (epoch k's order depends on the seed and k alone, and the
    stream starts right at it), so a resumed run sees exactly what an unbroken one does.
    """
    import keras

    import pipelines.feed
    from kerasdnn.callbacks import EpochTimer
    from kerasdnn.checkpoint import RunCheckpoint, restore_checkpoint
    from kerasdnn.class_weights import weighted_stream
    from kerasdnn.schedules import attach_schedule, schedule_callbacks

    train_data, validation_data, steps = _training_data(splits, train_config, merge_validation)
    # Keras takes steps_per_execution batches per call, across epoch ends of a stream.
    model.steps_per_execution = steps_per_execution_for(steps, model.steps_per_execution)
    attach_schedule(model, train_config.epochs, steps)  # before the optimizer's variables load
    train_data = weighted_stream(train_data, splits, train_config, merge_validation)
    restored = restore_checkpoint(model, out_dir / BACKUP_DIR)
    epochs_done = restored.epochs_done if restored else 0
    # The timer writes before the checkpoint: a kill between the two leaves it an epoch
    # ahead, which resuming drops, never one behind.
    # In a multi-process run the others keep their copies of these files apart.
    processes = processes or Processes()
    own_dir = out_dir if processes.writes else _private_dir()
    callbacks: list[keras.callbacks.Callback] = [
        EpochTimer(own_dir / EPOCH_TIMES_FILE, epochs_done)]
    early_stopping = None
    if train_config.early_stopping is not None:
        early_stopping = keras.callbacks.EarlyStopping(
            monitor="val_loss" if validation_data is not None else "loss",
            patience=train_config.early_stopping, restore_best_weights=True,
        )
        callbacks.append(early_stopping)
    callbacks += schedule_callbacks(model.model_config,
                                    "val_loss" if validation_data is not None else "loss")
    plateau = next((c for c in callbacks if isinstance(c, keras.callbacks.ReduceLROnPlateau)),
                   None)
    saver = RunCheckpoint(own_dir / BACKUP_DIR, own_dir / HISTORY_FILE, restored, early_stopping,
                          plateau)
    if restored is not None and (restored.stopped or epochs_done >= train_config.epochs):
        saver.set_model(model)  # killed after training: only the finishing is missing
        saver.finish_training()
        return saver.history()
    if train_config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / "tensorboard")))
    callbacks.append(saver)  # last: it sees EarlyStopping's state and restored weights
    fed = pipelines.feed.for_fit(train_data, skip=epochs_done * steps)
    if train_config.data_parallel:  # every batch divisible by the devices, exactly
        fed = (padded_dataset(fed, replicas, processes) if hasattr(fed, "element_spec")
               else padded_iterator(fed, replicas, processes))
        if validation_data is not None:
            validation_data = padded_dataset(validation_data, replicas, processes)
    model.fit(
        fed,
        steps_per_epoch=steps,
        validation_data=validation_data,
        epochs=train_config.epochs,
        initial_epoch=epochs_done,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles, reproducibly
        verbose=verbose,
    )
    return saver.history()


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


def _training_data(
    splits: Any, train_config: TrainConfig, merge_validation: bool
) -> tuple[Any, Any, int]:
    """``(training stream, validation data or None, steps per epoch)``."""
    counts = splits.info.num_examples
    if merge_validation:
        examples = counts["train"] + counts["validation"]
        return _merged(splits, train_config).repeat(), None, _steps(examples, train_config)
    return splits.stream, splits.validation, _steps(counts["train"], train_config)


def _steps(examples: int, train_config: TrainConfig) -> int:
    return math.ceil(examples / train_config.batch_size)


def _merged(splits: Any, train_config: TrainConfig) -> Any:
    """Train + validation examples, reshuffled together each pass by (seed, pass) alone,
    batched as before."""
    import tensorflow as tf

    from pipelines.builder import pass_seeds

    examples = splits.info.num_examples["train"] + splits.info.num_examples["validation"]
    x_all, y_all = (
        splits.train.unbatch().concatenate(splits.validation.unbatch())
        .batch(examples).get_single_element()
    )

    def one_pass(seed: Any) -> Any:
        order = tf.random.experimental.stateless_shuffle(tf.range(examples), seed=seed)
        return tf.data.Dataset.from_tensor_slices(order).batch(train_config.batch_size).map(
            lambda rows: (tf.gather(x_all, rows), tf.gather(y_all, rows)))

    return (
        pass_seeds(train_config.seed).flat_map(one_pass)
        .apply(tf.data.experimental.assert_cardinality(_steps(examples, train_config)))
        .prefetch(tf.data.AUTOTUNE)
    )


def _private_dir() -> Path:
    """A folder of this process's own, removed when it exits."""
    folder = Path(tempfile.mkdtemp(prefix="kerasdnn-process-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
