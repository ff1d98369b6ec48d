"""A training run as a library: :func:`train` loads the data, builds the model,
fits it, evaluates it on the test split and writes the run directory.

``python -m kerasdnn.train`` (:mod:`kerasdnn.train`) is the command line over it,
and ``kerasdnn.train(...)`` calls it.  The steps, in the order :func:`train` takes
them: the distribution and the run directory are checked before anything heavy
loads (:func:`_start_distribution`, :func:`_check_out`), then the data
(:func:`kerasdnn.training.data.load_splits`), the model and ``config.json``
(:func:`_build`), training (:func:`kerasdnn.training.fitting.fit_run`) and the report
(:func:`_finish`).  Keras, TensorFlow and what imports them are imported inside
the functions that use them, so importing this module stays cheap.

Example:
    >>> train_config, model_config = merge_configs(None, None, {"epochs": 3, "seed": 7})
    >>> train_config.epochs, train_config.seed, model_config.seed
    (3, 7, 7)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kerasdnn import __version__
from kerasdnn.core.config import ModelConfig, TrainConfig, check_warmup
from kerasdnn.core.errors import ConfigError
from kerasdnn.core.io import atomic_path, atomic_write_json, remove_temporaries
from kerasdnn.core.rundir import (
    BACKUP_DIR,
    MODEL_FILE,
    PREPROCESSING_FILE,
    check_new_run_dir,
    check_resumable,
    check_writable_dir,
    dataset_record,
    default_run_dir,
    read_run_config,
    run_record,
    write_predictions,
    write_run_config,
)
from kerasdnn.core.runtime import check_backend, quiet_tensorflow
from kerasdnn.evaluation.predict import (
    SampledRows,
    collect_sample,
    load_test_images,
    report_rows,
    sampled_from,
    validation_predictions,
)
from kerasdnn.training.data import load_splits
from kerasdnn.training.distribute import (
    Processes,
    configure_devices,
    distribution_record,
    initialize_processes,
    launched_processes,
    strategy_scope,
)
from kerasdnn.training.faults import fault_point
from kerasdnn.training.fitting import fit_run
from kerasdnn.training.input_path import check_requested

__all__ = ["SETTINGS", "RunResult", "merge_configs", "split_settings", "train"]

_TRAIN_FIELDS = frozenset(field.name for field in dataclasses.fields(TrainConfig))
_MODEL_FIELDS = frozenset(field.name for field in dataclasses.fields(ModelConfig))
SETTINGS = _TRAIN_FIELDS | _MODEL_FIELDS  # what train(**settings) takes besides its own


@dataclasses.dataclass
class RunResult:
    """What :func:`train` returns.

    Attributes:
        out_dir: the run directory.
        model: the trained ``kerasdnn.DNN``.
        history: ``{metric: [value per epoch]}`` over all epochs (resumed ones included).
        report: the scikit-learn report on the test split (see :mod:`kerasdnn.evaluation.reports`).
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


@dataclasses.dataclass(frozen=True)
class _Run:
    """What a run decided before it builds its model, handed from step to step."""

    backend: str
    train_config: TrainConfig
    model_config: ModelConfig
    out_dir: Path | None  # None until the data names the default run directory
    resume: bool
    merge_validation: bool
    processes: Processes
    replicas: int


def train(
    config: TrainConfig | Mapping[str, Any] | None = None,
    model_config: ModelConfig | Mapping[str, Any] | None = None,
    *,
    data: Any = None,
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
        data: a pandas DataFrame to train on (with ``target=``, the label column):
            the run's dataset is then ``"dataframe"``.
        resume: continue the unfinished run in ``config.out`` from its last
            completed epoch; its settings must be the ones saved there.
        merge_validation: train on train + validation (no validation
            metrics, early stopping on the training loss), as a final
            retraining after a search.
        verbose: Keras's ``fit`` verbosity; 0 also silences the summaries.
        coordinator, num_processes, process_id: join a multi-process run
            (JAX: ``keras.distribution.initialize``, whose ``KERAS_DISTRIBUTION_*``
            variables work too; PyTorch: ``torch.distributed``, or torchrun's
            variables); needs ``data_parallel`` and ``out``.  Every
            process runs the same call; only process 0 writes the run directory
            (the others return a result with an empty report).
        **overrides: fields of either config, e.g. ``epochs=5, hidden_units=(64,)``
            (``seed`` sets both seeds).

    Returns:
        A :class:`RunResult`.

    Example:
        >>> import tempfile  # a real run on scikit-learn's digits: a few seconds
        >>> result = train(dataset="digits", epochs=1, hidden_units=(16,), verbose=0,
        ...                out=tempfile.mkdtemp() + "/run")
        >>> sorted(p.name for p in result.out_dir.iterdir())[:2]
        ['calibration.png', 'config.json']
    """
    backend = check_backend()
    train_config, model_config = merge_configs(config, model_config, overrides)
    if data is not None:  # a DataFrame from Python (README: Your own table)
        train_config = train_config.replace(dataset="dataframe")
    check_requested(train_config, model_config, backend)
    if merge_validation and train_config.stream:
        raise ConfigError("a retraining on train + validation holds both in memory, which a "
                          "streamed source (--stream) cannot; retrain without --stream, or keep "
                          "the run trained on the training split")
    processes, replicas = _start_distribution(
        backend, train_config, coordinator, num_processes, process_id)
    run = _Run(backend, train_config, model_config, None, resume, merge_validation,
               processes, replicas)
    run = dataclasses.replace(run, out_dir=_check_out(run))
    quiet_tensorflow()
    from pipelines.tables.streaming import Shard

    shard = ({"shard": Shard(processes.index, processes.count, replicas)}
             if train_config.stream and processes.count > 1 else {})  # its own pieces
    # An endless, epoch-indexed stream: resumable exactly.
    splits = load_splits(train_config, repeat=not merge_validation,
                         **({"name": data} if data is not None else {}), **shard)
    run = _settle(run, splits.info)
    quiet = verbose == 0 or not processes.writes
    with _distribution_scope(run):
        model = _build(run, splits.info, quiet)
        history = fit_run(model, splits, run.train_config, run.out_dir,
                          merge_validation=merge_validation,
                          verbose=verbose if processes.writes else 0,
                          replicas=replicas, processes=processes)
        if processes.count == 1:
            report = _finish(run, model, splits, history)
    if processes.count > 1:
        if not processes.writes:
            return RunResult(run.out_dir, model, history, {}, splits.info,
                             run.model_config, run.train_config)
        model = _local_copy(model, run.model_config)
        report = _finish(run, model, splits, history)
    if not quiet:
        _print_results(report, history, run.out_dir)
    return RunResult(run.out_dir, model, history, report, splits.info,
                     run.model_config, run.train_config)


def merge_configs(
    config: TrainConfig | Mapping[str, Any] | None,
    model_config: ModelConfig | Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
) -> tuple[TrainConfig, ModelConfig]:
    """Both configs from objects, dicts and keyword overrides routed by field name
    (:func:`split_settings`)."""
    train_values, model_values = split_settings(overrides)
    train_config = TrainConfig.from_dict({**_as_dict(config, TrainConfig), **train_values})
    model_config = ModelConfig.from_dict({**_as_dict(model_config, ModelConfig), **model_values})
    check_warmup(model_config, train_config.epochs)  # before anything is written
    return train_config, model_config


def split_settings(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(TrainConfig fields, ModelConfig fields)`` of ``settings``, by field name:
    ``seed``, a field of both, goes to both; an unknown name is refused.

    Example:
        >>> split_settings({"epochs": 3, "dropout": 0.1, "seed": 7})
        ({'epochs': 3, 'seed': 7}, {'dropout': 0.1, 'seed': 7})
    """
    for key in settings:
        if key not in SETTINGS:
            known = ", ".join(sorted(SETTINGS))
            raise ConfigError(f"unknown setting {key!r}; known settings: {known}")
    return ({key: value for key, value in settings.items() if key in _TRAIN_FIELDS},
            {key: value for key, value in settings.items() if key in _MODEL_FIELDS})


def _as_dict(value: Any, kind: type) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, kind):
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(f"expected a {kind.__name__} or a dict, got {type(value).__name__}")


def _start_distribution(
    backend: str,
    train_config: TrainConfig,
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
) -> tuple[Processes, int]:
    """``(this process's place, replicas)``; the devices are set up here, before the
    backend starts them."""
    if not train_config.data_parallel:
        if (coordinator, num_processes, process_id) != (None, None, None):
            raise ConfigError("--coordinator/--num-processes/--process-id need --data-parallel")
        launched = launched_processes(backend)
        if launched > 1:  # each would train alone, into the same run directory
            raise ConfigError(f"started as one of {launched} processes (a launcher such "
                              "as torchrun) without --data-parallel; add --data-parallel")
        return Processes(), 1
    processes = initialize_processes(backend, coordinator, num_processes, process_id)
    if processes.count > 1 and train_config.out is None:
        raise ConfigError("a multi-process run needs --out: the one run directory "
                          "(on a file system every process sees) that process 0 writes")
    return processes, configure_devices(backend, train_config.devices)


def _check_out(run: _Run) -> Path | None:
    """The run directory, refused at once if it cannot be used (before the data
    loads); ``None`` for the default one, named once the data source is known."""
    out = run.train_config.out
    if run.resume:
        if out is None:
            raise ConfigError("--resume needs --out: the run directory to continue")
        check_resumable(Path(out), run.train_config, run.model_config, run.merge_validation,
                        data_known=False)
        return Path(out)
    if out is not None:
        if run.processes.writes:
            check_new_run_dir(Path(out))
        return Path(out)
    check_writable_dir(default_run_dir("data", run.backend).parent, "--out")
    return None


def _settle(run: _Run, info: Any) -> _Run:
    """The run's settings once the data is known: its shape and classes in the model's
    config, the default run directory named after the source actually used."""
    model_config = run.model_config.replace(
        input_shape=tuple(info.input_shape), num_classes=info.num_classes)
    out = run.out_dir
    if out is None:
        out = default_run_dir(info.source, run.backend)
        check_new_run_dir(out)
    train_config = run.train_config.replace(out=str(out))
    if run.resume:  # the data may not decide differently than last time
        check_resumable(out, train_config, model_config, run.merge_validation, data_known=True)
        if run.processes.writes:
            remove_temporaries(out)  # of a file a kill interrupted; written again later
    return dataclasses.replace(run, train_config=train_config, model_config=model_config,
                               out_dir=out)


def _distribution_scope(run: _Run) -> Any:
    """Keras's or TensorFlow's data-parallel scope for a ``data_parallel`` run."""
    if not run.train_config.data_parallel:
        return contextlib.nullcontext()
    return strategy_scope(run.backend, run.replicas)


def _build(run: _Run, info: Any, quiet: bool) -> Any:
    """The model; a new run's ``config.json``, written by process 0 before training."""
    from kerasdnn.network.models import build_model

    model = build_model(run.model_config)
    source = None
    if run.train_config.init_from is not None:  # fine-tuning: weights of a finished run
        from kerasdnn.training.finetune import initialize_from

        recorded = read_run_config(run.out_dir).get("init_from") if run.resume else None
        source = initialize_from(model, run.train_config.init_from, info.class_names,
                                 freeze=run.train_config.freeze, recorded=recorded,
                                 note=None if quiet or run.resume else print)
    if not run.resume and run.processes.writes:
        record = run_record(run.model_config, run.train_config, backend=run.backend,
                            dataset=dataset_record(info), merge_validation=run.merge_validation)
        if source is not None:
            record["init_from"] = source
        record["distribution"] = distribution_record(
            run.train_config.data_parallel, run.replicas, run.processes.count)
        write_run_config(run.out_dir, record)
        if info.table is not None:  # a table's fitted preprocessing: reused, never refit
            atomic_write_json(run.out_dir / PREPROCESSING_FILE, info.table)
    if not quiet:
        _print_summary(model, run, info)
    return model


def _local_copy(model: Any, model_config: ModelConfig) -> Any:
    """The distributed model's predictions would need every process; process 0
    evaluates a local copy of the (replicated) weights alone."""
    from kerasdnn.network.models import build_model

    local = build_model(model_config)
    local.set_weights(model.get_weights())
    return local


def _finish(run: _Run, model: Any, splits: Any, history: dict[str, list[float]]) -> dict[str, Any]:
    """Save the model, the test predictions and the report (each file atomically).

    A binary task's threshold is chosen on the validation split, unless it was trained on.
    """
    from kerasdnn.evaluation.reports import write_report
    from kerasdnn.training.checkpoint import remove_checkpoints

    out_dir, info, train_config = run.out_dir, splits.info, run.train_config
    with atomic_path(out_dir / MODEL_FILE) as tmp:
        model.save(tmp)
    fault_point("finish_model")
    limit = report_rows(train_config.stream)
    y_true, y_prob, rows = collect_sample(model, splits.test, max_rows=limit,
                                          seed=train_config.seed)
    scored_from = sampled_from(info, y_true)
    write_predictions(out_dir, y_true, y_prob, rows=None if scored_from is None else rows)
    images = load_test_images(info.source, data_dir=train_config.data_dir,
                              manual_dir=train_config.manual_dir, stream=train_config.stream)
    report = write_report(
        out_dir,
        y_true,
        y_prob,
        class_names=list(info.class_names),
        history=history,
        title=f"{info.source} · {out_dir.name}",
        validation=(None if run.merge_validation else
                    validation_predictions(model, splits, max_rows=limit)),
        images=images if images is None or scored_from is None else SampledRows(images, rows),
        scored_from=scored_from,
    )
    fault_point("finish_report")
    remove_checkpoints(out_dir / BACKUP_DIR)  # last: until then --resume finishes the run
    return report


def _print_summary(model: Any, run: _Run, info: Any) -> None:
    model_config, train_config = run.model_config, run.train_config
    counts = info.num_examples
    layers = "-".join(str(n) for n in (math.prod(model_config.input_shape),
                                       *model_config.hidden_units, model_config.output_units))
    optimizer = f"{model_config.optimizer} lr {model_config.learning_rate:g}"
    if model_config.optimizer == "sgd":
        optimizer += f" momentum {model_config.momentum:g}"
    if info.note:
        print(info.note)
    print(f"kerasdnn {__version__} · backend {run.backend} · dataset {info.source}")
    if info.table is not None:
        from pipelines.tables.schema import format_schema

        print(format_schema(info.table["schema"]))
    print(
        f"examples: train {counts.get('train', 0):,} · validation {counts.get('validation', 0):,}"
        f" · test {counts.get('test', 0):,} · {info.num_classes} classes"
    )
    print(
        f"model: {layers} {model_config.activation} · {model.count_params():,} parameters"
        f" · {optimizer} · batch {train_config.batch_size} · {train_config.epochs} epochs"
    )
    print(f"{'resuming' if run.resume else 'run directory'}: {run.out_dir}")
    if train_config.data_parallel:
        processes = run.processes.count
        print(f"data parallel: {run.replicas} device(s), "
              f"{train_config.batch_size / run.replicas:g} examples each per step"
              + (f", {processes} processes" if processes > 1 else ""))


def _print_results(report: dict[str, Any], history: dict[str, list[float]], out_dir: Path) -> None:
    from kerasdnn.evaluation.reports import format_table

    print(format_table(report))
    skipped = history.get("skipped_steps")
    if skipped and skipped[-1]:
        print(f"skipped {int(skipped[-1])} step(s) with a non-finite loss or gradient")
    print(f"wrote {out_dir}")
