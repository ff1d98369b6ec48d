"""TFDS image-classification datasets (``mnist``, ``fashion_mnist``, ``tfds:NAME``).

The dataset is read from the TFDS data dir (``data_dir``, default TFDS's own,
which honours ``TFDS_DATA_DIR``).  When it is not prepared there, it is
downloaded and prepared, from the original archive files in ``manual_dir`` when
they are there (TFDS verifies their checksums), else from the download hosts.
Offline, TFDS would retry for minutes: the hosts are probed first
(:func:`pipelines.network.host_reachable`, a few seconds at most) and an
unreachable host raises :class:`DatasetUnavailableError` at once.

The whole split is read into memory as NumPy arrays (dense classifiers train on
small images; the pipeline builder then shuffles and batches them).

Reading or probing asks TFDS's download hosts first, so the examples are in
``tests/pipelines/test_tfds.py`` (under ``tfds.testing.mock_data``, hosts stubbed).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines import network
from pipelines.errors import DatasetUnavailableError, InvalidDataError, UnknownDatasetError
from pipelines.info import RawData
from pipelines.splitting import split_indices
from pipelines.tf_setup import tf  # noqa: F401  (TF configured before TFDS imports it)

__all__ = ["TEST_FRACTION", "TEST_SEED", "is_available", "read_tfds", "ways_out"]

# Datasets without a test split get one carved from train, the same every time.
TEST_FRACTION = 0.2
TEST_SEED = 0
DEFAULT_HOST = ("storage.googleapis.com", 443)
READ_CHUNK = 10_000


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    """TFDS logs INFO/WARNING lines through absl for routine events: keep them out."""
    from absl import logging as absl_logging

    previous = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(previous)


def _builder(name: str, data_dir: str | os.PathLike[str] | None):  # -> tfds.core.DatasetBuilder
    import tensorflow_datasets as tfds

    try:
        with _quiet_absl():
            return tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    except tfds.core.DatasetNotFoundError:
        raise UnknownDatasetError(
            f"TFDS has no dataset {name!r}: see `tfds build --help` or "
            "https://www.tensorflow.org/datasets/catalog for the names"
        ) from None


def _manual_files_present(builder, manual_dir: str | os.PathLike[str] | None) -> bool:
    if manual_dir is None:
        return False
    infos = _url_infos(builder)
    if not infos:
        return Path(manual_dir).is_dir() and any(Path(manual_dir).iterdir())
    return all((Path(manual_dir) / info.filename).is_file() for info in infos.values())


def _url_infos(builder) -> dict:
    try:
        return dict(builder.url_infos or {})
    except Exception:  # a dataset without a checksums file: TFDS decides the URLs in code
        return {}


def ways_out(name: str) -> str:
    """The three ways to get an unprepared dataset, as one clause.

    Example:
        >>> "TFDS_DATA_DIR" in ways_out("mnist")
        True
    """
    return (
        f"go online once (e.g. `--dataset {name}`) so TFDS can download it, point "
        "TFDS_DATA_DIR (or --data-dir) at a folder where it is prepared, or give the "
        "folder of its original archive files as --manual-dir"
    )


def _unreachable_hosts(builder) -> list[str]:
    hosts = network.hosts_of(list(_url_infos(builder))) or [DEFAULT_HOST]
    return [f"{host}:{port}" for host, port in hosts if not network.host_reachable(host, port)]


def is_available(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    manual_dir: str | os.PathLike[str] | None = None,
) -> tuple[bool, str]:
    """Whether ``name`` is prepared or can be prepared now, and where it would live.
    """
    builder = _builder(name, data_dir)
    root = str(builder.data_dir_root)
    with _quiet_absl():
        if builder.is_prepared() or _manual_files_present(builder, manual_dir):
            return True, root
    return not _unreachable_hosts(builder), root


def _prepare(builder, name: str, manual_dir: str | os.PathLike[str] | None) -> None:
    import tensorflow_datasets as tfds

    root = builder.data_dir_root
    with _quiet_absl():
        if builder.is_prepared():
            return
        if not _manual_files_present(builder, manual_dir):
            unreachable = _unreachable_hosts(builder)
            if unreachable:
                missing = ""
                if manual_dir is not None:
                    names = [info.filename for info in _url_infos(builder).values()]
                    files = ", ".join(names) or "the files"
                    missing = f" (--manual-dir {manual_dir} lacks {files})"
                raise DatasetUnavailableError(
                    f"dataset {name!r} is not prepared in {root}{missing} and its download "
                    f"host {', '.join(unreachable)} cannot be reached: {ways_out(name)}"
                )
        config = tfds.download.DownloadConfig(
            manual_dir=None if manual_dir is None else os.fspath(manual_dir)
        )
        try:
            builder.download_and_prepare(download_config=config)
        except (
            OSError,
            tfds.core.download.download_manager.NonMatchingChecksumError,
            tfds.core.download.util.DownloadError,
        ) as error:
            message = " ".join(str(error).split())[:300]
            raise DatasetUnavailableError(
                f"dataset {name!r} could not be prepared in {root} ({message}): {ways_out(name)}"
            ) from None


def _class_label(builder, name: str):
    import tensorflow_datasets as tfds

    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2:
        raise InvalidDataError(
            f"TFDS dataset {name!r} has no (image, label) supervised keys: "
            "it is not an image-classification dataset"
        )
    feature = builder.info.features[keys[1]]
    if not isinstance(feature, tfds.features.ClassLabel):
        raise InvalidDataError(
            f"TFDS dataset {name!r}: label {keys[1]!r} is not a ClassLabel; "
            "pick an image-classification dataset"
        )
    return feature


def _read_split(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    # Whole-split batches (batch_size=-1) rely on the recorded split sizes; reading
    # in chunks does not (and works on mocked builders too).
    with _quiet_absl():
        dataset = builder.as_dataset(split=split, as_supervised=True).batch(READ_CHUNK)
        chunks = list(dataset.as_numpy_iterator())
    if not chunks:
        raise InvalidDataError(f"TFDS dataset {builder.name!r}: the {split} split is empty")
    return np.concatenate([x for x, _ in chunks]), np.concatenate([y for _, y in chunks])


def read_tfds(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    manual_dir: str | os.PathLike[str] | None = None,
    source: str | None = None,
) -> RawData:
    """Prepare (if needed) and read a TFDS image-classification dataset into memory.
    """
    builder = _builder(name, data_dir)
    _prepare(builder, name, manual_dir)
    labels = _class_label(builder, name)
    splits = builder.info.splits
    x_train, y_train = _read_split(builder, "train")
    note = None
    if splits and "test" not in splits:
        keep, test = split_indices(y_train, TEST_FRACTION, seed=TEST_SEED, what="test")
        x_train, y_train, x_test, y_test = (
            x_train[keep],
            y_train[keep],
            x_train[test],
            y_train[test],
        )
        note = (
            f"{name} has no test split: a fixed stratified {TEST_FRACTION:.0%} of train "
            "is the test split"
        )
    else:
        x_test, y_test = _read_split(builder, "test")
    value_max = 255.0 if x_train.dtype == np.uint8 else 1.0
    return RawData(
        source=source or name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=[str(n) for n in labels.names],
        value_max=value_max,
        note=note,
    )
