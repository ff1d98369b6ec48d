"""The one data path: a run's settings (:class:`~kerasdnn.core.config.TrainConfig`) →
the arguments of :func:`pipelines.load`.

``kerasdnn.train``, ``kerasdnn.evaluate``, ``kerasdnn.export``, ``tuning`` and
the benchmarks all load through here, so a setting that changes what data a
run sees is mapped once.

Example:
    >>> from kerasdnn.core.config import TrainConfig
    >>> load_arguments(TrainConfig(dataset="digits"))["validation_split"]
    0.1
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerasdnn.core.config import TrainConfig
from kerasdnn.core.rundir import PREPROCESSING_FILE
from pipelines.constants import SHUFFLE_BUFFER

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.info import Splits

__all__ = ["load_arguments", "load_splits"]



def load_arguments(train_config: TrainConfig, **changes: Any) -> dict[str, Any]:
    """The source arguments of :func:`pipelines.load` (and of
    :func:`pipelines.builder.raw_source_and_scaling`) for a run's settings:
    ``name``, ``validation_split``, ``seed``, ``scale``, ``data_dir`` and
    ``manual_dir``; ``changes`` replace or add some (e.g. ``scale="unit"``).

    Example:
        >>> args = load_arguments(TrainConfig(dataset="digits", seed=7), scale="unit")
        >>> args["name"], args["seed"], args["scale"]
        ('digits', 7, 'unit')
    """
    arguments = {
        "name": train_config.dataset,
        "validation_split": train_config.validation_split,
        "seed": train_config.seed,
        "scale": train_config.scale,
        "data_dir": train_config.data_dir,
        "manual_dir": train_config.manual_dir,
    }
    return {**arguments, **_table_arguments(train_config), **changes}


def _table_arguments(train_config: TrainConfig) -> dict[str, Any]:
    """A table's own arguments (none for other sources, which would refuse them), with
    the run's fitted preprocessing when its directory has one: reused, never refit.

    Example:
        >>> _table_arguments(TrainConfig(dataset="csv:t.csv", target="y"))["target"]
        'y'
    """
    from pipelines.tables import is_table

    if not is_table(train_config.dataset) and train_config.dataset != "dataframe":
        given = {"target": train_config.target, "drop": train_config.drop,
                 "features": train_config.features, "test_data": train_config.test_data,
                 "stream": train_config.stream}
        arguments = {key: value for key, value in given.items() if value}  # refused by load
        if train_config.stream:  # npz:PATH or idx:DIR piece by piece, or refused by load
            arguments["shuffle_buffer"] = train_config.shuffle_buffer or SHUFFLE_BUFFER
        return arguments
    arguments: dict[str, Any] = {
        "target": train_config.target, "drop": train_config.drop,
        "features": train_config.features, "test_split": train_config.test_split,
        "test_data": train_config.test_data}
    if train_config.stream:
        arguments.update(stream=True, shuffle_buffer=train_config.shuffle_buffer
                         or SHUFFLE_BUFFER)
    if train_config.out is not None:
        saved = Path(train_config.out) / PREPROCESSING_FILE
        if saved.is_file():
            arguments["preprocessing"] = str(saved)
    return arguments


def load_splits(train_config: TrainConfig, *, repeat: bool = False, **changes: Any) -> Splits:
    """:func:`pipelines.load` of a run's data, batched by ``train_config.batch_size``
    (``changes`` replace arguments, e.g. ``batch_size=None`` for examples);
    ``repeat`` makes the training split an endless stream of epochs
    (``splits.stream``) that resumes exactly.

    Example:
        >>> splits = load_splits(TrainConfig(dataset="digits", batch_size=50), repeat=True)
        >>> splits.stream.batches_per_epoch, splits.info.scale
        (26, 'standardize')
    """
    import pipelines

    arguments = load_arguments(train_config, batch_size=train_config.batch_size, repeat=repeat)
    arguments.update(changes)
    return pipelines.load(**arguments)
