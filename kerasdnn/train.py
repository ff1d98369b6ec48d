"""Train a dense classifier and write a run directory: ``python -m kerasdnn.train``.

The command line and the Python function take the same settings: every flag
maps onto :class:`~kerasdnn.config.TrainConfig` or
:class:`~kerasdnn.config.ModelConfig`.  The module itself is callable, so
``kerasdnn.train(...)`` runs :func:`train`.

Example:
    >>> import kerasdnn
    >>> result = kerasdnn.train(dataset="digits", epochs=2, out="runs/demo")  # doctest: +SKIP
    >>> result.report["accuracy"]  # doctest: +SKIP
    0.93
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kerasdnn.cli import (
    ArgumentParser,
    check_backend,
    comma_ints,
    make_module_callable,
    non_negative_float,
    positive_float,
    positive_int,
    quiet_tensorflow,
    read_json_file,
)
from kerasdnn.config import ACTIVATIONS, OPTIMIZERS, SCALES, ModelConfig, TrainConfig
from kerasdnn.errors import ConfigError, RunDirectoryError, exit_on_user_error
from kerasdnn.faults import fault_point
from kerasdnn.io import remove_temporaries
from kerasdnn.rundir import (
    BACKUP_DIR,
    EPOCH_TIMES_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    check_new_run_dir,
    check_writable_dir,
    default_run_dir,
    describe_differences,
    read_run_config,
    run_record,
    write_run_config,
)

__all__ = ["RunResult", "build_parser", "main", "steps_per_execution_for", "train"]

PROG = "python -m kerasdnn.train"  # in --help and in every error line

# Flag name → (config section, field); the flags' defaults come from the dataclasses.
_FLAG_FIELDS: dict[str, tuple[str, str]] = {
    "dataset": ("train", "dataset"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "validation_split": ("train", "validation_split"),
    "scale": ("train", "scale"),
    "out": ("train", "out"),
    "early_stopping": ("train", "early_stopping"),
    "tensorboard": ("train", "tensorboard"),
    "data_dir": ("train", "data_dir"),
    "manual_dir": ("train", "manual_dir"),
    "optimizer": ("model", "optimizer"),
    "lr": ("model", "learning_rate"),
    "momentum": ("model", "momentum"),
    "hidden": ("model", "hidden_units"),
    "activation": ("model", "activation"),
    "dropout": ("model", "dropout"),
    "l2": ("model", "l2"),
    "batch_norm": ("model", "batch_norm"),
    "clipnorm": ("model", "clipnorm"),
    "mixed_precision": ("model", "mixed_precision"),
    "steps_per_execution": ("model", "steps_per_execution"),
    "data_parallel": ("train", "data_parallel"),
    "devices": ("train", "devices"),
}
_MODEL_FIELDS = {field.name for field in dataclasses.fields(ModelConfig)}
_TRAIN_FIELDS = {field.name for field in dataclasses.fields(TrainConfig)}
# Decided by the data, not by the user.
_DATA_FIELDS = ("input_shape", "num_classes")


@dataclasses.dataclass
class RunResult:
    """What :func:`train` returns.

    Attributes:
        out_dir: the run directory.
        model: the trained ``kerasdnn.DNN``.
        history: ``{metric: [value per epoch]}`` over all epochs (resumed ones included).
        report: the scikit-learn report on the test split (see :mod:`kerasdnn.reports`).
        info: the dataset actually used (``pipelines.DatasetInfo``).
        model_config: the model's configuration (input shape and classes from the data).
        train_config: the run's configuration.
    """

    out_dir: Path
    model: Any
    history: dict[str, list[float]]
    report: dict[str, Any]
    info: Any
    model_config: ModelConfig
    train_config: TrainConfig


def train(
    config: TrainConfig | Mapping[str, Any] | None = None,
    model_config: ModelConfig | Mapping[str, Any] | None = None,
    *,
    resume: bool = False,
    merge_validation: bool = False,
    verbose: str | int = "auto",
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    **overrides: Any,
) -> RunResult:
    """Train, evaluate on the test split, and write the run directory.

    Args:
        config: the run's settings (``TrainConfig`` or a dict of its fields).
        model_config: the network's settings (``ModelConfig`` or a dict of its
            fields); ``input_shape`` and ``num_classes`` come from the data.
        resume: continue the unfinished run in ``config.out`` from its last
            completed epoch; its settings must be the ones saved there.
        merge_validation: train on train + validation (no validation
            metrics, early stopping on the training loss), as a final
            retraining after a search.
        verbose: Keras's ``fit`` verbosity; 0 also silences the summaries.
        coordinator, num_processes, process_id: join a multi-process JAX run
            (``keras.distribution.initialize``; the ``KERAS_DISTRIBUTION_*``
            variables work too); needs ``data_parallel`` and ``out``.  Every
            process runs the same call; only process 0 writes the run directory
            (the others return a result with an empty report).
        **overrides: fields of either config, e.g. ``epochs=5, hidden_units=(64,)``.

    Returns:
        A :class:`RunResult`.

    Example:
        >>> from kerasdnn.train import train
        >>> result = train(dataset="digits", epochs=5, out="runs/digits")  # doctest: +SKIP
        >>> sorted(p.name for p in result.out_dir.iterdir())[:2]  # doctest: +SKIP
        ['config.json', 'confusion_matrix.png']
    """
    backend = check_backend()
    train_config, model_config = _merge_configs(config, model_config, overrides)
    replicas = 1
    from kerasdnn.distribute import Processes

    processes = Processes()
    if train_config.data_parallel:  # before the backend starts its devices
        from kerasdnn.distribute import configure_devices, initialize_processes

        processes = initialize_processes(backend, coordinator, num_processes, process_id)
        if processes.count > 1 and train_config.out is None:
            raise ConfigError("a multi-process run needs --out: the one run directory "
                              "(on a file system every process sees) that process 0 writes")
        replicas = configure_devices(backend, train_config.devices)
    elif (coordinator, num_processes, process_id) != (None, None, None):
        raise ConfigError("--coordinator/--num-processes/--process-id need --data-parallel")
    if resume:
        if train_config.out is None:
            raise ConfigError("--resume needs --out: the run directory to continue")
        out_dir = Path(train_config.out)
        _check_resumable(out_dir, train_config, model_config, merge_validation, data_known=False)
    elif train_config.out is not None:
        out_dir = Path(train_config.out)
        if processes.writes:
            check_new_run_dir(out_dir)
    else:
        out_dir = None  # decided once the dataset actually used is known
        check_writable_dir(default_run_dir("data", backend).parent, "--out")

    quiet_tensorflow()
    from kerasdnn.data import load_splits

    # An endless, epoch-indexed stream: resumable exactly.
    splits = load_splits(train_config, repeat=not merge_validation)
    info = splits.info
    model_config = model_config.replace(
        input_shape=tuple(info.input_shape), num_classes=info.num_classes
    )
    if out_dir is None:
        out_dir = default_run_dir(info.source, backend)
        check_new_run_dir(out_dir)
    train_config = train_config.replace(out=str(out_dir))
    if resume:  # the data may not decide differently than last time
        _check_resumable(out_dir, train_config, model_config, merge_validation, data_known=True)
    if resume and processes.writes:
        remove_temporaries(out_dir)  # of a file a kill interrupted; written again below

    with _distribution_scope(backend, train_config, replicas):
        from kerasdnn.distribute import distribution_record
        from kerasdnn.models import build_model

        model = build_model(model_config)
        if not resume and processes.writes:
            record = run_record(
                model_config,
                train_config,
                backend=backend,
                dataset=_dataset_record(info),
                merge_validation=merge_validation,
            )
            record["distribution"] = distribution_record(train_config.data_parallel,
                                                         replicas, processes.count)
            write_run_config(out_dir, record)
        quiet = verbose == 0 or not processes.writes
        if not quiet:
            _print_summary(model, model_config, train_config, info, backend, out_dir, resume)
            if train_config.data_parallel:
                print(f"data parallel: {replicas} device(s), "
                      f"{train_config.batch_size / replicas:g} examples each per step"
                      + (f", {processes.count} processes" if processes.count > 1 else ""))

        history = _fit(model, splits, train_config, out_dir, merge_validation,
                       verbose if processes.writes else 0, replicas, processes)
        if processes.count == 1:
            report = _finish(model, splits, info, history, out_dir, train_config,
                             merge_validation)
    if processes.count > 1:
        if not processes.writes:
            return RunResult(out_dir, model, history, {}, info, model_config, train_config)
        # The distributed model's predictions would need every process; process 0
        # evaluates a local copy of the (replicated) weights alone.
        local = build_model(model_config)
        local.set_weights(model.get_weights())
        model = local
        report = _finish(model, splits, info, history, out_dir, train_config, merge_validation)
    if not quiet:
        _print_results(report, history, out_dir)
    return RunResult(out_dir, model, history, report, info, model_config, train_config)


def _distribution_scope(backend: str, train_config: TrainConfig, replicas: int) -> Any:
    """Keras's or TensorFlow's data-parallel scope for a ``data_parallel`` run."""
    import contextlib

    if not train_config.data_parallel:
        return contextlib.nullcontext()
    from kerasdnn.distribute import strategy_scope

    return strategy_scope(backend, replicas)


def _merge_configs(
    config: TrainConfig | Mapping[str, Any] | None,
    model_config: ModelConfig | Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
) -> tuple[TrainConfig, ModelConfig]:
    """Both configs from objects, dicts and keyword overrides (``seed`` sets both seeds)."""
    train_values = _as_dict(config, TrainConfig)
    model_values = _as_dict(model_config, ModelConfig)
    for key, value in overrides.items():
        if key not in _TRAIN_FIELDS and key not in _MODEL_FIELDS:
            known = ", ".join(sorted(_TRAIN_FIELDS | _MODEL_FIELDS))
            raise ConfigError(f"unknown setting {key!r}; known settings: {known}")
        if key in _TRAIN_FIELDS:
            train_values[key] = value
        if key in _MODEL_FIELDS:
            model_values[key] = value
    return TrainConfig.from_dict(train_values), ModelConfig.from_dict(model_values)


def _as_dict(value: Any, kind: type) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, kind):
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(f"expected a {kind.__name__} or a dict, got {type(value).__name__}")


def _check_resumable(
    out_dir: Path,
    train_config: TrainConfig,
    model_config: ModelConfig,
    merge_validation: bool,
    *,
    data_known: bool,
) -> None:
    """Refuse to resume a finished run, an unfinished one with other settings, or a
    damaged checkpoint.  A run killed after training resumes to write what is missing:
    its checkpoint is removed only once every file of the run is written."""
    from kerasdnn.checkpoint import latest_checkpoint, remove_checkpoints

    record = read_run_config(out_dir)
    check_writable_dir(out_dir, "--out")
    if (out_dir / MODEL_FILE).exists() and not (out_dir / BACKUP_DIR).exists():
        remove_checkpoints(out_dir / BACKUP_DIR)  # what a kill while removing it left
        raise RunDirectoryError(
            f"the run in {out_dir} has already finished; nothing to resume "
            "(evaluate it with `python -m kerasdnn.evaluate`)"
        )
    ignored_model = () if data_known else _DATA_FIELDS  # decided by the data, loaded later
    saved_train = {**record["train"], "out": None}
    asked_train = {**train_config.to_dict(), "out": None}
    saved_model = {k: v for k, v in record["model"].items() if k not in ignored_model}
    asked_model = {k: v for k, v in model_config.to_dict().items() if k not in ignored_model}
    changes = describe_differences(saved_train, asked_train)
    changes += describe_differences(saved_model, asked_model)
    if record.get("merge_validation", False) != merge_validation:
        changes.append(f"merge_validation: {not merge_validation!r} → {merge_validation!r}")
    if not data_known:
        latest_checkpoint(out_dir / BACKUP_DIR)  # damaged: said now, before the data loads
    if changes:
        raise RunDirectoryError(
            f"cannot resume {out_dir} with other settings ({'; '.join(changes)}); "
            "resume with the saved settings or start a new run with another --out"
        )


def _dataset_record(info: Any) -> dict[str, Any]:
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


def _fit(
    model: Any,
    splits: Any,
    train_config: TrainConfig,
    out_dir: Path,
    merge_validation: bool,
    verbose: str | int,
    replicas: int = 1,
    processes: Any = None,
) -> dict[str, list[float]]:
    import keras

    import pipelines.feed
    from kerasdnn.callbacks import EpochTimer
    from kerasdnn.checkpoint import RunCheckpoint, restore_checkpoint

    counts = splits.info.num_examples
    train_data, validation_data = splits.stream, splits.validation
    steps = math.ceil(counts["train"] / train_config.batch_size)
    if merge_validation:
        train_data, validation_data = _merged(splits, train_config).repeat(), None
        steps = math.ceil((counts["train"] + counts["validation"]) / train_config.batch_size)
    # Keras takes steps_per_execution batches per call, across epoch ends of a stream.
    model.steps_per_execution = steps_per_execution_for(steps, model.steps_per_execution)
    # The checkpoint (weights, optimizer slots, epoch and history together) decides
    # where an interrupted run restarts; the feed then leaves out the batches of the
    # epochs already done (epoch k's order depends on the seed and k alone, and the
    # stream starts right at it), so a resumed run sees exactly what an unbroken one does.
    restored = restore_checkpoint(model, out_dir / BACKUP_DIR)
    epochs_done = restored.epochs_done if restored else 0
    monitor = "val_loss" if validation_data is not None else "loss"
    # The timer writes before the checkpoint: a kill between the two leaves it an epoch
    # ahead, which resuming drops, never one behind.
    # In a multi-process run the others keep their copies of these files apart.
    own_dir = out_dir if processes is None or processes.writes else _private_dir()
    callbacks: list[keras.callbacks.Callback] = [
        EpochTimer(own_dir / EPOCH_TIMES_FILE, epochs_done)]
    early_stopping = None
    if train_config.early_stopping is not None:
        early_stopping = keras.callbacks.EarlyStopping(
            monitor=monitor, patience=train_config.early_stopping, restore_best_weights=True
        )
        callbacks.append(early_stopping)
    saver = RunCheckpoint(own_dir / BACKUP_DIR, own_dir / HISTORY_FILE, restored, early_stopping)
    if restored is not None and (restored.stopped or epochs_done >= train_config.epochs):
        saver.set_model(model)  # killed after training: only the finishing is missing
        saver.finish_training()
        return saver.history()
    if train_config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / "tensorboard")))
    callbacks.append(saver)  # last: it sees EarlyStopping's state and restored weights
    fed = pipelines.feed.for_fit(train_data, skip=epochs_done * steps)
    if train_config.data_parallel:  # every batch divisible by the devices, exactly
        from kerasdnn.distribute import Processes, padded_dataset, padded_iterator

        processes = processes or Processes()
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


def _private_dir() -> Path:
    """A folder of this process's own, removed when it exits."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="kerasdnn-process-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


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

    steps = math.ceil(examples / train_config.batch_size)
    return (
        pass_seeds(train_config.seed).flat_map(one_pass)
        .apply(tf.data.experimental.assert_cardinality(steps))  # known steps per epoch
        .prefetch(tf.data.AUTOTUNE)
    )


def _finish(
    model: Any,
    splits: Any,
    info: Any,
    history: dict[str, list[float]],
    out_dir: Path,
    train_config: TrainConfig,
    merge_validation: bool,
) -> dict[str, Any]:
    """Save the model, the test predictions and the report (each file atomically).

    A binary task's threshold is chosen on the validation split, unless it was trained on.
    """
    import numpy as np

    from kerasdnn.checkpoint import remove_checkpoints
    from kerasdnn.io import atomic_path
    from kerasdnn.predict import collect, load_test_images, validation_predictions
    from kerasdnn.reports import write_report

    with atomic_path(out_dir / MODEL_FILE) as tmp:
        model.save(tmp)
    fault_point("finish_model")
    y_true, y_prob = collect(model, splits.test)
    with atomic_path(out_dir / "predictions.npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, y_true=y_true, y_prob=y_prob)
    report = write_report(
        out_dir,
        y_true,
        y_prob,
        class_names=list(info.class_names),
        history=history,
        title=f"{info.source} · {out_dir.name}",
        validation=None if merge_validation else validation_predictions(model, splits),
        images=load_test_images(info.source, data_dir=train_config.data_dir,
                                manual_dir=train_config.manual_dir),
    )
    fault_point("finish_report")
    remove_checkpoints(out_dir / BACKUP_DIR)  # last: until then --resume finishes the run
    return report


def _print_summary(
    model: Any,
    model_config: ModelConfig,
    train_config: TrainConfig,
    info: Any,
    backend: str,
    out_dir: Path,
    resume: bool,
) -> None:
    from kerasdnn import __version__

    counts = info.num_examples
    layers = "-".join(
        str(n)
        for n in (
            math.prod(model_config.input_shape),
            *model_config.hidden_units,
            model_config.output_units,
        )
    )
    optimizer = f"{model_config.optimizer} lr {model_config.learning_rate:g}"
    if model_config.optimizer == "sgd":
        optimizer += f" momentum {model_config.momentum:g}"
    if info.note:
        print(info.note)
    print(f"kerasdnn {__version__} · backend {backend} · dataset {info.source}")
    print(
        f"examples: train {counts.get('train', 0):,} · validation {counts.get('validation', 0):,}"
        f" · test {counts.get('test', 0):,} · {info.num_classes} classes"
    )
    print(
        f"model: {layers} {model_config.activation} · {model.count_params():,} parameters"
        f" · {optimizer} · batch {train_config.batch_size} · {train_config.epochs} epochs"
    )
    print(f"{'resuming' if resume else 'run directory'}: {out_dir}")


def _print_results(report: dict[str, Any], history: dict[str, list[float]], out_dir: Path) -> None:
    from kerasdnn.reports import format_table

    print(format_table(report))
    skipped = history.get("skipped_steps")
    if skipped and skipped[-1]:
        print(f"skipped {int(skipped[-1])} step(s) with a non-finite loss or gradient")
    print(f"wrote {out_dir}")


# --------------------------------------------------------------------------- CLI


def build_parser() -> ArgumentParser:
    """The ``python -m kerasdnn.train`` argument parser (imports nothing heavy).

    Example:
        >>> args = build_parser().parse_args(["--epochs", "3", "--hidden", "64,32"])
        >>> args.epochs, args.hidden
        (3, (64, 32))
    """
    t, m = TrainConfig, ModelConfig
    parser = ArgumentParser(
        prog=PROG,
        description=(
            "Train a dense classifier (default: the classic MNIST network 784-500-250-10)\n"
            "on the Keras backend named by KERAS_BACKEND and write a run directory with the\n"
            "model, its config, the history and a scikit-learn report."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
        epilog=(
            "examples:\n"
            "  KERAS_BACKEND=jax python -m kerasdnn.train\n"
            "  python -m kerasdnn.train --dataset digits --epochs 5 --out runs/digits\n"
            "  python -m kerasdnn.train --out runs/digits --resume\n"
            "datasets: `python -m pipelines --list`"
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help=f"dataset name: mnist, fashion_mnist, digits, tfds:NAME, "
                      f"idx:DIR, npz:PATH, or auto (default: {t.dataset})")
    data.add_argument("--validation-split", type=_fraction,
                      help="fraction of the training split held out "
                      f"(default: {t.validation_split})")
    data.add_argument("--data-dir", metavar="DIR",
                      help="TFDS data directory (default: TFDS's own, or TFDS_DATA_DIR)")
    data.add_argument("--manual-dir", metavar="DIR",
                      help="the original archive files of a TFDS dataset, used instead of a "
                      "download (default: none)")
    data.add_argument("--scale", choices=SCALES,
                      help=f"input scaling: unit ([0, 1]), standardize (per feature), or auto, "
                      f"the dataset's own choice (default: {t.scale})")
    run = parser.add_argument_group("training")
    run.add_argument("--epochs", type=positive_int, help=f"epochs (default: {t.epochs})")
    run.add_argument("--batch-size", type=positive_int,
                     help=f"examples per step (default: {t.batch_size})")
    run.add_argument("--seed", type=_seed, help=f"seed of weights, shuffling and split "
                     f"(default: {t.seed})")
    run.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE",
                     help="stop after PATIENCE epochs without a better validation loss "
                     "(default: off)")
    run.add_argument("--steps-per-execution", type=positive_int,
                     help=f"training steps per compiled call, TF and JAX "
                     f"(default: {m.steps_per_execution})")
    scale = parser.add_argument_group("scale out (JAX, TensorFlow; README: Scale out)")
    scale.add_argument("--data-parallel", action="store_true",
                       help="one model replica per device, each batch split across them "
                       "(JAX, TensorFlow; default: off)")
    scale.add_argument("--devices", type=positive_int, metavar="N",
                       help="with --data-parallel, the first N devices; without accelerators, "
                       "N virtual CPU devices (default: all devices)")
    scale.add_argument("--coordinator", metavar="HOST:PORT",
                       help="multi-process JAX run: process 0's address, the same in every "
                       "process (with --num-processes, --process-id, --data-parallel, --out)")
    scale.add_argument("--num-processes", type=positive_int, metavar="N",
                       help="multi-process JAX run: how many processes")
    scale.add_argument("--process-id", type=_seed, metavar="I",
                       help="multi-process JAX run: this process's index, 0 to N-1")
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", type=comma_ints, metavar="UNITS",
                       help=f"hidden layer sizes (default: "
                       f"{','.join(map(str, m.hidden_units))})")
    model.add_argument("--activation", choices=ACTIVATIONS,
                       help=f"hidden activation (default: {m.activation})")
    model.add_argument("--dropout", type=_dropout, help=f"dropout rate (default: {m.dropout})")
    model.add_argument("--l2", type=non_negative_float, help=f"L2 penalty (default: {m.l2})")
    model.add_argument("--batch-norm", action="store_true",
                       help="batch normalization after each hidden layer (default: off)")
    model.add_argument("--mixed-precision", action="store_true",
                       help="float16 compute with loss scaling (default: off)")
    optim = parser.add_argument_group("optimizer")
    optim.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default: {m.optimizer})")
    optim.add_argument("--lr", type=positive_float,
                       help=f"learning rate (default: {m.learning_rate})")
    optim.add_argument("--momentum", type=_momentum, help=f"SGD momentum (default: {m.momentum})")
    optim.add_argument("--clipnorm", type=positive_float,
                       help="clip gradients to this global norm (default: off)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", metavar="DIR",
                        help="run directory (default: runs/<dataset>-<backend>-<timestamp>)")
    output.add_argument("--resume", action="store_true",
                        help="continue the unfinished run in --out from its last completed epoch")
    output.add_argument("--tensorboard", action="store_true",
                        help="also write TensorBoard logs to <out>/tensorboard (default: off)")
    output.add_argument("--config", metavar="FILE.json",
                        help="settings from a JSON file (a run's config.json works); "
                        "flags override it")
    output.add_argument("--quiet", action="store_true", help="no progress bar, no tables")
    return parser


def configs_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(train settings, model settings)`` from parsed flags and ``--config``.

    With ``--resume`` and no ``--config``, the settings saved in the run are the base.
    """
    given = vars(args)
    train_values: dict[str, Any] = {}
    model_values: dict[str, Any] = {}
    if "config" in given:
        train_values, model_values = _read_config_file(Path(given["config"]))
    elif given.get("resume") and "out" in given:
        record = read_run_config(Path(given["out"]))
        train_values, model_values = dict(record["train"]), dict(record["model"])
    for flag, (section, field) in _FLAG_FIELDS.items():
        if flag in given:
            (train_values if section == "train" else model_values)[field] = given[flag]
    if "seed" in given:
        train_values["seed"] = model_values["seed"] = given["seed"]
    return train_values, model_values


def _read_config_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    record = read_json_file(path, "--config", "a run's config.json")
    if not isinstance(record, dict) or not set(record) & {"train", "model"}:
        raise ConfigError(
            f"--config {path}: expected a JSON object with \"train\" and/or \"model\" "
            "sections, e.g. {\"train\": {\"epochs\": 5}, \"model\": {\"dropout\": 0.1}}"
        )
    train_values, model_values = dict(record.get("train", {})), dict(record.get("model", {}))
    train_values.pop("out", None)  # a run's own directory is not a setting to repeat
    for field in _DATA_FIELDS:
        model_values.pop(field, None)
    try:  # unknown keys and bad values: named here
        TrainConfig.from_dict(train_values)
        ModelConfig.from_dict(model_values)
    except ConfigError as error:
        raise ConfigError(f"--config {path}: {error}") from None
    return train_values, model_values


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kerasdnn.train``; returns the exit status."""
    args = build_parser().parse_args(argv)
    with exit_on_user_error(PROG):
        train_values, model_values = configs_from_args(args)
        train(
            train_values,
            model_values,
            resume=getattr(args, "resume", False),
            verbose=0 if getattr(args, "quiet", False) else "auto",
            coordinator=getattr(args, "coordinator", None),
            num_processes=getattr(args, "num_processes", None),
            process_id=getattr(args, "process_id", None),
        )
    return 0


def _fraction(text: str) -> float:
    value = positive_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text}")
    return value


def _dropout(text: str) -> float:
    value = non_negative_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text}")
    return value


_momentum = _dropout


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
else:
    make_module_callable(__name__, train)
