"""Fine-tuning: a new run's initial weights from a finished run's ``model.keras``.

:func:`initialize_from` (what ``--init-from RUN`` / ``train(init_from=...)`` does)
loads the source model (saved on any backend) and copies its weights into the new
model layer by layer:

* same input shape, hidden layers and classes: every layer's weights (batch-norm
  statistics included);
* other classes (their count or their names): every hidden layer's, while the
  output layer keeps its fresh initialization; a one-line note says so;
* another input shape or hidden-layer plan (units, batch normalization): a
  :class:`~kerasdnn.core.errors.ConfigError` naming both networks.

``freeze`` then marks the first N hidden layers (and their batch normalization,
which then uses its moving statistics and leaves them alone, as Keras's frozen
``BatchNormalization`` does) not trainable: every backend's step trains only
``trainable_variables`` (the PyTorch-native path declines such models and the
Keras path runs).  The source's path and the SHA-256 of its ``model.keras`` are
recorded in ``config.json`` (:func:`source_record`); a resumed run whose source
changed since is refused.

Example:
    >>> import tempfile, kerasdnn
    >>> source = kerasdnn.train(dataset="digits", epochs=1, hidden_units=(8,), verbose=0,
    ...                         out=tempfile.mkdtemp() + "/a")
    >>> tuned = kerasdnn.train(dataset="digits", epochs=1, hidden_units=(8,), verbose=0,
    ...                        init_from=str(source.out_dir), freeze=1,
    ...                        out=tempfile.mkdtemp() + "/b")
    >>> tuned.model.get_layer("hidden_1").trainable
    False
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kerasdnn.core.config import ModelConfig
from kerasdnn.core.errors import ConfigError, RunDirectoryError
from kerasdnn.core.io import read_json
from kerasdnn.core.rundir import CONFIG_FILE, MODEL_FILE

__all__ = ["freeze_layers", "initialize_from", "model_file", "network_plan", "source_record"]

def model_file(source: str | Path) -> Path:
    """The ``model.keras`` of a finished run directory (or that file itself).

    Example:
        >>> model_file("/nonexistent")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ConfigError: --init-from /nonexistent: no model.keras ...
    """
    path = Path(source)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"--init-from {source}: no {MODEL_FILE} there; give the run "
                          "directory of a finished `python -m kerasdnn.train` run")
    return path


def network_plan(config: ModelConfig) -> str:
    """The shape of a network in one phrase: ``input 64 → 32 → 16 → 10 classes``.

    Example:
        >>> network_plan(ModelConfig(input_shape=(8, 8), hidden_units=(32,), batch_norm=True))
        'input (8, 8) → 32 → 10 classes, batch norm'
    """
    shape = (str(config.input_shape[0]) if len(config.input_shape) == 1
             else str(config.input_shape))
    text = " → ".join([f"input {shape}", *map(str, config.hidden_units),
                       f"{config.num_classes} classes"])
    return text + (", batch norm" if config.batch_norm else "")


def source_record(path: Path) -> dict[str, str]:
    """The ``init_from`` entry of ``config.json``: the source's path and the SHA-256
    of its ``model.keras``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": str(path.resolve()), "sha256": digest.hexdigest()}


def initialize_from(model: Any, source: str | Path, class_names: Sequence[str], *,
                    freeze: int = 0, recorded: dict[str, Any] | None = None,
                    note: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Copy the weights of the run ``source`` into the fresh ``model`` (a
    :class:`kerasdnn.DNN` of the data's input shape and classes ``class_names``),
    freeze its first ``freeze`` hidden layers, and return the ``config.json``
    record of the source (``recorded``: the record of a resumed run, whose source
    must not have changed).  ``note`` gets the one-line note of a replaced output layer.

    Raises:
        ConfigError: no ``model.keras`` there, or another input shape or hidden plan.
    """
    import keras

    path = model_file(source)
    record = source_record(path)
    if recorded is not None and recorded.get("sha256") != record["sha256"]:
        raise RunDirectoryError(f"cannot resume: {path} changed since this run started from it "
                                "(its SHA-256 differs); start a new run with another --out")
    try:
        loaded = keras.saving.load_model(path, compile=False)
        source_config = loaded.model_config
    except Exception as error:  # any loading failure: one line, the file named
        raise ConfigError(f"--init-from {source}: cannot load {path} "
                          f"({type(error).__name__}: {error}); give a finished run") from None
    target_config: ModelConfig = model.model_config
    if _plan_key(source_config) != _plan_key(target_config):
        raise ConfigError(
            f"--init-from {source}: its network is {network_plan(source_config)}, this run's "
            f"is {network_plan(target_config)}; the input shape and hidden layers must match")
    source_names = _class_names(path.parent, source_config)
    same_head = (source_config.num_classes == target_config.num_classes
                 and (source_names is None or list(source_names) == list(map(str, class_names))))
    for layer in loaded.layers:
        if layer.weights and (same_head or layer.name != "logits"):
            model.get_layer(layer.name).set_weights(layer.get_weights())
    record["head"] = "kept" if same_head else "replaced"
    if not same_head and note is not None:
        note(f"--init-from {source}: its {source_config.num_classes} classes differ from this "
             f"run's {target_config.num_classes}; the output layer starts from fresh weights")
    freeze_layers(model, freeze)
    return record


def freeze_layers(model: Any, count: int) -> None:
    """Mark the first ``count`` hidden layers of ``model`` (and their batch
    normalization) not trainable.

    Example:
        >>> import kerasdnn
        >>> model = kerasdnn.build_model(input_shape=(4,), hidden_units=(3, 2))
        >>> freeze_layers(model, 1)
        >>> [layer.trainable for layer in model.layers[1:]]
        [False, True, True]
    """
    hidden = len(model.model_config.hidden_units)
    if count > hidden:
        raise ConfigError(f"freeze must be at most the number of hidden layers ({hidden}), "
                          f"got {count}")
    for number in range(1, count + 1):
        for name in (f"hidden_{number}", f"batch_norm_{number}"):
            with contextlib.suppress(ValueError):  # no batch normalization in this model
                model.get_layer(name).trainable = False


def _plan_key(config: ModelConfig) -> tuple[Any, ...]:
    return (math.prod(config.input_shape), config.input_shape, config.hidden_units,
            config.batch_norm)


def _class_names(run_dir: Path, config: ModelConfig) -> list[str] | None:
    """The class names the source run recorded (``None`` when it has no config.json)."""
    try:
        record = read_json(run_dir / CONFIG_FILE)
        return [str(name) for name in record["dataset"]["class_names"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
