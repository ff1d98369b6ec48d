"""``python -m kerasdnn.train --stream`` on scikit-learn's digits written as an
uncompressed ``npz:`` file: the run trains to about the in-memory run's accuracy,
``kerasdnn.evaluate`` reads the same test rows again, a killed run resumes exactly,
and the export scales raw inputs as the stream did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasdnn.core.rundir import CONFIG_FILE, REPORT_JSON
from tests.conftest import REPO_ROOT
from tests.kerasdnn.test_train import run_train
from tests.kerasdnn.training.test_data_parallel import run_two_processes
from tests.kerasdnn.training.test_streamed_run import accuracy, resumed_after_a_kill

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Digits as 8x8 uint8 images, the same train/test split as the bundled source."""
    from pipelines.sources import read_source

    raw = read_source("digits")
    path = tmp_path_factory.mktemp("digits-npz") / "digits.npz"
    np.savez(path, x_train=raw.x_train, y_train=raw.y_train, x_test=raw.x_test,
             y_test=raw.y_test)
    return f"npz:{path}"


def args(source: str, *extra: str) -> tuple[str, ...]:
    return ("--dataset", source, "--stream", "--scale", "standardize", "--epochs", "2",
            "--hidden", "32", "--quiet", *extra)


@pytest.fixture(scope="module")
def streamed_run(digits_npz: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("streamed") / "run"
    result = run_train(*args(digits_npz, "--out", str(out)))
    assert result.returncode == 0, result.stderr
    return out


def test_a_streamed_npz_run_learns_as_the_in_memory_run(
        streamed_run: Path, digits_npz: str, tmp_path: Path) -> None:
    import kerasdnn

    in_memory = kerasdnn.train(dataset=digits_npz, scale="standardize", epochs=2,
                               hidden_units=(32,), verbose=0, out=str(tmp_path / "in-memory"))
    # other rows in validation (a hash, not stratified) and another order: a tolerance
    assert accuracy(streamed_run) > in_memory.report["accuracy"] - 0.05
    record = json.loads((streamed_run / CONFIG_FILE).read_text())
    assert record["train"]["stream"] is True
    assert record["dataset"]["num_examples"]["test"] == 360
    assert (streamed_run / "misclassified.png").is_file() or accuracy(streamed_run) == 1.0


def test_evaluate_reads_the_same_test_rows(streamed_run: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "kerasdnn.evaluate", str(streamed_run)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    evaluation = next(streamed_run.glob("eval-*"))
    assert json.loads((evaluation / REPORT_JSON).read_text())["accuracy"] == pytest.approx(
        accuracy(streamed_run), abs=1e-6)


# The order of a streamed epoch and the deal of pieces are the backend-free
# pipelines.piece_stream's (tested with tables on every backend): one env each here.
@pytest.mark.skipif(BACKEND != "tensorflow", reason="the export runs on TensorFlow")
def test_a_killed_streamed_npz_run_resumes_exactly_and_exports(
        streamed_run: Path, digits_npz: str, tmp_path: Path) -> None:
    out = resumed_after_a_kill(args(digits_npz), tmp_path / "run", "epoch_end:1",
                               streamed_run)
    exported = subprocess.run(
        [sys.executable, "-m", "kerasdnn.export", str(out), "--format", "tf_saved_model"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr  # checked on the run's predictions


@pytest.mark.skipif(BACKEND != "torch", reason="multi-process training: on JAX with tables")
def test_two_processes_each_reading_their_own_pieces_reach_the_one_process_accuracy(
        streamed_run: Path, digits_npz: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    for result in run_two_processes(out, *args(digits_npz)):
        assert result.returncode == 0, result.stderr
    record = json.loads((out / CONFIG_FILE).read_text())
    assert record["distribution"] == {"kind": "data_parallel", "devices": 2, "processes": 2}
    assert accuracy(out) > accuracy(streamed_run) - 0.03


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the export runs on TensorFlow")
def test_a_sampled_report_of_streamed_images_shows_their_gallery_and_exports(
        digits_npz: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kerasdnn
    from kerasdnn.evaluation import predict
    from kerasdnn.serving.artifact import export

    monkeypatch.setattr(predict, "REPORT_ROWS", 100)
    out = tmp_path / "run"
    result = kerasdnn.train(dataset=digits_npz, stream=True, epochs=1, hidden_units=(16,),
                            out=str(out), verbose=0)
    assert (result.report["num_examples"], result.report["scored_from"]) == (100, 360)
    assert "misclassified.png" in result.report["files"]  # the sample's own images
    assert export(out, format="tf_saved_model").is_dir()  # checked on those 100 rows
