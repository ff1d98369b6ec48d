"""kerasdnn.evaluate: run-directory evaluation checked against scikit-learn on the
model's own logits, and the CLI's one-line user errors (exit status 2, nothing
written).  The prediction functions it uses are tested in test_predict.py."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics
from sklearn.datasets import load_digits

from kerasdnn.core.errors import ConfigError, KerasDNNError, RunDirectoryError
from tests.conftest import REPO_ROOT

BACKENDS = ("tensorflow", "jax", "torch")
_Splits = collections.namedtuple("_Splits", "train validation test info")


def _softmax64(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _logits(model, x: np.ndarray) -> np.ndarray:
    """The model's raw outputs by a direct call (not through predict)."""
    import keras

    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    return {"x_train": x[:1200], "y_train": y[:1200], "x_test": x[1200:], "y_test": y[1200:]}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, digits) -> tuple[Path, object]:
    """A run directory made by hand: a small DNN fitted for a few steps, saved,
    with the config.json that ``python -m kerasdnn.train`` writes."""
    import keras

    from kerasdnn.core.config import TrainConfig
    from kerasdnn.core.rundir import run_record, write_run_config
    from kerasdnn.network.models import build_model

    model = build_model(input_shape=(64,), hidden_units=(32,), optimizer="adam",
                        learning_rate=0.01, seed=7)
    model.fit(digits["x_train"], digits["y_train"], epochs=3, batch_size=100, verbose=0)
    run_dir = tmp_path_factory.mktemp("runs") / "digits-run"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    train_config = TrainConfig(dataset="digits", epochs=3, batch_size=100,
                               validation_split=0.2, seed=11, out=str(run_dir))
    write_run_config(run_dir, run_record(
        model.model_config, train_config, backend=keras.backend.backend(),
        dataset={"name": "digits", "source": "digits", "class_names": [str(i) for i in range(10)]},
    ))
    (run_dir / "report.json").write_text('{"training": "report"}\n')
    return run_dir, model


@pytest.fixture
def fake_load(monkeypatch, digits):
    """Stand-in for ``pipelines.load`` serving the digits test rows; records its calls."""
    import tensorflow as tf

    import pipelines

    calls: list[dict] = []

    def load(name, **kwargs):
        calls.append({"name": name, **kwargs})
        test = tf.data.Dataset.from_tensor_slices((digits["x_test"], digits["y_test"]))
        info = types.SimpleNamespace(
            name=name, source="digits", input_shape=load.input_shape, num_classes=10,
            class_names=[str(i) for i in range(10)],
            num_examples={"test": len(digits["y_test"])}, note=None,
        )
        return _Splits(None, None, test.batch(kwargs["batch_size"]), info)

    load.input_shape = (64,)
    monkeypatch.setattr(pipelines, "load", load, raising=False)
    # The gallery's images: the same rows as the fake test split.
    monkeypatch.setattr("kerasdnn.evaluation.saved_run.load_test_images",
                        lambda name, **_: load_digits().images[1200:])
    return calls


# --- evaluate() ------------------------------------------------------------------------------


def test_evaluate_run_dir_matches_scikit_learn(trained_run, digits, fake_load, backend) -> None:
    from kerasdnn.evaluation.saved_run import evaluate

    run_dir, model = trained_run
    before = sorted(path.name for path in run_dir.iterdir())
    report = evaluate(run_dir)

    assert fake_load[-1] == {"name": "digits", "batch_size": 100, "validation_split": 0.2,
                             "scale": "auto", "seed": 11, "data_dir": None,
                             "manual_dir": None, "repeat": False}  # the run's test split
    x, y = digits["x_test"], digits["y_test"]
    logits = np.asarray(model.predict(x, verbose=0))
    prob = _softmax64(logits)
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(y, logits.argmax(axis=1)))
    assert report["f1_macro"] == pytest.approx(
        metrics.f1_score(y, logits.argmax(axis=1), average="macro"))
    assert report["roc_auc"]["ovr_macro"] == pytest.approx(
        metrics.roc_auc_score(y, prob, multi_class="ovr"), abs=1e-6)
    assert report["accuracy"] > 0.5  # a trained model, not chance

    out = Path(report["metadata"]["out_dir"])
    assert out.parent == run_dir and out.name.startswith(f"eval-{backend}-")
    assert {p.name for p in out.iterdir()} == {
        "report.json", "report.md", "roc.png", "confusion_matrix.png", "pr.png",
        "calibration.png", "misclassified.png", "predictions.npz"}
    saved = np.load(out / "predictions.npz")
    np.testing.assert_array_equal(saved["y_true"], y)
    np.testing.assert_allclose(saved["y_prob"], prob, atol=1e-6)
    assert json.loads((out / "report.json").read_text())["accuracy"] == report["accuracy"]
    assert report["metadata"]["trained_on"] == backend
    # The training report is untouched; only the new eval folder was added.
    assert (run_dir / "report.json").read_text() == '{"training": "report"}\n'
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([*before, out.name])


def test_evaluate_a_bare_keras_file(tmp_path, trained_run, fake_load) -> None:
    import kerasdnn

    run_dir, _ = trained_run
    model_file = tmp_path / "classifier.keras"
    model_file.write_bytes((run_dir / "model.keras").read_bytes())
    with pytest.raises(ConfigError, match="--dataset"):
        kerasdnn.evaluate(model_file)  # no config.json: the dataset must be named
    report = kerasdnn.evaluate(model_file, dataset="digits", out=tmp_path / "eval",
                               batch_size=64)
    assert fake_load[-1]["batch_size"] == 64 and fake_load[-1]["name"] == "digits"
    assert (tmp_path / "eval" / "report.md").is_file()
    assert report["metadata"]["trained_on"] is None


def test_evaluate_refuses_models_that_do_not_fit_the_data(tmp_path, trained_run, fake_load):
    from kerasdnn.evaluation.saved_run import evaluate

    run_dir, _ = trained_run
    fake_load.clear()
    import pipelines

    pipelines.load.input_shape = (784,)
    with pytest.raises(RunDirectoryError, match="inputs of shape"):
        evaluate(run_dir, out=tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage_config"])
def test_corrupt_model_is_a_user_error(tmp_path, trained_run, fake_load, damage) -> None:
    import zipfile

    from kerasdnn.evaluation.saved_run import evaluate

    run_dir, _ = trained_run
    target = tmp_path / "run"
    target.mkdir()
    (target / "config.json").write_bytes((run_dir / "config.json").read_bytes())
    original = (run_dir / "model.keras").read_bytes()
    if damage == "truncated":
        (target / "model.keras").write_bytes(original[: len(original) // 2])
    else:  # a valid archive whose model description is garbage: Keras itself fails
        with zipfile.ZipFile(target / "model.keras", "w") as archive:
            archive.writestr("config.json", "{not json")
            archive.writestr("metadata.json", "{}")
    with pytest.raises(RunDirectoryError, match="cannot load") as caught:
        evaluate(target)
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.keras"]


def test_failed_write_leaves_no_eval_folder(tmp_path, trained_run, fake_load, monkeypatch):
    import kerasdnn.evaluation.reports
    from kerasdnn.evaluation.saved_run import evaluate

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(kerasdnn.evaluation.reports, "write_report", broken)
    run_dir, _ = trained_run
    with pytest.raises(OSError, match="disk full"):
        evaluate(run_dir, out=tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


# --- the command line --------------------------------------------------------------------------


def _cli(*args: str, backend: str | None = None, timeout: int = 180):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-m", "kerasdnn.evaluate", *args], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=timeout,
    )


def _assert_user_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "evaluate: error:" in lines[0], result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_documents_flags_without_importing_a_backend() -> None:
    code = (
        "import runpy, sys\n"
        "sys.argv = ['kerasdnn.evaluate', '--help']\n"
        "try:\n    runpy.run_module('kerasdnn.evaluate', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert exit.code == 0\n"
        "heavy = ('tensorflow', 'jax', 'torch', 'keras', 'sklearn', 'matplotlib')\n"
        "print('IMPORTED', sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "IMPORTED []" in result.stdout
    for flag in ("--dataset", "--out", "--batch-size", "RUN_DIR_OR_MODEL"):
        assert flag in result.stdout
    assert result.stdout.count("default") >= 3


@pytest.mark.parametrize(
    ("make", "extra", "fragments"),
    [
        ("missing", [], ["no such file or directory"]),
        ("empty_dir", [], ["not a kerasdnn run directory"]),
        ("unfinished", [], ["has not finished", "--resume"]),
        ("not_keras", [], ["not a .keras model file"]),
        ("corrupt", [], ["cannot load", "model.keras"]),
        ("damaged_config", [], ["damaged"]),
        ("run", ["--batch-size", "0"], ["--batch-size"]),
        ("run", ["--out", "FILE"], ["is a file"]),
        ("run", ["--out", "RUN"], ["training report would be overwritten"]),
        ("run", ["--backend-flag-typo"], ["unrecognized arguments"]),
    ],
)
def test_cli_user_errors(tmp_path, trained_run, make, extra, fragments) -> None:
    run_dir, _ = trained_run
    target = tmp_path / make
    if make == "empty_dir":
        target.mkdir()
    elif make == "unfinished":
        target.mkdir()
        (target / "config.json").write_bytes((run_dir / "config.json").read_bytes())
    elif make == "not_keras":
        target = tmp_path / "weights.h5"
        target.write_bytes(b"\x89HDF\r\n")
    elif make == "corrupt":
        target.mkdir()
        (target / "config.json").write_bytes((run_dir / "config.json").read_bytes())
        (target / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    elif make == "damaged_config":
        target.mkdir()
        (target / "model.keras").write_bytes((run_dir / "model.keras").read_bytes())
        (target / "config.json").write_text('{"train": ')
    elif make == "run":
        target = run_dir
    (tmp_path / "FILE").write_text("x")
    extra = [str(tmp_path / "FILE") if arg == "FILE" else str(run_dir) if arg == "RUN" else arg
             for arg in extra]
    before = sorted(p.name for p in run_dir.iterdir())
    _assert_user_error(_cli(str(target), *extra), *fragments)
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing written
    if target.is_dir() and target != run_dir:
        assert not any(p.name.startswith("eval-") for p in target.iterdir())


def test_cli_unknown_backend_is_a_user_error(trained_run) -> None:
    run_dir, _ = trained_run
    _assert_user_error(_cli(str(run_dir), backend="theano"), "KERAS_BACKEND", "theano")


@pytest.mark.slow
def test_cli_unknown_dataset_is_a_user_error(trained_run, backend, tmp_path) -> None:
    run_dir, _ = trained_run
    result = _cli(str(run_dir), "--dataset", "no_such_dataset", "--out", str(tmp_path / "e"),
                  backend=backend)
    _assert_user_error(result, "no_such_dataset")
    assert not (tmp_path / "e").exists()


def _expected_on_real_digits(model) -> tuple[np.ndarray, np.ndarray]:
    """The run's test split through the real pipelines, predicted in this process."""
    import pipelines

    splits = pipelines.load("digits", batch_size=100, validation_split=0.2, seed=11)
    x = np.concatenate([batch_x for batch_x, _ in splits.test.as_numpy_iterator()])
    y = np.concatenate([batch_y for _, batch_y in splits.test.as_numpy_iterator()])
    return y, np.asarray(model.predict(x, verbose=0))


@pytest.mark.slow
def test_cli_evaluates_a_run_on_the_real_pipeline(trained_run, backend, tmp_path) -> None:
    run_dir, model = trained_run
    result = _cli(str(run_dir), "--out", str(tmp_path / "eval"), backend=backend)
    assert result.returncode == 0, result.stderr
    assert f"backend {backend}" in result.stdout and "accuracy" in result.stdout
    y, logits = _expected_on_real_digits(model)
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["num_examples"] == len(y)
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(y, logits.argmax(axis=1)))
    saved = np.load(tmp_path / "eval" / "predictions.npz")
    np.testing.assert_array_equal(saved["y_true"], y)


@pytest.mark.cross_backend
def test_model_saved_on_one_backend_evaluates_on_the_others(trained_run, backend, tmp_path):
    run_dir, model = trained_run
    y, logits = _expected_on_real_digits(model)
    expected_accuracy = metrics.accuracy_score(y, logits.argmax(axis=1))
    for other in BACKENDS:
        if other == backend:
            continue
        out = tmp_path / f"eval-on-{other}"
        result = _cli(str(run_dir), "--out", str(out), "--quiet", backend=other)
        assert result.returncode == 0, f"{backend} → {other}: {result.stderr}"
        report = json.loads((out / "report.json").read_text())
        assert report["metadata"]["backend"] == other
        assert report["metadata"]["trained_on"] == backend
        assert report["accuracy"] == pytest.approx(expected_accuracy)
        saved = np.load(out / "predictions.npz")
        np.testing.assert_array_equal(saved["y_true"], y)
        np.testing.assert_allclose(saved["y_prob"], _softmax64(logits), atol=1e-5)


def test_errors_are_kerasdnn_errors() -> None:
    assert issubclass(RunDirectoryError, KerasDNNError)
