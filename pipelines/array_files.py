"""Where the arrays of an ``npz:`` file or an ``idx:`` folder lie on disk, so that
:mod:`pipelines.array_stream` reads row ranges of them and never a whole array.

An IDX file is a small header then raw big-endian values; an uncompressed NPZ
(``np.savez``) stores each member as a ``.npy`` file inside a ZIP_STORED zip: its
values start after the zip's local file header and the ``.npy`` header.  Both are
therefore one C-order block at a known offset (:class:`StoredArray`).  Compressed
members (``np.savez_compressed``) and gzipped IDX files have no such block: they are
refused with a one-line error that says how to store them.

Example:
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/m.npz"
    >>> x = np.arange(24, dtype=np.uint8).reshape(6, 2, 2)
    >>> np.savez(path, x_train=x, y_train=np.arange(6) % 2, x_test=x[:2], y_test=[0, 1])
    >>> stored = stored_arrays(f"npz:{path}")
    >>> stored.x_train.shape, stored.x_train.rows(4, 6)[:, 0, 0].tolist()
    ((6, 2, 2), [16, 20])
"""

from __future__ import annotations

import dataclasses
import math
import struct
import zipfile
from pathlib import Path

import numpy as np

from pipelines.errors import DataFormatError, InvalidArgumentError, InvalidDataError
from pipelines.idx import GZIP_MAGIC, find_idx_file, idx_header
from pipelines.sources import NPZ_KEYS, check_npz_keys, idx_folder, npz_file

__all__ = ["STREAMED_PREFIXES", "StoredArray", "StoredArrays", "stored_arrays"]

STREAMED_PREFIXES = ("npz", "idx")
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_HEAD_BYTES = 1024  # an IDX header: 4 + 4 * 255 dimensions at most


@dataclasses.dataclass(frozen=True)
class StoredArray:
    """A C-order array of ``shape`` and ``dtype`` stored at byte ``offset`` of ``path``."""

    path: Path
    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` in native byte order, read from the file alone.

        Positioned reads rather than slices of an ``np.memmap``: the pages a memmap
        touches stay in the process's resident memory until the kernel reclaims them,
        so the peak RSS of a pass would grow with the file.
        """
        stop = min(stop, len(self))
        count = max(stop - start, 0)
        values = np.fromfile(self.path, dtype=self.dtype, count=count * self.row_bytes
                             // self.dtype.itemsize,
                             offset=self.offset + start * self.row_bytes)
        return values.reshape(count, *self.shape[1:]).astype(self.dtype.newbyteorder("="),
                                                               copy=False)

    def memmap(self) -> np.ndarray:
        """The array memory-mapped read-only (for random access to a few rows).

        Example:
            >>> import tempfile
            >>> path = Path(tempfile.mkdtemp()) / "a"
            >>> _ = path.write_bytes(bytes(range(8)))
            >>> StoredArray(path, 2, np.dtype("u1"), (3, 2)).memmap()[2].tolist()
            [6, 7]
        """
        if not math.prod(self.shape):
            return np.zeros(self.shape, self.dtype)
        return np.memmap(self.path, self.dtype, "r", self.offset, self.shape)


@dataclasses.dataclass(frozen=True)
class StoredArrays:
    """The four arrays of a source (``x_train``, ``y_train``, ``x_test``, ``y_test``) and
    its class names (None: the labels are the class indices)."""

    source: str
    x_train: StoredArray
    y_train: StoredArray
    x_test: StoredArray
    y_test: StoredArray
    class_names: list[str] | None


def _npz_member(path: Path, archive: zipfile.ZipFile, key: str) -> StoredArray:
    info = archive.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise InvalidDataError(
            f"npz: {path} is compressed (np.savez_compressed), which cannot be read piece by "
            "piece; save it with np.savez (uncompressed), or leave out --stream")
    damaged = f"npz: {path} is damaged or truncated; write it again with np.savez"
    with open(path, "rb") as file:
        file.seek(info.header_offset)
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(
            file.read(_LOCAL_HEADER.size))
        if signature != b"PK\x03\x04":
            raise DataFormatError(damaged)
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        file.seek(start)
        try:
            version = np.lib.format.read_magic(file)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise DataFormatError(f"npz: {path} member {key} is a .npy of version "
                                      f"{version}; write it again with np.savez")
            shape, fortran_order, dtype = read_header(file)
        except ValueError:
            raise DataFormatError(damaged) from None
        offset = file.tell()
    if dtype.hasobject:
        raise DataFormatError(f"npz: {path} holds object arrays, which are never loaded "
                              "(unpickling can run code); save numeric arrays with np.savez")
    if fortran_order and len(shape) > 1:
        raise InvalidDataError(f"npz: {path} stores {key} in Fortran order, whose rows are "
                               f"not contiguous; save np.ascontiguousarray({key}) instead")
    if offset - start + math.prod(shape) * dtype.itemsize != info.file_size:
        raise DataFormatError(damaged)
    return StoredArray(path, offset, dtype, tuple(shape))


def _npz(argument: str, source: str) -> StoredArrays:
    path = npz_file(argument)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        check_npz_keys(path, [name.removesuffix(".npy") for name in names])
        arrays = [_npz_member(path, archive, key) for key in NPZ_KEYS]
    class_names = None
    if "class_names.npy" in names:  # small: read whole
        with np.load(path, allow_pickle=False) as npz:
            class_names = [str(name) for name in npz["class_names"]]
    return StoredArrays(source, *arrays, class_names)


def _idx_file(path: Path) -> StoredArray:
    with open(path, "rb") as file:
        head = file.read(_HEAD_BYTES)
    if head[:2] == GZIP_MAGIC:
        raise InvalidDataError(
            f"IDX file {path} is gzipped, which cannot be read piece by piece; gunzip it "
            f"(gunzip {path.parent}/*.gz), or leave out --stream")
    shape, dtype, header_size = idx_header(path, head, path.stat().st_size)
    return StoredArray(path, header_size, dtype, shape)


def _idx(argument: str, source: str) -> StoredArrays:
    folder = idx_folder(argument)
    arrays = [_idx_file(find_idx_file(folder, f"{stem}-{what}", kind))
              for stem in ("train", "t10k")
              for what, kind in (("images", "idx3"), ("labels", "idx1"))]
    return StoredArrays(source, *arrays, None)


def stored_arrays(name: str) -> StoredArrays:
    """The stored arrays of ``npz:PATH`` or ``idx:DIR`` (nothing read but headers).

    Example:
        >>> stored_arrays("digits")
        Traceback (most recent call last):
        pipelines.errors.InvalidArgumentError: stream (--stream) reads a table (csv:PATH, \
parquet:PATH), an npz:PATH or an idx:DIR piece by piece, not 'digits'; leave it out
    """
    prefix, _, argument = str(name).partition(":")
    if prefix not in STREAMED_PREFIXES or not argument:
        raise InvalidArgumentError(
            "stream (--stream) reads a table (csv:PATH, parquet:PATH), an npz:PATH or an "
            f"idx:DIR piece by piece, not {name!r}; leave it out")
    return (_npz if prefix == "npz" else _idx)(argument, str(name))
