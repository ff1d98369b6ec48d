"""The flags of a training run, shared by the commands that start one
(``python -m kerasdnn.train``, ``python -m kerasdnn.compare``): the parser
(:func:`training_parser`) and the settings it gives (:func:`configs_from_args`,
``--config`` files included).  Commands only; nothing heavy is imported.

Example:
    >>> args = training_parser("demo", "", "").parse_args(["--lr", "0.1", "--seed", "7"])
    >>> configs_from_args(args)
    ({'seed': 7}, {'learning_rate': 0.1, 'seed': 7})
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kerasdnn.cli import (
    ArgumentParser,
    comma_ints,
    non_negative_int,
    positive_int,
    read_json_file,
    setting,
)
from kerasdnn.core.config import (
    ACTIVATIONS,
    DATA_FIELDS,
    INPUT_PATHS,
    LR_SCHEDULES,
    OPTIMIZERS,
    SCALES,
    ModelConfig,
    TrainConfig,
    config_sections,
    setting_problem,
)
from kerasdnn.core.errors import ConfigError
from kerasdnn.core.rundir import read_run_config
from kerasdnn.training.run import SETTINGS, split_settings

__all__ = ["configs_from_args", "training_parser"]


def training_parser(prog: str, description: str, epilog: str) -> ArgumentParser:
    """An argument parser with every flag of a training run (imports nothing heavy):
    what ``python -m kerasdnn.train`` and ``python -m kerasdnn.compare`` take.
    Each flag's ``dest`` is its config field; only the flags given are set.

    Example:
        >>> parser = training_parser("demo", "", "")
        >>> vars(parser.parse_args(["--epochs", "3", "--hidden", "64,32"]))
        {'epochs': 3, 'hidden_units': (64, 32)}
    """
    t, m = TrainConfig, ModelConfig
    parser = ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
        epilog=epilog,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help=f"dataset name: mnist, fashion_mnist, digits, tfds:NAME, "
                      f"idx:DIR, npz:PATH, csv:PATH, parquet:PATH, or auto "
                      f"(default: {t.dataset})")
    data.add_argument("--target", metavar="COLUMN", type=setting("target", str),
                      help="a table's label column (required for csv: and parquet:)")
    data.add_argument("--drop", metavar="COL,...", type=setting("drop", _comma_names),
                      help="a table's columns to leave out")
    data.add_argument("--test-split", type=setting("test_split", float),
                      help=f"fraction of a table's rows held out for test, stratified "
                      f"(default: {t.test_split})")
    data.add_argument("--test-data", metavar="TABLE", type=setting("test_data", str),
                      help="a table's test rows from another file, csv:PATH or parquet:PATH "
                      "(default: --test-split of the rows)")
    data.add_argument("--features", metavar="FILE.json",
                      help='a table\'s column kinds, {"column": "numeric" | "categorical" | '
                      '"drop"} (default: inferred)')
    data.add_argument("--stream", action="store_true",
                      help="read a csv: or parquet: table, an npz: file or an idx: folder "
                      "piece by piece instead of whole, for data larger than memory (README: "
                      "Data larger than memory; default: off)")
    data.add_argument("--shuffle-buffer", type=setting("shuffle_buffer"), metavar="ROWS",
                      help="with --stream, the rows shuffled together (default: 65536)")
    data.add_argument("--validation-split", type=setting("validation_split", float),
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
    run.add_argument("--epochs", type=setting("epochs"), help=f"epochs (default: {t.epochs})")
    run.add_argument("--batch-size", type=setting("batch_size"),
                     help=f"examples per step (default: {t.batch_size})")
    run.add_argument("--seed", type=setting("seed"), help=f"seed of weights, shuffling and split "
                     f"(default: {t.seed})")
    run.add_argument("--early-stopping", type=setting("early_stopping"), metavar="PATIENCE",
                     help="stop after PATIENCE epochs without a better validation loss "
                     "(default: off)")
    run.add_argument("--steps-per-execution", type=setting("steps_per_execution"),
                     help="training steps per call "
                     f"(default: {m.steps_per_execution})")
    run.add_argument("--input-path", choices=INPUT_PATHS,
                     help="how the training examples reach the step: resident (kept on the "
                     "device, each batch gathered there; on TensorFlow with jit_compile "
                     "only), stream (tf.data, a batch or block at a time), or auto: "
                     "resident where it can run and fits "
                     f"a quarter of the free device memory (default: {t.input_path})")
    run.add_argument("--class-weight", type=class_weight_flag, metavar="WEIGHTS",
                     help="none, balanced (n / (classes * count) on the training labels), or "
                     'a JSON object such as \'{"0": 1, "7": 5}\' (class name or index: weight; '
                     "default: none)")
    tune = parser.add_argument_group("fine-tuning (README: Fine-tuning)")
    tune.add_argument("--init-from", metavar="RUN",
                      help="start from the weights of a finished run's model.keras (any "
                      "backend); other classes get a fresh output layer (default: fresh weights)")
    tune.add_argument("--freeze", type=setting("freeze"), metavar="N",
                      help="with --init-from, do not train the first N hidden layers (default: 0)")
    scale = parser.add_argument_group("scale out (README: Scale out)")
    scale.add_argument("--data-parallel", action="store_true",
                       help="one model replica per device, each batch split across them "
                       "(PyTorch: one device per process, under torchrun; default: off)")
    scale.add_argument("--devices", type=setting("devices"), metavar="N",
                       help="with --data-parallel, the first N devices; without accelerators, "
                       "N virtual CPU devices (default: all devices)")
    scale.add_argument("--coordinator", metavar="HOST:PORT",
                       help="multi-process run (JAX, PyTorch): process 0's address, the same "
                       "in every process (with --num-processes, --process-id, "
                       "--data-parallel, --out)")
    scale.add_argument("--num-processes", type=positive_int, metavar="N",
                       help="multi-process run: how many processes")
    scale.add_argument("--process-id", type=non_negative_int, metavar="I",
                       help="multi-process run: this process's index, 0 to N-1")
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", dest="hidden_units", metavar="UNITS",
                       type=setting("hidden_units", comma_ints),
                       help=f"hidden layer sizes (default: "
                       f"{','.join(map(str, m.hidden_units))})")
    model.add_argument("--activation", choices=ACTIVATIONS,
                       help=f"hidden activation (default: {m.activation})")
    model.add_argument("--dropout", type=setting("dropout", float),
                       help=f"dropout rate (default: {m.dropout})")
    model.add_argument("--l2", type=setting("l2", float), help=f"L2 penalty (default: {m.l2})")
    model.add_argument("--batch-norm", action="store_true",
                       help="batch normalization after each hidden layer (default: off)")
    model.add_argument("--mixed-precision", action="store_true",
                       help="float16 compute with loss scaling (default: off)")
    optim = parser.add_argument_group("optimizer")
    optim.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default: {m.optimizer})")
    optim.add_argument("--lr", dest="learning_rate", metavar="LR",
                       type=setting("learning_rate", float),
                       help=f"learning rate (default: {m.learning_rate})")
    optim.add_argument("--momentum", type=setting("momentum", float),
                       help=f"SGD momentum (default: {m.momentum})")
    optim.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                       help="constant; cosine (to --min-lr at the last epoch); step (times "
                       "--lr-drop every --lr-drop-every epochs); plateau (times --lr-drop after "
                       f"--lr-drop-every epochs without a better val_loss) (default: "
                       f"{m.lr_schedule})")
    optim.add_argument("--warmup-epochs", type=setting("warmup_epochs"), metavar="N",
                       help="linear warm-up from 0 over the first N epochs "
                       f"(default: {m.warmup_epochs})")
    optim.add_argument("--min-lr", type=setting("min_lr", float), metavar="LR",
                       help=f"lowest rate of cosine, step and plateau (default: {m.min_lr})")
    optim.add_argument("--lr-drop", type=setting("lr_drop", float), metavar="FACTOR",
                       help=f"factor of a step or plateau drop (default: {m.lr_drop})")
    optim.add_argument("--lr-drop-every", type=setting("lr_drop_every"), metavar="EPOCHS",
                       help="epochs between step drops; plateau's patience "
                       f"(default: {m.lr_drop_every})")
    optim.add_argument("--clipnorm", type=setting("clipnorm", float),
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
    """``(train settings, model settings)`` from parsed flags and ``--config``: the
    flags whose ``dest`` is a config field (others, such as ``--resume`` or those of a
    command that extends this parser, are left out).

    With ``--resume`` and no ``--config``, the settings saved in the run are the base.
    """
    given = vars(args)
    if "init_from" in given and given.get("resume"):
        raise ConfigError("--init-from starts a new run and --resume continues one from "
                          "its own checkpoint: leave out --init-from (the run remembers it)")
    train_values: dict[str, Any] = {}
    model_values: dict[str, Any] = {}
    if "config" in given:
        train_values, model_values = _read_config_file(Path(given["config"]))
    elif given.get("resume") and "out" in given:
        record = read_run_config(Path(given["out"]))
        train_values, model_values = dict(record["train"]), dict(record["model"])
    flag_train, flag_model = split_settings(
        {key: value for key, value in given.items() if key in SETTINGS})
    if isinstance(flag_train.get("features"), str):  # --features FILE.json: its mapping
        flag_train["features"] = _read_features(Path(flag_train["features"]))
    return {**train_values, **flag_train}, {**model_values, **flag_model}


def class_weight_flag(text: str) -> str | dict[str, float] | None:
    """argparse type of ``--class-weight``: ``none``, ``balanced`` or a JSON object.

    Example:
        >>> class_weight_flag("none"), class_weight_flag('{"0": 2}')
        (None, {'0': 2})
    """
    if text == "none":
        return None
    value: Any = text
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f"is not a valid JSON object ({error.msg})") from None
    if isinstance(value, dict):
        value = {str(key): weight for key, weight in value.items()}
    problem = setting_problem("class_weight", value, null=False)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{problem} or none, got {text}")
    return value


def _comma_names(text: str) -> tuple[str, ...]:
    """argparse type: ``"id,when"`` → ``("id", "when")``."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _read_features(path: Path) -> dict[str, str]:
    """The ``{column: kind}`` mapping of ``--features FILE.json``, checked by the
    ``features`` field's rule."""
    spec = read_json_file(path, "--features", '{"zip": "categorical", "id": "drop"}')
    problem = setting_problem("features", spec, null=False)
    if problem is not None:
        raise ConfigError(f"--features {path}: {problem}, got {json.dumps(spec)[:80]}")
    return spec


def _read_config_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    record = read_json_file(path, "--config", "a run's config.json")
    try:
        train_values, model_values = config_sections(record)
    except ConfigError as error:
        raise ConfigError(f"--config {path}: {error}") from None
    train_values.pop("out", None)  # a run's own directory is not a setting to repeat
    for field in DATA_FIELDS:
        model_values.pop(field, None)
    try:  # unknown keys and bad values: named here
        TrainConfig.from_dict(train_values)
        ModelConfig.from_dict(model_values)
    except ConfigError as error:
        raise ConfigError(f"--config {path}: {error}") from None
    return train_values, model_values
