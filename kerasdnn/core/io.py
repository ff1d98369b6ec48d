"""The one JSON reader and the one atomic, durable file writer.

Writes: a temporary file in the same folder, flushed to the disk (``fsync``), renamed
onto the target, then the folder's entry flushed too (``fsync`` of the directory).
A crash, a SIGKILL or a power loss while writing never leaves half a file
behind: readers see either the previous content or the new one, and once a
write has returned its file survives a power loss (on file systems that honour
``fsync``, as ext4, XFS and APFS do).

Reads: :func:`read_json` (a file the project wrote) and :func:`read_json_file`
(a file a user names with a flag: each way it can be wrong is one line).

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_text(folder / "report.md", "# Report\\n")
    >>> (folder / "report.md").read_text()
    '# Report\\n'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kerasdnn.core.errors import ConfigError
from kerasdnn.training.faults import fault_point

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_path",
    "read_json",
    "read_json_file",
    "remove_temporaries",
]


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success flush it to the disk, rename
    it onto ``path`` and flush the folder (the module's durability promise).

    Use it for writers that want a file name (``model.save``, ``savefig``).  The
    temporary name keeps the suffix of ``path`` so that such writers pick the
    right format.  On an exception the temporary file is removed and ``path``
    is left untouched.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; give the usual 0666 & ~umask
        fsync_path(tmp)  # the content on the disk before the name points at it
        fault_point("atomic_replace")
        os.replace(tmp, target)
        fsync_path(target.parent)  # the rename itself on the disk
    finally:
        if tmp.exists():
            tmp.unlink()


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's content, or a folder's entries, to the disk (``fsync``).

    Example:
        >>> import tempfile
        >>> fsync_path(tempfile.gettempdir())
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files of :func:`atomic_path` that a killed process left in
    ``folder``; return them.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / ".report.k2j4.tmp.md").write_text("half")
        >>> [path.name for path in remove_temporaries(folder)]
        ['.report.k2j4.tmp.md']
    """
    removed = [path for path in Path(folder).glob(".*.tmp*") if path.is_file()]
    for path in removed:
        path.unlink()
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (:func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, default=_to_builtin) + "\n")


def _to_builtin(value: Any) -> Any:
    """JSON fallback for NumPy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON value in a file the project wrote (UTF-8).  Raises ``OSError`` when it
    cannot be read and ``ValueError`` when it is not JSON (``json.JSONDecodeError`` and
    ``UnicodeDecodeError`` are both): the caller says what that means for it.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.json"
        >>> atomic_write_json(path, {"epochs": 3})
        >>> read_json(path)
        {'epochs': 3}
    """
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_json_file(path: Path, flag: str, example: str) -> Any:
    """The JSON value in the file a flag names; each way it can be wrong is one
    :class:`~kerasdnn.core.errors.ConfigError` that says what to give instead (``example``).

    Example:
        >>> read_json_file(Path("/nonexistent.json"), "--config", "a run's config.json")
        Traceback (most recent call last):
        kerasdnn.core.errors.ConfigError: --config /nonexistent.json: no such file; give \
a JSON file such as a run's config.json
    """
    wanted = f"give a JSON file such as {example}"
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; {wanted}")
    try:
        return read_json(path)
    except FileNotFoundError:
        raise ConfigError(f"{flag} {path}: no such file; {wanted}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{flag} {path} is not a text file; {wanted}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{flag} {path} is not valid JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno}); fix the file, or {wanted}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{flag} {path} nests too deeply; {wanted}") from None
    except OSError as error:
        raise ConfigError(f"{flag} {path} cannot be read ({error.strerror}); {wanted}") from None
