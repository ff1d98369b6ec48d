"""A small reader for the IDX format of the MNIST files (plain or gzipped).

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the values in C order.  The reader checks
the magic number, the type code, the dimensions and that the payload has
exactly the announced length, and raises :class:`DataFormatError` otherwise.

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big") + bytes([7, 1, 2]))
    >>> read_idx(path)
    array([7, 1, 2], dtype=uint8)
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from pipelines.errors import DataFormatError

__all__ = ["GZIP_MAGIC", "IDX_DTYPES", "find_idx_file", "idx_header", "read_idx"]

# Type code (third byte of the magic number) -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataFormatError(f"IDX file {path} does not exist: check the folder name")
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(
            f"IDX file {path} is a truncated or corrupt gzip file ({error}): download it again"
        ) from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into a NumPy array in native byte order.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t10k-labels-idx1-ubyte"
        >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 1, 4]))  # ubyte, 1 dim, 3
        >>> read_idx(path).tolist()
        [7, 1, 4]
    """
    path = Path(path)
    raw = _read_bytes(path)
    shape, dtype, header_size = idx_header(path, raw, len(raw))
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def idx_header(path: Path, head: bytes, size: int) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, big-endian dtype, header size in bytes)`` of the IDX file ``path`` of
    ``size`` bytes (uncompressed) that starts with ``head`` (at least its header);
    :class:`DataFormatError` unless the header is sound and the data exactly as long
    as it announces.

    Example:
        >>> idx_header(Path("labels"), bytes([0, 0, 8, 1, 0, 0, 0, 3]), 11)
        ((3,), dtype('uint8'), 8)
    """
    if size < 4:
        raise DataFormatError(
            f"IDX file {path} is truncated: {size} bytes, no header; download it again"
        )
    zero1, zero2, type_code, ndim = head[:4]
    if zero1 != 0 or zero2 != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DataFormatError(
            f"IDX file {path} has a wrong magic number 0x{head[:4].hex()} (expected "
            "0x0000TTNN with type TT in 08,09,0b,0c,0d,0e): it is not an IDX file; give the "
            "MNIST IDX files (download them again)"
        )
    header_size = 4 + 4 * ndim
    if size < header_size:
        raise DataFormatError(
            f"IDX file {path} is truncated inside its {ndim} dimensions; download it again"
        )
    shape = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = size - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise DataFormatError(
            f"IDX file {path} is {problem}: header {shape} needs {expected} bytes of "
            f"data, found {actual}; download it again"
        )
    return shape, dtype, header_size


def find_idx_file(folder: str | os.PathLike[str], stem: str, kind: str) -> Path:
    """Find ``<stem>-<kind>-ubyte[.gz]`` (or ``<stem>.<kind>-ubyte``) in ``folder``.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> (folder / "train-images-idx3-ubyte.gz").touch()
        >>> find_idx_file(folder, "train-images", "idx3").name
        'train-images-idx3-ubyte.gz'
    """
    folder = Path(folder)
    names = [f"{stem}{sep}{kind}-ubyte{gz}" for sep in ("-", ".") for gz in ("", ".gz")]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataFormatError(
        f"IDX file {stem}-{kind}-ubyte[.gz] is missing in {folder}: the folder needs "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte (plain or .gz)"
    )
