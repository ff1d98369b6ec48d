"""A search, run: what ``python -m tuning.search`` does once its flags are checked.

:func:`search` runs a random, Bayesian or Hyperband search of
:class:`tuning.DNNHyperModel` (each trial on the data path of
``kerasdnn.train``), alone, as the chief of a distributed search, or as one
of its workers; prints one line per trial and a ranked table of the best
trials; writes ``trials.csv`` and ``search.png`` into
``<directory>/<project-name>``; and retrains the best configuration on
train + validation into ``<directory>/<project-name>/best`` (a normal run
directory: model, config, report and plots).  :func:`check_resume` refuses to
continue a project with other settings.

Imports nothing heavy at module level (Keras and KerasTuner load inside :func:`search`).

Example:
    >>> from tuning.search import build_parser, options_from_args
    >>> from tuning.space import load_space
    >>> options = options_from_args(build_parser().parse_args(
    ...     ["--dataset", "digits", "--directory", "/nonexistent/runs"]))
    >>> check_resume(options, load_space(None))["tuner"]
    'random'
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kerasdnn.core.config import ModelConfig
from kerasdnn.core.errors import ConfigError, KerasDNNError
from kerasdnn.core.io import atomic_write_json, read_json_file
from kerasdnn.core.rundir import TENSORBOARD_DIR, changed_keys, check_writable_dir
from kerasdnn.core.runtime import check_backend, quiet_tensorflow
from kerasdnn.training.faults import fault_point
from kerasdnn.training.run import train
from tuning.chief import guard_worker, serve, set_distributed_environment
from tuning.options import SearchOptions
from tuning.results import (
    format_values,
    plot_search,
    ranked_table,
    record_workers,
    trial_rows,
    write_trials_csv,
)
from tuning.space import Space

__all__ = ["check_resume", "retrain", "search"]

SETTINGS_FILE = "search.json"
DECISIONS_FILE = "pruning.json"  # each pruning decision: trial, epoch, value, the others'
BEST_DIR = "best"
SCRATCH_PREFIX = ".best-"  # the retraining's scratch folder, removed by the next search


def check_resume(options: SearchOptions, space: Space) -> dict[str, Any]:
    """The settings stored in the project; refuse to continue a project with other ones.

    Returns the settings of this search (to store once the tuner exists).
    """
    settings = {
        "tuner": options.tuner,
        "objective": options.objective,
        "dataset": options.dataset,
        "seed": options.seed,
        "space": space.to_dict(),
    }
    stored_path = options.project_dir / SETTINGS_FILE
    if options.overwrite or not stored_path.exists():
        return settings
    try:
        stored = read_json_file(stored_path, "--directory", "the search.json a search wrote")
    except ConfigError as error:
        raise ConfigError(f"{error}; or pass --overwrite to start the search over") from None
    if not isinstance(stored, dict):
        stored = {}
    changed = changed_keys({key: stored.get(key) for key in settings}, settings)
    if changed:
        what = ", ".join("search space" if key == "space" else f"--{key}" for key in changed)
        raise ConfigError(
            f"cannot continue the search in {options.project_dir} with a different {what} "
            f"(stored in {stored_path}); rerun it with the same settings, pass --overwrite "
            "to start over, or choose another --project-name"
        )
    return settings


def search(options: SearchOptions, space: Space) -> Path | None:
    """Run the search the options describe; return the best run directory (``None`` on a worker).

    Example (a few seconds per trial):
        >>> options = options_from_args(build_parser().parse_args(
        ...     ["--dataset", "digits", "--max-trials", "3", "--epochs", "2"]))  # doctest: +SKIP
        >>> search(options, load_space(None))  # doctest: +SKIP
        PosixPath('runs/tuning/digits-random/best')
    """
    backend = check_backend()
    check_writable_dir(options.project_dir, "--directory")
    settings = check_resume(options, space)
    set_distributed_environment(options)
    quiet_tensorflow()
    from tuning.hypermodel import DNNHyperModel, make_tuner, trial_splits

    # The data of the first trial (the space's default batch size) tell the model's shape.
    data = options.train_config()
    info = trial_splits(data.replace(batch_size=space["batch_size"].default)).info
    if info.note:
        print(info.note)
    base_config = ModelConfig(
        input_shape=tuple(info.input_shape),
        num_classes=info.num_classes,
        seed=options.seed,
        metrics=("accuracy", "auc") if options.objective == "val_auc" else ("accuracy",),
    )
    resuming = (options.project_dir / SETTINGS_FILE).exists() and not options.overwrite
    tuner = make_tuner(
        options.tuner,
        DNNHyperModel(base_config, space),
        objective=options.objective,
        seed=options.seed,
        directory=options.directory,
        project_name=options.project_name,
        overwrite=options.overwrite,
        max_trials=options.max_trials,
        max_epochs=options.max_epochs,
        factor=options.factor,
        executions_per_trial=options.executions_per_trial,
        pruner=options.pruner(),
        board_dir=(str(options.project_dir / TENSORBOARD_DIR) if options.tensorboard
                   else None),
    )
    if options.role != "worker" and getattr(tuner.oracle, "pruner", None) is not None:
        tuner.oracle.decisions_path = options.project_dir / DECISIONS_FILE
    messages: dict[str, str] = {}
    workers: dict[str, str] = {}
    if options.role != "worker":
        workers = record_workers(tuner.oracle, options.project_dir,
                                 "main" if options.role == "single" else None)
        atomic_write_json(options.project_dir / SETTINGS_FILE, settings)
        if options.tensorboard:
            from tuning.dashboard import write_experiment

            write_experiment(options.project_dir / TENSORBOARD_DIR,
                             [hp.name for hp in tuner.oracle.hyperparameters.space],
                             options.objective)
        tuner.oracle.verbose = 0  # one line per trial instead of KerasTuner's tables
        done = len(tuner.oracle.trials)
        _say(f"{'continuing' if resuming else 'starting'} a {options.tuner} search of "
             f"{options.objective} on {info.source} (backend {backend}) in "
             f"{options.project_dir}" + (f": {done} trial(s) done" if resuming else ""))

    stopped = None
    if options.role == "chief":
        serve(tuner, options,
              lambda trial: _print_trial(tuner, trial, messages, options, workers=workers))
    else:
        tuner.on_trial_done = lambda trial, message: _print_trial(
            tuner, trial, messages, options, message
        )
        guard = guard_worker(tuner, options) if options.role == "worker" \
            else contextlib.nullcontext()
        try:  # Hyperband passes each trial its own epochs and initial_epoch
            with guard:
                tuner.search(data, callbacks=_callbacks(options), verbose=0)
        except RuntimeError as error:
            if "consecutive failures" not in str(error):
                raise
            stopped = str(error).strip().splitlines()[0]
    if options.role == "worker":
        _say(f"worker {options.worker}: ran {len(messages)} trial(s); the chief writes the results")
        return None
    return finish(tuner, options, space, base_config, messages, stopped, workers)


def finish(tuner: Any, options: SearchOptions, space: Space, base_config: ModelConfig,
           messages: dict[str, str], stopped: str | None,
           workers: dict[str, str] | None = None) -> Path:
    """Write trials.csv and search.png, print the ranked table, retrain the best trial."""
    oracle = tuner.oracle
    rows = trial_rows(oracle.trials.values(), messages, workers, options.objective)
    project_dir = options.project_dir
    write_trials_csv(project_dir / "trials.csv", rows)
    plot_search(project_dir / "search.png", rows, options.objective, options.direction)
    completed = [row for row in rows if row["status"] == "COMPLETED"]
    pruned = sum(row["status"] == "PRUNED" for row in rows)
    _say(f"{len(rows)} trial(s): {len(completed)} completed, "
         + (f"{pruned} pruned, " if pruned else "")
         + f"{len(rows) - len(completed) - pruned} failed; wrote {project_dir / 'trials.csv'} and "
         f"{project_dir / 'search.png'}")
    if stopped:
        raise KerasDNNError(f"the search stopped: {stopped} (see {project_dir / 'trials.csv'}); "
                            "narrow the search space (--space) to values that train")
    if not completed:
        raise KerasDNNError(f"no trial completed (see {project_dir / 'trials.csv'}); "
                            "narrow the search space (--space) to values that train")
    _say(ranked_table(rows, options.objective, options.direction))
    best = oracle.get_best_trials(1)[0]
    return retrain(best, options, space, base_config)


def retrain(best: Any, options: SearchOptions, space: Space, base_config: ModelConfig) -> Path:
    """Train the best trial's configuration on train + validation into ``<project>/best``.

    The new run is written beside the old one and swapped in when complete; the
    scratch folder a killed retraining left is removed first.
    """
    values = best.hyperparameters.values
    model_config = space.model_config(values, base_config)
    target = options.project_dir / BEST_DIR
    for leftover in options.project_dir.glob(f"{SCRATCH_PREFIX}*"):  # a killed retraining's
        shutil.rmtree(leftover)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=options.project_dir))
    _say(f"retraining trial {best.trial_id} ({options.objective} {best.score:.4f}) on "
         f"train + validation for {options.train_epochs} epoch(s)")
    result = train(
        options.train_config(batch_size=int(values["batch_size"]), out=str(scratch / BEST_DIR),
                             **({"class_weight": values["class_weight"]}
                                if values.get("class_weight", "none") != "none" else {})),
        model_config,
        merge_validation=True,
        verbose=0,
    )
    fault_point("best_swap")
    old = scratch / "previous"
    if target.exists():
        target.rename(old)
    (scratch / BEST_DIR).rename(target)
    shutil.rmtree(scratch, ignore_errors=True)
    _say(f"best model: test accuracy {result.report['accuracy']:.4f}; run directory {target}")
    return target


# --------------------------------------------------------------------------- helpers


def _print_trial(tuner: Any, trial: Any, messages: dict[str, str], options: SearchOptions,
                 message: str | None = None, workers: dict[str, str] | None = None) -> None:
    row = trial_rows([trial], {trial.trial_id: message or ""}, objective=options.objective)[0]
    messages[trial.trial_id] = message or ""
    who = f"[{options.worker}] " if options.role == "worker" else ""
    seconds = "" if row["seconds"] is None else f" {row['seconds']:.1f}s"
    if row["status"] == "COMPLETED":
        best = tuner.oracle.get_best_trials(1)
        best_score = best[0].score if best and best[0].score is not None else row["score"]
        outcome = (f"{options.objective} {row['score']:.4f} (best {best_score:.4f})"
                   f"{seconds} {row['steps_per_epoch'] or 0:.0f} steps/epoch")
    elif row["status"] == "PRUNED":
        value = "" if row["pruned_value"] is None else f" {row['pruned_value']:.4f}"
        outcome = (f"pruned at epoch {row['pruned_at_epoch']} ({options.objective}{value})"
                   f"{seconds}")
    else:
        error = _short_error(row["error"]) or "no details on the chief"
        outcome = f"{row['status'].lower()}{seconds}: {error}"
    ran_on = f" · on {workers[trial.trial_id]}" if workers and trial.trial_id in workers else ""
    _say(f"{who}trial {trial.trial_id}: {outcome} · "
         f"{format_values(trial.hyperparameters.values)}{ran_on}")


def _short_error(line: str) -> str:
    return re.sub(r"^[\w.]*\.(\w+:)", r"\1", line)


def _callbacks(options: SearchOptions) -> list[Any]:
    """A trial's early stopping watches the search's objective (``kerasdnn.train``'s the
    validation loss)."""
    if options.early_stopping is None:
        return []
    import keras

    return [keras.callbacks.EarlyStopping(monitor=options.objective, mode=options.direction,
                                          patience=options.early_stopping)]


def _say(text: str) -> None:
    print(text, flush=True)
