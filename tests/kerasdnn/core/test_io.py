"""Atomic, durable writes: a failure leaves the old file and no temporary behind; the
content and the rename are flushed to the disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kerasdnn.core import io
from kerasdnn.core.io import atomic_path, atomic_write_json, atomic_write_text

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.json"
    atomic_write_json(target, {"accuracy": 0.5})
    atomic_write_json(target, {"accuracy": 0.75})
    assert target.read_text() == '{\n  "accuracy": 0.75\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_a_failing_writer_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_temporary_name_keeps_the_suffix_and_files_get_the_umask_mode(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "roc.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"png")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "roc.png").stat().st_mode & 0o777 == 0o666 & ~umask


def _recording_fsync(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes | None]]:
    """Record each fsync as (what the descriptor is: 'dir' or 'file', the file's content)."""
    calls: list[tuple[str, bytes | None]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            calls.append(("dir", None))
        else:
            calls.append(("file", os.pread(fd, 1 << 16, 0)))
        real_fsync(fd)

    monkeypatch.setattr(io.os, "fsync", fsync)
    return calls


@pytest.mark.parametrize("how", ["bytes", "path"])
def test_writes_are_durable_file_then_rename_then_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The README's promise: the content is on the disk before the name points at it,
    and the rename is on the disk when the write returns (fsync of the folder)."""
    calls = _recording_fsync(monkeypatch)
    renamed: list[int] = []
    real_replace = io.os.replace
    monkeypatch.setattr(io.os, "replace",
                        lambda a, b: (renamed.append(len(calls)), real_replace(a, b))[1])
    target = tmp_path / "report.json"
    if how == "bytes":
        io.atomic_write_bytes(target, b"{}\n")
    else:  # what model.save and savefig write through
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"{}\n")
    assert calls == [("file", b"{}\n"), ("dir", None)]
    assert renamed == [1]  # between the two
