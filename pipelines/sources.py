"""The registry of data sources: one name (or ``prefix:ARGUMENT``) → decoded NumPy arrays.

``python -m pipelines --list`` prints it.

Example:
    >>> [source.name for source in SOURCES][:3]
    ['auto', 'mnist', 'fashion_mnist']
    >>> read_source("digits").x_train.shape
    (1437, 8, 8)
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import (
    DataFormatError,
    DatasetUnavailableError,
    InvalidArgumentError,
    UnknownDatasetError,
)
from pipelines.idx import find_idx_file, read_idx
from pipelines.info import RawData
from pipelines.splitting import split_indices

__all__ = [
    "DIGITS_TEST_FRACTION", "SOURCES", "Source", "check_counts", "check_npz_keys", "describe",
    "idx_folder", "npz_file", "read_source",
]

DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

Reader = Callable[..., RawData]


@dataclasses.dataclass(frozen=True)
class Source:
    """One registry entry: ``name`` (``"idx:DIR"`` for a prefix taking an argument)."""

    name: str
    description: str
    read: Reader

    @property
    def prefix(self) -> str | None:
        return self.name.split(":", 1)[0] if ":" in self.name else None


def _read_digits(*, source: str = "digits", **_: object) -> RawData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.uint8)  # values 0..16
    labels = digits.target.astype(np.int64)
    train, test = split_indices(labels, DIGITS_TEST_FRACTION, seed=DIGITS_TEST_SEED, what="test")
    return RawData(
        source=source,
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
        class_names=[str(n) for n in digits.target_names],
        value_max=16.0,
        # 8x8 pixel counts work as tabular features: standardized, the seed network
        # reaches ~0.97 test accuracy in 10 epochs (~0.94 on [0, 1]).
        default_scale="standardize",
    )


def _value_max(x: np.ndarray) -> float:
    """What ``scale="unit"`` divides by: the dtype range for uint8, data max for other
    integers, 1 for floats (taken as already in [0, 1])."""
    if x.dtype == np.uint8:
        return 255.0
    if np.issubdtype(x.dtype, np.integer) and x.size:
        return float(max(int(x.max()), 1))
    return 1.0


def check_counts(what: str, x: Any, y: Any, where: str, fix: str) -> None:
    """Refuse labels that are not one class index per example of ``x``."""
    if y.ndim != 1:
        raise DataFormatError(
            f"{where}: {what} labels must be one class index per example, got shape "
            f"{y.shape}; give integer labels of shape (examples,) (one-hot: y.argmax(axis=1))"
        )
    if len(x) != len(y):
        raise DataFormatError(
            f"{where}: {len(x)} {what} images but {len(y)} {what} labels; {fix}"
        )


def idx_folder(argument: str) -> Path:
    """The folder of an ``idx:`` source, once it exists."""
    folder = Path(argument).expanduser()
    if not folder.is_dir():
        raise DataFormatError(
            f"idx: folder {folder} does not exist; give a folder of MNIST IDX files"
        )
    return folder


_NPZ_WANTED = f"a .npz file (np.savez) with arrays {', '.join(NPZ_KEYS)}, like Keras's mnist.npz"


def npz_file(argument: str) -> Path:
    """The path of an ``npz:`` source, once it is a zip archive."""
    path = Path(argument).expanduser()
    if not path.is_file():
        raise DataFormatError(f"npz: file {path} does not exist; give the path of {_NPZ_WANTED}")
    if not zipfile.is_zipfile(path):  # NumPy would try it as a pickle: never
        raise DataFormatError(f"npz: {path} is not a .npz archive; give {_NPZ_WANTED}")
    return path


def check_npz_keys(path: Path, keys: Sequence[str]) -> None:
    """Refuse an ``npz:`` archive whose arrays (``keys``) lack one of :data:`NPZ_KEYS`."""
    missing = [key for key in NPZ_KEYS if key not in keys]
    if missing:
        raise DataFormatError(f"npz: {path} lacks {', '.join(missing)}; give {_NPZ_WANTED}")


def _read_idx_dir(argument: str, *, source: str, **_: object) -> RawData:
    folder = idx_folder(argument)
    arrays = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        x = read_idx(find_idx_file(folder, f"{stem}-images", "idx3"))
        y = read_idx(find_idx_file(folder, f"{stem}-labels", "idx1"))
        check_counts(split, x, y, f"idx:{folder}", f"{stem}-images and {stem}-labels do not "
                      "belong together: put the images and labels files of one download there")
        arrays[split] = (x, y)
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    return RawData(
        source=source,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=None,  # the labels are the class indices
        value_max=_value_max(x_train),
    )


def _read_npz(argument: str, *, source: str, **_: object) -> RawData:
    path = npz_file(argument)
    try:
        with np.load(path, allow_pickle=False) as npz:
            check_npz_keys(path, npz.files)
            x_train, y_train, x_test, y_test = (np.asarray(npz[key]) for key in NPZ_KEYS)
            names = [str(n) for n in npz["class_names"]] if "class_names" in npz.files else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        if "pickle" in str(error):  # an object array: loading it would run pickled code
            raise DataFormatError(
                f"npz: {path} holds object arrays, which are never loaded (unpickling can run "
                "code); save numeric arrays (and class_names as strings) with np.savez"
            ) from None
        raise DataFormatError(
            f"npz: {path} is damaged or truncated ({error}); write it again with np.savez"
        ) from None
    fix = "x_{0} and y_{0} need one label per example".format
    check_counts("train", x_train, y_train, f"npz:{path}", fix("train"))
    check_counts("test", x_test, y_test, f"npz:{path}", fix("test"))
    return RawData(
        source=source,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=names,  # None: the labels are the class indices
        value_max=_value_max(x_train),
    )


def _read_tfds(argument: str, *, source: str, data_dir=None, manual_dir=None) -> RawData:
    from pipelines.tfds_source import read_tfds

    return read_tfds(argument, data_dir=data_dir, manual_dir=manual_dir, source=source)


def _read_named_tfds(name: str) -> Reader:
    def read(*, source: str, data_dir=None, manual_dir=None) -> RawData:
        return _read_tfds(name, source=source, data_dir=data_dir, manual_dir=manual_dir)

    return read


def _read_table(argument: str, *, source: str, **_: object) -> RawData:
    """Tables are split and encoded by :mod:`pipelines.tables` (``pipelines.load``),
    never read as arrays."""
    raise InvalidArgumentError(
        f"{source} is a table: load it with pipelines.load({source!r}, target=COLUMN) "
        "(--target COLUMN on the command line)")


def _read_auto(*, source: str = "auto", data_dir=None, manual_dir=None) -> RawData:
    from pipelines.tfds_source import is_available, read_tfds, ways_out

    available, root = is_available("mnist", data_dir=data_dir, manual_dir=manual_dir)
    reason = "is not prepared in {root} and cannot be downloaded (offline)"
    if available:
        try:
            return read_tfds("mnist", data_dir=data_dir, manual_dir=manual_dir, source="mnist")
        except DatasetUnavailableError:
            reason = "could not be prepared in {root}"
    raw = _read_digits(source="digits")
    raw.note = (
        f"auto: MNIST {reason.format(root=root)}, so the bundled 8x8 digits are used; "
        f"to get MNIST, {ways_out('mnist')}"
    )
    return raw


SOURCES: tuple[Source, ...] = (
    Source(
        "auto",
        "MNIST when prepared or downloadable, else the bundled digits (with a note)",
        _read_auto,
    ),
    Source(
        "mnist",
        "TFDS MNIST: 70,000 28x28 grey handwritten digits, 10 classes",
        _read_named_tfds("mnist"),
    ),
    Source(
        "fashion_mnist",
        "TFDS Fashion-MNIST: 70,000 28x28 grey clothing images, 10 classes",
        _read_named_tfds("fashion_mnist"),
    ),
    Source(
        "digits",
        "scikit-learn's bundled 1,797 8x8 digits (0..16), no network; test split "
        "= fixed stratified 20%",
        _read_digits,
    ),
    Source(
        "tfds:NAME",
        "any TFDS image-classification dataset (data_dir, manual_dir honoured)",
        _read_tfds,
    ),
    Source(
        "idx:DIR",
        "a folder of MNIST-format IDX files (train-/t10k- images and labels, plain or .gz; "
        "--stream reads plain ones piece by piece)",
        _read_idx_dir,
    ),
    Source("npz:PATH", "a Keras-style mnist.npz (x_train, y_train, x_test, y_test; --stream "
           "reads an uncompressed one, np.savez, piece by piece)", _read_npz),
    Source("csv:PATH", "a CSV table with a header row; needs --target COLUMN (README: Your "
           "own table)", _read_table),
    Source("parquet:PATH", "a Parquet table (a file, a folder of shards or a glob); needs "
           "--target COLUMN", _read_table),
)


def describe() -> list[tuple[str, str]]:
    """``(name, one-line description)`` for every source, as ``--list`` prints them.

    Example:
        >>> dict(describe())["digits"].startswith("scikit-learn")
        True
    """
    return [(source.name, source.description) for source in SOURCES]


def read_source(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    manual_dir: str | os.PathLike[str] | None = None,
) -> RawData:
    """Read the decoded arrays of ``name`` (a registry name or ``prefix:ARGUMENT``).

    Example:
        >>> read_source("digits").class_names[:3]
        ['0', '1', '2']
    """
    prefix, _, argument = str(name).partition(":")
    for source in SOURCES:
        if source.prefix is None and source.name == name:
            return source.read(source=name, data_dir=data_dir, manual_dir=manual_dir)
        if source.prefix is not None and source.prefix == prefix and argument:
            return source.read(argument, source=name, data_dir=data_dir, manual_dir=manual_dir)
    known = ", ".join(source.name for source in SOURCES)
    raise UnknownDatasetError(f"unknown dataset {name!r}; known: {known}")
