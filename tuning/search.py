"""Search hyperparameters with KerasTuner: ``python -m tuning.search``.

Runs a random, Bayesian or Hyperband search of :class:`tuning.DNNHyperModel`
on the same data path as ``kerasdnn.train``, prints one line per trial and a
ranked table of the best trials, writes ``trials.csv`` and ``search.png`` into
``<directory>/<project-name>``, and retrains the best configuration on
train + validation into ``<directory>/<project-name>/best`` (a normal run
directory: model, config, report and plots).

Rerunning the same command continues the search (completed trials are kept;
``--overwrite`` starts over).  ``--chief HOST:PORT`` serves the search to
workers started with ``--worker ID --chief HOST:PORT`` (KerasTuner's own
distributed mode); ``--workers N`` starts such a chief and N workers on this host
(:mod:`tuning.workers`).

Flags are parsed and checked before Keras, TensorFlow or KerasTuner is
imported, so ``--help`` and bad flags answer at once.

Example:
    $ python -m tuning.search --tuner random --max-trials 6 --epochs 3 --dataset digits
    $ python -m tuning.search --tuner hyperband --max-epochs 4 --dataset digits
    $ python -m tuning.search --max-trials 8 --epochs 3 --dataset digits --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerasdnn.cli import ArgumentParser, check_backend, positive_int, quiet_tensorflow
from kerasdnn.config import ModelConfig, TrainConfig
from kerasdnn.errors import ConfigError, KerasDNNError, exit_on_user_error
from kerasdnn.faults import fault_point
from kerasdnn.io import atomic_write_json
from kerasdnn.rundir import check_writable_dir
from tuning.chief import serve
from tuning.results import record_workers
from tuning.space import Space, load_space

__all__ = ["SearchOptions", "build_parser", "main", "options_from_args", "search"]

PROG = "python -m tuning.search"
TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVES = ("val_accuracy", "val_loss", "val_auc")
SETTINGS_FILE = "search.json"
BEST_DIR = "best"
SCRATCH_PREFIX = ".best-"  # the retraining's scratch folder, removed by the next search
DEFAULT_MAX_TRIALS = 10
DEFAULT_EPOCHS = TrainConfig.epochs
DEFAULT_MAX_EPOCHS = 10
DEFAULT_FACTOR = 3
VALIDATION_SPLIT = TrainConfig.validation_split


class SearchOptions(argparse.Namespace):
    """Checked options of a search (see :func:`options_from_args`)."""

    tuner: str
    max_trials: int | None
    epochs: int | None
    max_epochs: int | None
    factor: int
    objective: str
    dataset: str
    seed: int
    directory: str
    project_name: str
    overwrite: bool
    executions_per_trial: int
    early_stopping: int | None
    space: str | None
    chief: tuple[str, int] | None
    worker: str | None
    workers: int | None

    @property
    def project_dir(self) -> Path:
        return Path(self.directory) / self.project_name

    @property
    def direction(self) -> str:
        return "min" if self.objective.endswith("loss") else "max"

    @property
    def role(self) -> str:
        """``"single"``, ``"chief"`` or ``"worker"``."""
        if self.worker is not None:
            return "worker"
        return "chief" if self.chief is not None else "single"

    @property
    def train_epochs(self) -> int:
        """Epochs of a full trial (and of the final retraining)."""
        return self.max_epochs if self.tuner == "hyperband" else self.epochs


def build_parser() -> ArgumentParser:
    """The ``python -m tuning.search`` argument parser (imports nothing heavy).

    Example:
        >>> args = build_parser().parse_args(["--tuner", "hyperband", "--max-epochs", "4"])
        >>> args.tuner, args.max_epochs
        ('hyperband', 4)
    """
    parser = ArgumentParser(
        prog=PROG,
        description=(
            "Search the hyperparameters of a kerasdnn dense classifier with KerasTuner,\n"
            "then retrain the best configuration on train + validation.\n"
            "Writes <directory>/<project-name>/{trials.csv,search.png,best/}."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  python -m tuning.search --tuner random --max-trials 6 --epochs 3 --dataset digits\n"
            "  python -m tuning.search --tuner hyperband --max-epochs 4 --dataset digits\n"
            "  python -m tuning.search --space space.json   # narrow the search space\n"
            "distributed (one chief, N workers; same command plus):\n"
            "  python -m tuning.search ... --chief 0.0.0.0:8000\n"
            "  python -m tuning.search ... --chief CHIEF_HOST:8000 --worker tuner1\n"
            "  python -m tuning.search ... --workers 2   # both on this host\n"
            "rerun the same command to continue an interrupted search"
        ),
    )
    search = parser.add_argument_group("search")
    search.add_argument("--tuner", choices=TUNERS, default="random",
                        help="search algorithm (default: random)")
    search.add_argument("--max-trials", type=positive_int,
                        help=f"trials in all, resumed ones included; random and bayesian "
                        f"(default: {DEFAULT_MAX_TRIALS})")
    search.add_argument("--epochs", type=positive_int,
                        help=f"epochs per trial; random and bayesian (default: {DEFAULT_EPOCHS})")
    search.add_argument("--max-epochs", type=positive_int,
                        help=f"epochs of the longest trial; hyperband "
                        f"(default: {DEFAULT_MAX_EPOCHS})")
    search.add_argument("--factor", type=_factor,
                        help=f"reduction factor between brackets; hyperband "
                        f"(default: {DEFAULT_FACTOR})")
    search.add_argument("--objective", choices=OBJECTIVES, default="val_accuracy",
                        help="what the search optimizes: maximized, or minimized for "
                        "val_loss (default: val_accuracy)")
    search.add_argument("--executions-per-trial", type=positive_int, default=1,
                        help="trainings per trial from different initial weights, "
                        "scores averaged (default: 1)")
    search.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE",
                        help="stop a trial after PATIENCE epochs without a better objective "
                        "(default: off)")
    search.add_argument("--space", metavar="FILE.json",
                        help="narrow the search space: {\"name\": value | [values] | "
                        "{\"min\": …, \"max\": …}} (default: the full space)")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=TrainConfig.dataset,
                      help="dataset name: mnist, fashion_mnist, digits, tfds:NAME, idx:DIR, "
                      "npz:PATH, or auto (default: auto)")
    data.add_argument("--seed", type=_seed, default=TrainConfig.seed,
                      help=f"non-zero seed of the search, the weights, the shuffling and the "
                      f"split (default: {TrainConfig.seed})")
    output = parser.add_argument_group("output")
    output.add_argument("--directory", default="runs/tuning", metavar="DIR",
                        help="where search projects live (default: runs/tuning)")
    output.add_argument("--project-name", metavar="NAME",
                        help="the search's folder in DIR (default: <dataset>-<tuner>)")
    output.add_argument("--overwrite", action="store_true",
                        help="start the search over instead of continuing it")
    distributed = parser.add_argument_group("distributed (KerasTuner chief/worker mode)")
    distributed.add_argument("--chief", type=_address, metavar="HOST:PORT",
                             help="alone: run the chief (the oracle) and serve on HOST:PORT; "
                             "with --worker: the chief to connect to")
    distributed.add_argument("--worker", type=_worker_id, metavar="ID",
                             help="run trials for the chief given by --chief, as tuner ID "
                             "(e.g. tuner1)")
    distributed.add_argument("--workers", type=positive_int, metavar="N",
                             help="start a chief on 127.0.0.1 and N workers on this host, "
                             "each on its own GPU or its share of the CPU cores")
    return parser


def options_from_args(args: argparse.Namespace) -> SearchOptions:
    """Check the combination of flags and fill in the defaults that depend on ``--tuner``.

    Example:
        >>> options = options_from_args(build_parser().parse_args(["--dataset", "digits"]))
        >>> options.max_trials, options.epochs, options.project_name
        (10, 10, 'digits-random')
    """
    options = SearchOptions(**vars(args))
    if options.tuner == "hyperband":
        given = [flag for flag, value in (("--max-trials", options.max_trials),
                                          ("--epochs", options.epochs)) if value is not None]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} do not apply to --tuner hyperband: "
                "it sets the trials and their epochs from --max-epochs and --factor"
            )
        options.max_epochs = options.max_epochs or DEFAULT_MAX_EPOCHS
        options.factor = options.factor or DEFAULT_FACTOR
    else:
        given = [flag for flag, value in (("--max-epochs", options.max_epochs),
                                          ("--factor", options.factor)) if value is not None]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} apply to --tuner hyperband only; "
                f"--tuner {options.tuner} uses --max-trials and --epochs"
            )
        options.max_trials = options.max_trials or DEFAULT_MAX_TRIALS
        options.epochs = options.epochs or DEFAULT_EPOCHS
        options.factor = DEFAULT_FACTOR
    if options.workers is not None and (options.chief is not None or options.worker is not None):
        raise ConfigError("--workers starts its own chief and workers on this host; "
                          "drop --chief and --worker, or drop --workers")
    if options.worker is not None and options.chief is None:
        raise ConfigError("--worker needs --chief HOST:PORT: the chief to take trials from")
    if options.worker is not None and options.overwrite:
        raise ConfigError("--overwrite is for the chief only; start workers without it")
    if options.project_name is None:
        options.project_name = f"{_slug(options.dataset)}-{options.tuner}"
    elif not options.project_name.strip() or "/" in options.project_name:
        raise ConfigError(f"--project-name must be a folder name, got {options.project_name!r}")
    TrainConfig(dataset=options.dataset, seed=options.seed,
                early_stopping=options.early_stopping)  # the dataset name is checked here
    return options


def set_distributed_environment(options: SearchOptions) -> None:
    """Set KerasTuner's ``KERASTUNER_*`` variables for ``--chief`` / ``--worker``.

    Example:
        >>> options = options_from_args(build_parser().parse_args(
        ...     ["--chief", "127.0.0.1:8000", "--worker", "tuner1"]))
        >>> set_distributed_environment(options)
        >>> os.environ["KERASTUNER_TUNER_ID"], os.environ["KERASTUNER_ORACLE_PORT"]
        ('tuner1', '8000')
    """
    if options.chief is None:
        _role_from_environment(options)
        return
    host, port = options.chief
    os.environ["KERASTUNER_TUNER_ID"] = options.worker or "chief"
    os.environ["KERASTUNER_ORACLE_IP"] = host
    os.environ["KERASTUNER_ORACLE_PORT"] = str(port)


def _role_from_environment(options: SearchOptions) -> None:
    """KerasTuner's variables set by hand (no --chief): take the role they give."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return
    try:
        options.chief = (os.environ["KERASTUNER_ORACLE_IP"],
                         int(os.environ["KERASTUNER_ORACLE_PORT"]))
        tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    except (KeyError, ValueError):
        raise ConfigError(
            "KERASTUNER_ORACLE_IP is set but KERASTUNER_ORACLE_PORT or KERASTUNER_TUNER_ID is "
            "missing or wrong; use --chief HOST:PORT [--worker ID] instead"
        ) from None
    options.worker = None if "chief" in tuner_id else tuner_id


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
        stored = json.loads(stored_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{stored_path} is unreadable ({error}); pass --overwrite to "
                          "start the search over") from None
    changed = [key for key in settings if stored.get(key) != settings[key]]
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

    Example:
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
    import pipelines

    splits = pipelines.load(options.dataset, batch_size=None,
                            validation_split=VALIDATION_SPLIT, seed=options.seed)
    info = splits.info

    def fresh_train() -> Any:  # per training: a trial's epoch orders whatever ran before
        return pipelines.load(options.dataset, batch_size=None,
                              validation_split=VALIDATION_SPLIT, seed=options.seed).train

    if info.note:
        print(info.note)
    base_config = ModelConfig(
        input_shape=tuple(info.input_shape),
        num_classes=info.num_classes,
        seed=options.seed,
        metrics=("accuracy", "auc") if options.objective == "val_auc" else ("accuracy",),
    )

    from tuning.hypermodel import DNNHyperModel, make_tuner

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
    )
    messages: dict[str, str] = {}
    workers: dict[str, str] = {}
    if options.role != "worker":
        workers = record_workers(tuner.oracle, options.project_dir,
                                 "main" if options.role == "single" else None)
        atomic_write_json(options.project_dir / SETTINGS_FILE, settings)
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
        try:
            tuner.search(fresh_train, validation_data=splits.validation,
                         callbacks=_callbacks(options), verbose=0, **_epochs(options))
        except RuntimeError as error:
            if "consecutive failures" not in str(error):
                raise
            stopped = str(error).strip().splitlines()[0]
    if options.role == "worker":
        ran = len(messages)
        _say(f"worker {options.worker}: ran {ran} trial(s); the chief writes the results")
        return None
    return finish(tuner, options, space, base_config, messages, stopped, workers)


def finish(tuner: Any, options: SearchOptions, space: Space, base_config: ModelConfig,
           messages: dict[str, str], stopped: str | None,
           workers: dict[str, str] | None = None) -> Path:
    """Write trials.csv and search.png, print the ranked table, retrain the best trial."""
    from tuning.results import plot_search, ranked_table, trial_rows, write_trials_csv

    oracle = tuner.oracle
    rows = trial_rows(oracle.trials.values(), messages, workers)
    project_dir = options.project_dir
    write_trials_csv(project_dir / "trials.csv", rows)
    plot_search(project_dir / "search.png", rows, options.objective, options.direction)
    completed = [row for row in rows if row["status"] == "COMPLETED"]
    _say(f"{len(rows)} trial(s): {len(completed)} completed, "
         f"{len(rows) - len(completed)} failed; wrote {project_dir / 'trials.csv'} and "
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
    from kerasdnn.train import train

    values = best.hyperparameters.values
    model_config = space.model_config(values, base_config)
    target = options.project_dir / BEST_DIR
    for leftover in options.project_dir.glob(f"{SCRATCH_PREFIX}*"):  # a killed retraining's
        shutil.rmtree(leftover)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=options.project_dir))
    _say(f"retraining trial {best.trial_id} ({options.objective} {best.score:.4f}) on "
         f"train + validation for {options.train_epochs} epoch(s)")
    result = train(
        TrainConfig(
            dataset=options.dataset,
            epochs=options.train_epochs,
            batch_size=int(values["batch_size"]),
            validation_split=VALIDATION_SPLIT,
            seed=options.seed,
            out=str(scratch / BEST_DIR),
            early_stopping=options.early_stopping,
        ),
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tuning.search``; returns the exit status."""
    args = build_parser().parse_args(argv)
    with exit_on_user_error(PROG):
        options = options_from_args(args)
        space = load_space(options.space)
        if options.workers is not None:
            from tuning.workers import run_local_search

            check_backend()  # what the chief checks first, answered here before it starts
            check_writable_dir(options.project_dir, "--directory")
            check_resume(options, space)
            return run_local_search(list(sys.argv[1:] if argv is None else argv), options.workers)
        search(options, space)
    return 0


# --------------------------------------------------------------------------- helpers


def _print_trial(tuner: Any, trial: Any, messages: dict[str, str], options: SearchOptions,
                 message: str | None = None, workers: dict[str, str] | None = None) -> None:
    from tuning.results import format_values, trial_rows

    row = trial_rows([trial], {trial.trial_id: message or ""})[0]
    messages[trial.trial_id] = message or ""
    who = f"[{options.worker}] " if options.role == "worker" else ""
    seconds = "" if row["seconds"] is None else f" {row['seconds']:.1f}s"
    if row["status"] == "COMPLETED":
        best = tuner.oracle.get_best_trials(1)
        best_score = best[0].score if best and best[0].score is not None else row["score"]
        outcome = (f"{options.objective} {row['score']:.4f} (best {best_score:.4f})"
                   f"{seconds} {row['steps_per_epoch'] or 0:.0f} steps/epoch")
    else:
        error = _short_error(row["error"]) or "no details on the chief"
        outcome = f"{row['status'].lower()}{seconds}: {error}"
    ran_on = f" · on {workers[trial.trial_id]}" if workers and trial.trial_id in workers else ""
    _say(f"{who}trial {trial.trial_id}: {outcome} · "
         f"{format_values(trial.hyperparameters.values)}{ran_on}")


def _short_error(line: str) -> str:
    return re.sub(r"^[\w.]*\.(\w+:)", r"\1", line)


def _callbacks(options: SearchOptions) -> list[Any]:
    if options.early_stopping is None:
        return []
    import keras

    return [keras.callbacks.EarlyStopping(monitor=options.objective, mode=options.direction,
                                          patience=options.early_stopping)]


def _epochs(options: SearchOptions) -> dict[str, int]:
    return {} if options.tuner == "hyperband" else {"epochs": options.epochs}


def _say(text: str) -> None:
    print(text, flush=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(text).name if ":" in text else text) or "search"


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-zero integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError(
            "must be non-zero: KerasTuner replaces seed 0 by a random seed, which would make "
            "the search unrepeatable"
        )
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _factor(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2, got {text}")
    return value


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"must be HOST:PORT, e.g. 127.0.0.1:8000 or 0.0.0.0:8000, got {text!r}"
        )
    return host, int(port)


def _worker_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text) or "chief" in text:
        raise argparse.ArgumentTypeError(
            f"must be a name such as tuner1 (letters, digits, _ . -; not 'chief'), got {text!r}"
        )
    return text


if __name__ == "__main__":
    sys.exit(main())
