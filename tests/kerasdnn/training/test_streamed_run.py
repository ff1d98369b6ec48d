"""``python -m kerasdnn.train --stream`` on a table of scikit-learn's digits written as CSV
shards: the run trains, evaluates and exports like an in-memory one, resumes exactly
(epoch ``e``'s order depends on the seed and ``e`` alone), and in two processes each
process reads its own pieces and the run reaches the one-process accuracy."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kerasdnn.core.rundir import CONFIG_FILE, HISTORY_FILE, PREPROCESSING_FILE, REPORT_JSON
from kerasdnn.training.faults import ENV as KERASDNN_FAULT
from tests.conftest import REPO_ROOT
from tests.kerasdnn.test_train import run_train
from tests.kerasdnn.training.test_data_parallel import run_two_processes

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits_table(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Digits as a folder of four CSV shards (pixels p0..p63, column ``label``)."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("digits-table")
    x, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(x, columns=[f"p{i}" for i in range(64)]).assign(label=y)
    for index in range(4):
        frame.iloc[index::4].to_csv(folder / f"part-{index}.csv", index=False)
    return f"csv:{folder}"


def args(table: str, *extra: str) -> tuple[str, ...]:
    return ("--dataset", table, "--target", "label", "--stream", "--epochs", "3",
            "--hidden", "32", "--quiet", *extra)


def history(run: Path) -> dict[str, np.ndarray]:
    with open(run / HISTORY_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


def resumed_after_a_kill(arguments: tuple[str, ...], out: Path, fault: str,
                         uninterrupted: Path) -> Path:
    """``out``: a run of ``arguments`` killed at ``fault`` and resumed, whose history is
    checked to equal the ``uninterrupted`` run's (epoch ``e``'s order: the seed and ``e``)."""
    killed = run_train(*arguments, "--out", str(out), env={KERASDNN_FAULT: fault})
    assert killed.returncode == -signal.SIGKILL
    resumed = run_train(*arguments, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for key, values in history(uninterrupted).items():
        if key != "epoch":
            np.testing.assert_allclose(history(out)[key], values, rtol=1e-6, err_msg=key)
    return out


def accuracy(run: Path) -> float:
    return json.loads((run / REPORT_JSON).read_text())["accuracy"]


@pytest.fixture(scope="module")
def streamed_run(digits_table: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("streamed") / "run"
    result = run_train(*args(digits_table, "--out", str(out)))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def in_memory_run(digits_table: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("in-memory") / "run"
    result = run_train(*[a for a in args(digits_table, "--out", str(out)) if a != "--stream"])
    assert result.returncode == 0, result.stderr
    return out


def test_a_streamed_run_learns_as_the_in_memory_run_and_records_how_it_read(
        streamed_run: Path, in_memory_run: Path) -> None:
    # other rows in each split (a hash, not stratified) and another order: a tolerance
    assert accuracy(streamed_run) > accuracy(in_memory_run) - 0.05
    record = json.loads((streamed_run / CONFIG_FILE).read_text())
    assert record["train"]["stream"] is True
    state = json.loads((streamed_run / PREPROCESSING_FILE).read_text())
    assert len(state["stream"]["pieces"]) == 4
    assert sum(p["train"] + p["validation"] + p["test"]
               for p in state["stream"]["pieces"]) == 1797


def test_evaluate_reads_the_same_test_rows_through_the_saved_plan(streamed_run: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "kerasdnn.evaluate", str(streamed_run)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    evaluation = next(streamed_run.glob("eval-*"))
    assert json.loads((evaluation / REPORT_JSON).read_text())["accuracy"] == pytest.approx(
        accuracy(streamed_run), abs=1e-6)


def test_the_report_of_a_streamed_split_above_its_row_limit_scores_a_uniform_sample(
        streamed_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kerasdnn.evaluation import predict
    from kerasdnn.evaluation.saved_run import evaluate

    full = json.loads((streamed_run / REPORT_JSON).read_text())
    assert full["scored_from"] is None
    monkeypatch.setattr(predict, "REPORT_ROWS", 200)
    report = evaluate(streamed_run, out=tmp_path / "eval")
    assert (report["num_examples"], report["scored_from"]) == (200, full["num_examples"])
    assert sum(map(sum, report["confusion_matrix"])) == 200
    assert "a uniform random sample of the split's" in (tmp_path / "eval" / "report.md"
                                                        ).read_text()
    assert report["accuracy"] == pytest.approx(full["accuracy"], abs=0.08)  # ~4 std. errors


@pytest.mark.skipif(BACKEND != "tensorflow", reason="a table's export runs on TensorFlow")
def test_a_run_whose_report_is_a_sample_exports_checked_on_the_sampled_rows(
        digits_table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kerasdnn
    from kerasdnn.evaluation import predict
    from kerasdnn.serving.artifact import export

    monkeypatch.setattr(predict, "REPORT_ROWS", 150)
    out = tmp_path / "run"
    result = kerasdnn.train(dataset=digits_table, target="label", stream=True, epochs=1,
                            hidden_units=(16,), out=str(out), verbose=0)
    assert (result.report["num_examples"], result.report["scored_from"]) == (150, 365)
    with np.load(out / "predictions.npz") as saved:
        assert len(saved["rows"]) == 150 and np.all(np.diff(saved["rows"]) > 0)
    assert export(out, format="tf_saved_model").is_dir()  # checked on those 150 rows


@pytest.mark.skipif(BACKEND != "tensorflow", reason="a table's export runs on TensorFlow")
def test_a_killed_streamed_run_resumes_exactly_and_exports(
        streamed_run: Path, digits_table: str, tmp_path: Path) -> None:
    out = resumed_after_a_kill(args(digits_table), tmp_path / "run", "epoch_end:2",
                               streamed_run)
    exported = subprocess.run(
        [sys.executable, "-m", "kerasdnn.export", str(out), "--format", "tf_saved_model"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr  # checked on the streamed test rows


@pytest.mark.skipif(BACKEND == "tensorflow", reason="multi-process training: JAX, PyTorch")
def test_two_processes_each_reading_their_own_pieces_reach_the_one_process_accuracy(
        streamed_run: Path, digits_table: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    for result in run_two_processes(out, *args(digits_table)):
        assert result.returncode == 0, result.stderr
    record = json.loads((out / CONFIG_FILE).read_text())
    assert record["distribution"] == {"kind": "data_parallel", "devices": 2, "processes": 2}
    assert accuracy(out) > accuracy(streamed_run) - 0.03
    assert history(out)["loss"][-1] < history(out)["loss"][0] / 2
