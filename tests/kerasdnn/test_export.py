"""``python -m kerasdnn.export``: artifacts that take the data source's raw examples,
run by plain onnxruntime / TensorFlow clients, agree with the run's predictions.npz.

Each backend env exports a run trained on its own backend; the ``cross`` env
exports runs trained on all three (binary head, uint8 images, unit scaling)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from kerasdnn.export import main
from kerasdnn.serving.artifact import INPUT_NAME, OUTPUT_NAME, ExportError, export, verify
from tests.conftest import REPO_ROOT

BACKENDS = ("tensorflow", "jax", "torch")
FORMATS = ("onnx", "tf_saved_model")


def onnx_client(path, images):
    """What a serving client writes (README): onnxruntime, raw images in."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inputs,), (outputs,) = session.get_inputs(), session.get_outputs()
    assert (inputs.name, outputs.name) == (INPUT_NAME, OUTPUT_NAME)
    assert inputs.type == "tensor(uint8)" and outputs.type == "tensor(float)"
    return session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]


def saved_model_client(path, images):
    """What a serving client writes (README): TensorFlow, raw images in."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    probabilities = loaded.serve(tf.constant(images))
    assert probabilities.dtype == tf.float32
    return probabilities.numpy()


CLIENTS = {"onnx": onnx_client, "tf_saved_model": saved_model_client}


def assert_matches_the_run(run_dir, artifact, fmt, images):
    expected = np.load(run_dir / "predictions.npz")["y_prob"]
    got = CLIENTS[fmt](artifact, images)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A digits run (standardize scaling, 8x8 uint8 images) on the active backend."""
    import kerasdnn

    out = tmp_path_factory.mktemp("export") / "digits"
    kerasdnn.train(dataset="digits", epochs=1, hidden_units=(16,), out=str(out), verbose=0)
    return out


@pytest.fixture(scope="module")
def digits_test_images():
    """The raw test images of the digits source, as a client would have them."""
    from pipelines.sources import read_source

    return read_source("digits").x_test


@pytest.fixture(scope="module")
def artifacts(digits_run, tmp_path_factory):
    """The digits run exported to both formats (through the TensorFlow backend)."""
    folder = tmp_path_factory.mktemp("artifacts")
    made = {fmt: export(digits_run, format=fmt, out=folder / fmt) for fmt in FORMATS}
    assert sorted(p.name for p in folder.iterdir()) == sorted(FORMATS)  # no staging left
    return made


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_artifact_takes_raw_digits_and_matches_the_run(digits_run, artifacts,
                                                       digits_test_images, fmt):
    assert digits_test_images.dtype == np.uint8 and digits_test_images.max() == 16
    assert_matches_the_run(digits_run, artifacts[fmt], fmt, digits_test_images)


@pytest.mark.slow
def test_a_tampered_artifact_fails_verification_in_one_line(digits_run, artifacts,
                                                            digits_test_images, tmp_path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(artifacts["onnx"]))
    kernel = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(kernel) * 1.5  # every weight of the largest layer
    kernel.CopyFrom(numpy_helper.from_array(values, kernel.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(model, str(tampered))
    expected = np.load(digits_run / "predictions.npz")["y_prob"]
    verify(artifacts["onnx"], "onnx", digits_test_images, expected)  # the original passes
    with pytest.raises(ExportError, match=r"differ from predictions.npz by up to") as caught:
        verify(tampered, "onnx", digits_test_images, expected)
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_predictions_that_the_artifact_does_not_reproduce_leave_nothing(
        digits_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    saved = dict(np.load(run / "predictions.npz"))
    saved["y_prob"] = saved["y_prob"][:, ::-1].copy()  # the classes' columns reversed
    np.savez(run / "predictions.npz", **saved)
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        main([str(run), "--format", "tf_saved_model"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "python -m kerasdnn.export: error: the tf_saved_model artifact's probabilities")
    assert "\n" not in err and "it was not kept" in err
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_missing_export_extra_is_one_line(digits_run, monkeypatch, capsys):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real_find_spec(name, *a))
    with pytest.raises(SystemExit) as exit_info:
        main([str(digits_run), "--format", "onnx"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == ("python -m kerasdnn.export: error: onnx export needs tf2onnx: "
                   "pip install 'kerasdnn[export]'")
    assert not (digits_run / "model.onnx").exists()


def test_an_existing_out_or_a_non_run_is_refused_in_one_line(digits_run, tmp_path, capsys):
    for argv, message in (
        ([str(digits_run), "--format", "onnx", "--out", str(digits_run / "model.keras")],
         "already exists"),
        ([str(tmp_path), "--format", "onnx"], "is not a kerasdnn run directory"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and message in err and "\n" not in err


# --------------------------------------------------------------------------- cross


def _run(args, backend, cwd):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def binary_image_source(tmp_path_factory):
    """A tiny NPZ source: 4x4 uint8 images, two classes (binary head, unit scaling)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 4, 4), dtype=np.uint8)
    y = (x.reshape(60, -1).mean(axis=1) > 127).astype(np.int64)
    path = tmp_path_factory.mktemp("source") / "images.npz"
    np.savez(path, x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:])
    return path


@pytest.mark.cross_backend
@pytest.mark.slow
@pytest.mark.parametrize("trained_on", BACKENDS)
def test_a_run_from_any_backend_exports_to_both_formats(binary_image_source, trained_on,
                                                        tmp_path):
    run = tmp_path / trained_on
    _run(["-m", "kerasdnn.train", "--dataset", f"npz:{binary_image_source}", "--epochs", "2",
          "--hidden", "8", "--batch-size", "8", "--out", str(run), "--quiet"],
         trained_on, tmp_path)
    images = np.load(binary_image_source)["x_test"]
    for fmt in FORMATS:
        artifact = export(run, format=fmt)
        assert_matches_the_run(run, artifact, fmt, images)
