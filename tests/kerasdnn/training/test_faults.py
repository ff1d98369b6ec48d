"""Crash safety of a run: killed at named points (``KERASDNN_FAULT``, kerasdnn.training.faults),
``--resume`` ends with the weights, history and report of an uninterrupted run; a
checkpoint damaged from outside is a one-line error naming the file.

The killed runs are real subprocesses (SIGKILL leaves no chance to clean up), one run
directory killed at one point after another (each kill in a ``--resume`` of the last);
the final resume runs the CLI in this process.  Every backend env runs a few points;
the JAX env runs them all.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasdnn.training.faults import ENV
from tests.conftest import REPO_ROOT

# 1293 training examples in batches of 128: 11 steps per epoch, 3 epochs.
ARGS = ["--dataset", "digits", "--epochs", "3", "--batch-size", "128", "--hidden", "32",
        "--dropout", "0.1", "--quiet"]
REPORT_FILES = ("report.json", "report.md", "predictions.npz", "roc.png",
                "confusion_matrix.png", "history.png")

# One run directory killed again and again, each time at the next point of the run; a
# count is the visit of the point within that one process (a resumed run counts anew).
EVERY_POINT = [
    "batch:5",                 # inside the first epoch, no checkpoint yet
    "checkpoint_renamed:1",    # epoch-0001 in place, history.csv not yet rewritten
    "batch:3",                 # inside the second epoch
    "epoch_end:1",             # the second epoch trained, not yet checkpointed
    "checkpoint_rename:1",     # epoch-0002 complete in its scratch folder, not in place
    "checkpoint_renamed:1",    # epoch-0002 in place, epoch-0001 not yet deleted
    "checkpoint_weights:2",    # the third epoch saved; writing the final checkpoint
    "checkpoint_renamed:1",    # the final checkpoint in place, epoch-0003 not yet deleted
    "atomic_replace:3",        # model.keras written, predictions.npz under its temporary name
    "finish_report:1",         # the report written, the checkpoint not removed
    "finish_cleanup:1",        # the checkpoint moved aside, not yet deleted
]
FEW_POINTS = ["batch:16", "checkpoint_rename:1", "finish_model:1"]


def run_killed(out: Path, point: str, *, resume: bool) -> None:
    """``python -m kerasdnn.train`` (``--resume``) killed by SIGKILL at ``point``."""
    args = ["--out", str(out), "--resume", "--quiet"] if resume else [*ARGS, "--out", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "kerasdnn.train", *args],
        cwd=REPO_ROOT, env={**os.environ, ENV: point}, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == -signal.SIGKILL, f"{point} not reached: {result.stderr}"


def resume(out: Path) -> int:
    """``python -m kerasdnn.train --out OUT --resume`` in this process; its exit status."""
    from kerasdnn.train import main

    try:
        return main(["--out", str(out), "--resume", "--quiet"])
    except SystemExit as exit_info:
        return int(exit_info.code)


def weights(out: Path) -> list[np.ndarray]:
    import keras

    import kerasdnn.network.models  # noqa: F401  (registers the DNN class model.keras names)

    model = keras.saving.load_model(out / "model.keras")
    return [np.asarray(v) for v in (*model.weights, *model.optimizer.variables)]


def history(out: Path) -> list[dict[str, str]]:
    with open(out / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_same_run(got: Path, want: Path) -> None:
    for mine, theirs in zip(weights(got), weights(want), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert history(got) == history(want)
    seconds = json.loads((got / "epoch_times.json").read_text())["epoch_seconds"]
    assert len(seconds) == len(history(want)), "one time per epoch, none lost or repeated"
    report, expected = (json.loads((run / "report.json").read_text()) for run in (got, want))
    assert {**report, "title": None} == {**expected, "title": None}  # the title names the run
    names = sorted(p.name for p in got.iterdir())
    assert names == sorted(p.name for p in want.iterdir()), "no backup, no scratch left"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run of the same command, shared by every kill point."""
    out = tmp_path_factory.mktemp("faults") / "uninterrupted"
    result = subprocess.run([sys.executable, "-m", "kerasdnn.train", *ARGS, "--out", str(out)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run killed at each point in turn (``--resume`` after each kill), and a copy
    of it as it was with backup/epoch-0001 its newest checkpoint."""
    folder = tmp_path_factory.mktemp("faults")
    out, snapshot = folder / "killed", folder / "one-epoch"
    every = os.environ.get("KERAS_BACKEND") == "jax"
    for step, point in enumerate(EVERY_POINT if every else FEW_POINTS):
        run_killed(out, point, resume=step > 0)
        if not snapshot.exists() and (out / "backup" / "epoch-0001").is_dir() and not any(
                (out / "backup").glob("epoch-000[2-9]")):
            shutil.copytree(out, snapshot)
    return {"out": out, "snapshot": snapshot}


@pytest.mark.slow
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_result(
    killed: dict[str, Path], reference: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = killed["out"]
    complete = (out / "model.keras").exists() and not (out / "backup").exists()
    status = resume(out)
    err = capsys.readouterr().err
    if complete:  # killed while deleting the checkpoint: every file was written
        assert status == 2 and "already finished" in err
    else:
        assert status == 0, err
    assert_same_run(out, reference)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_text("")


def _one_epoch_behind(path: Path) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def _epoch_ahead(path: Path) -> None:
    metadata = json.loads(path.read_text())
    path.write_text(json.dumps({**metadata, "epochs_done": 0}))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("model.weights.h5", _truncate),          # torn weights
        ("training_metadata.json", _empty),       # empty metadata
        ("training_metadata.json", _epoch_ahead),  # weights one epoch ahead of the metadata
        ("history.csv", _one_epoch_behind),       # history one epoch behind the weights
    ],
)
def test_a_damaged_checkpoint_is_a_one_line_error_naming_the_file(
    name: str, damage, killed: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    shutil.copytree(killed["snapshot"], out)
    damage(out / "backup" / "epoch-0001" / name)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert resume(out) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"epoch-0001/{name} is damaged" in lines[0] and "--resume" in lines[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
