"""Atomic writes: a failure leaves the old file and no temporary behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kerasdnn.io import atomic_path, atomic_write_json, atomic_write_text


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
