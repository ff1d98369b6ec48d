"""Training on a table: a CSV run and a DataFrame run write a run directory whose
report names the classes, keep the fitted preprocessing that evaluate reuses, and
train to the float64 NumPy reference's weights on every backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.kerasdnn import reference
from tests.pipelines.test_tables import messy_frame

SETTINGS = dict(target="label", epochs=2, hidden_units=(8,), batch_size=16, verbose=0)


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory):
    import kerasdnn

    folder = tmp_path_factory.mktemp("table-run")
    messy_frame().to_csv(folder / "messy.csv", index=False)
    return kerasdnn.train(dataset=f"csv:{folder / 'messy.csv'}", out=str(folder / "run"),
                          **SETTINGS)


def test_run_directory_names_the_classes_and_keeps_the_schema(table_run) -> None:
    out = table_run.out_dir
    report = json.loads((out / "report.json").read_text())
    assert {"cat", "dog", "emu"} <= set(report["per_class"])
    assert "cat" in (out / "report.md").read_text()
    saved = json.loads((out / "preprocessing.json").read_text())
    assert saved == table_run.info.table
    assert {c["name"]: c["kind"] for c in saved["schema"]}["when"] == "drop"
    record = json.loads((out / "config.json").read_text())
    assert record["train"]["target"] == "label" and record["train"]["test_split"] == 0.2
    assert record["dataset"]["class_names"] == ["cat", "dog", "emu"]


def test_training_matches_the_float64_reference(table_run) -> None:
    """Same seed → the same initial weights and batches; after two epochs the weights
    are the NumPy reference's (within 1e-4) on whichever backend runs the test."""
    from kerasdnn.network.models import build_model
    from kerasdnn.training.data import load_splits

    start = build_model(table_run.model_config).get_weights()
    splits = load_splits(table_run.train_config, repeat=True)
    steps = splits.stream.batches_per_epoch * table_run.train_config.epochs
    batches = [(x, y) for x, y in splits.stream.dataset.take(steps).as_numpy_iterator()]
    pairs = list(zip(start[0::2], start[1::2], strict=True))
    _, _, final = reference.train(pairs, batches, learning_rate=0.01, momentum=0.9)
    trained = table_run.model.get_weights()
    for got, want in zip(trained, [a for pair in final for a in pair], strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_evaluate_reuses_the_saved_preprocessing(table_run, tmp_path: Path,
                                                 monkeypatch) -> None:
    import kerasdnn

    def refit(*args, **kwargs):
        raise AssertionError("evaluate refit the preprocessing")

    monkeypatch.setattr("pipelines.tables.load.fit_preprocessing", refit)
    kerasdnn.evaluate(table_run.out_dir, out=tmp_path / "eval")
    ours = np.load(tmp_path / "eval" / "predictions.npz")
    saved = np.load(table_run.out_dir / "predictions.npz")
    np.testing.assert_array_equal(ours["y_true"], saved["y_true"])
    np.testing.assert_allclose(ours["y_prob"], saved["y_prob"], atol=1e-6)


def test_a_dataframe_trains_from_python(tmp_path: Path) -> None:
    import kerasdnn

    frame = messy_frame(rows=60, seed=1)
    frame["label"] = frame["label"].map({"cat": 0, "dog": 1, "emu": 1})
    result = kerasdnn.train(data=frame, out=str(tmp_path / "run"), **SETTINGS)
    assert result.train_config.dataset == "dataframe"
    assert result.info.class_names == ["0", "1"]
    assert (tmp_path / "run" / "preprocessing.json").is_file()


def test_table_settings_reach_the_loader_with_the_saved_preprocessing(tmp_path: Path) -> None:
    from kerasdnn.core.config import TrainConfig
    from kerasdnn.training.data import load_arguments

    config = TrainConfig(dataset="csv:t.csv", target="y", drop=["id"], out=str(tmp_path))
    assert "preprocessing" not in load_arguments(config)
    (tmp_path / "preprocessing.json").write_text("{}")
    arguments = load_arguments(config)
    assert arguments["preprocessing"] == str(tmp_path / "preprocessing.json")
    assert (arguments["target"], arguments["drop"]) == ("y", ("id",))
    assert "target" not in load_arguments(TrainConfig(dataset="digits"))


def test_saved_model_takes_raw_columns_and_onnx_is_refused(table_run) -> None:
    """The export checks itself on the raw test rows (within 1e-5 of predictions.npz);
    here a raw row with missing values and an unseen category goes in as a client
    sends it."""
    import kerasdnn
    from kerasdnn.serving.artifact import ExportError
    from kerasdnn.serving.table_export import serve_rows
    from pipelines.tables.encode import encode

    path = kerasdnn.export(table_run.out_dir, format="tf_saved_model")
    rows = {"age": [41.5, float("nan")], "color": ["violet", "?"], "member": ["true", ""],
            "stars": ["3", "NA"], "income": [52000.0, float("nan")]}
    got = serve_rows(path, rows)
    state = table_run.info.table
    x = encode(pd.DataFrame(rows), state)
    logits = np.asarray(table_run.model.predict_on_batch(x), np.float64)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(ExportError, match="use --format tf_saved_model"):
        kerasdnn.export(table_run.out_dir, format="onnx", out=table_run.out_dir / "m.onnx")
    assert not (table_run.out_dir / "m.onnx").exists()


def test_a_killed_table_run_resumes_to_the_uninterrupted_result(table_run, tmp_path: Path,
                                                                 backend: str) -> None:
    """Killed after its first epoch's checkpoint, the run resumes with its saved
    preprocessing (not refit: the file is untouched) to the same predictions."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    out = tmp_path / "run"
    args = [sys.executable, "-m", "kerasdnn.train", "--dataset", table_run.train_config.dataset,
            "--target", "label", "--epochs", "2", "--hidden", "8", "--batch-size", "16",
            "--out", str(out), "--quiet"]
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO_ROOT)}
    killed = subprocess.run(args, env={**env, "KERASDNN_FAULT": "checkpoint_renamed:1"},
                            capture_output=True, text=True, timeout=600, check=False)
    assert killed.returncode != 0 and not (out / "predictions.npz").exists()
    saved = (out / "preprocessing.json").stat().st_mtime_ns
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True,
                             timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (out / "preprocessing.json").stat().st_mtime_ns == saved
    ours = np.load(out / "predictions.npz")["y_prob"]
    np.testing.assert_allclose(ours, np.load(table_run.out_dir / "predictions.npz")["y_prob"],
                               atol=1e-6)
