"""Fine-tuning (kerasdnn.training.finetune, ``--init-from``, ``--freeze``): the weights taken over
equal the source run's (across backends in the tox env ``cross``); frozen layers and
their batch-norm statistics do not change over an epoch while the rest do; a replaced
output layer is a fresh one; mismatches and ``--resume`` are one-line errors; a killed
fine-tuning run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kerasdnn
from kerasdnn.core.errors import ConfigError
from kerasdnn.network.models import build_model
from kerasdnn.training.faults import ENV
from kerasdnn.training.finetune import initialize_from
from tests.conftest import REPO_ROOT

SOURCE = dict(hidden_units=(16, 8), batch_norm=True, batch_size=256, seed=3)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A finished digits run (one epoch) on this env's backend."""
    out = tmp_path_factory.mktemp("finetune") / "source"
    return kerasdnn.train(dataset="digits", epochs=1, verbose=0, out=str(out), **SOURCE)


def _weights(model):
    return {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}


def test_every_weight_is_the_source_runs(source):
    model = build_model(source.model_config.replace(seed=99))  # other fresh weights
    record = initialize_from(model, source.out_dir, source.info.class_names, note=None)
    saved = _weights(keras.saving.load_model(source.out_dir / "model.keras"))
    ours = _weights(model)
    assert ours.keys() == saved.keys()
    for key in saved:
        np.testing.assert_array_equal(ours[key], saved[key], err_msg=key)
    assert record["head"] == "kept" and len(record["sha256"]) == 64


def test_frozen_layers_do_not_change_while_the_rest_do(source, tmp_path):
    tuned = kerasdnn.train(dataset="digits", epochs=1, verbose=0, out=str(tmp_path / "b"),
                           init_from=str(source.out_dir), freeze=1, **SOURCE)
    before, after = _weights(source.model), _weights(tuned.model)
    frozen = [key for key in before if key.startswith(("hidden_1/", "batch_norm_1/"))]
    assert len(frozen) == 6  # kernel, bias, gamma, beta, moving mean and variance
    for key in before:
        if key in frozen:
            np.testing.assert_array_equal(after[key], before[key], err_msg=key)
        else:
            assert not np.array_equal(after[key], before[key]), key
    record = json.loads((tmp_path / "b" / "config.json").read_text())
    assert record["train"]["init_from"] == str(source.out_dir) and record["train"]["freeze"] == 1
    assert record["init_from"]["path"] == str((source.out_dir / "model.keras").resolve())
    if keras.backend.backend() == "torch":  # the native step declines frozen layers
        assert tuned.model.native_plan() is None


def test_other_classes_get_a_fresh_output_layer(source, capsys):
    config = source.model_config.replace(num_classes=5, seed=7)
    model = build_model(config)
    record = initialize_from(model, source.out_dir, list("abcde"))
    assert "its 10 classes differ from this run's 5" in capsys.readouterr().out
    assert record["head"] == "replaced"
    saved = _weights(keras.saving.load_model(source.out_dir / "model.keras"))
    fresh = _weights(build_model(config))
    for key, value in _weights(model).items():
        np.testing.assert_array_equal(value, (fresh if key.startswith("logits/") else saved)[key])
    kernel = _weights(model)["logits/kernel"]
    # Glorot uniform: zero mean, variance 2 / (fan_in + fan_out); biases zero
    assert abs(kernel.mean()) < 0.15 and kernel.std() == pytest.approx(
        np.sqrt(2 / (8 + 5)), rel=0.3)
    assert not _weights(model)["logits/bias"].any()


def test_another_network_is_one_line_naming_both(source, capsys):
    from kerasdnn.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--dataset", "digits", "--hidden", "32", "--quiet", "--init-from",
              str(source.out_dir), "--out", str(source.out_dir.parent / "never")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err
    assert "input 64 → 16 → 8 → 10 classes, batch norm" in err
    assert "input 64 → 32 → 10 classes" in err
    assert not (source.out_dir.parent / "never").exists()
    with pytest.raises(ConfigError, match=r"no model\.keras"):
        initialize_from(build_model(), source.out_dir.parent, [])


def test_init_from_with_resume_is_refused_in_one_line(capsys):
    from kerasdnn.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--init-from", "runs/a", "--resume", "--out", "runs/b"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err and "--init-from" in err


def test_a_killed_fine_tuning_run_resumes_with_its_schedule(source, tmp_path):
    out = tmp_path / "tuned"
    args = [sys.executable, "-m", "kerasdnn.train", "--dataset", "digits", "--hidden", "16,8",
            "--batch-norm", "--batch-size", "256", "--seed", "3", "--epochs", "3", "--quiet",
            "--init-from", str(source.out_dir), "--freeze", "1", "--lr-schedule", "cosine",
            "--warmup-epochs", "1", "--out", str(out)]
    killed = subprocess.run(args, cwd=REPO_ROOT, env={**os.environ, ENV: "epoch_end:2"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = subprocess.run(
        [sys.executable, "-m", "kerasdnn.train", "--out", str(out), "--resume", "--quiet"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    model = keras.saving.load_model(out / "model.keras")
    assert not model.get_layer("hidden_1").trainable  # so the optimizer's slots load too
    frozen = _weights(source.model)
    for key, value in _weights(model).items():
        if key.startswith(("hidden_1/", "batch_norm_1/")):
            np.testing.assert_array_equal(value, frozen[key], err_msg=key)
    assert json.loads((out / "config.json").read_text())["model"]["lr_schedule"] == "cosine"


_FINE_TUNE = """
import sys
import keras
import numpy as np
import kerasdnn
from kerasdnn.training.finetune import initialize_from
from kerasdnn.network.models import build_model
source, backend, out = sys.argv[1:]
if backend == "jax":
    result = kerasdnn.train(dataset="digits", epochs=1, verbose=0, out=source,
                            hidden_units=(16, 8), batch_norm=True, batch_size=256)
    np.savez(out, **{v.path: keras.ops.convert_to_numpy(v) for v in result.model.weights})
else:
    saved = np.load(out)
    config = keras.saving.load_model(source + "/model.keras").model_config.replace(seed=9)
    model = build_model(config)
    initialize_from(model, source, [str(c) for c in range(10)], freeze=1, note=None)
    for v in model.weights:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), saved[v.path], v.path)
    x = np.random.default_rng(0).random((8, 64), dtype=np.float32)
    model.fit(x, np.arange(8), verbose=0, epochs=1)
    for v in model.weights:
        same = np.array_equal(keras.ops.convert_to_numpy(v), saved[v.path])
        assert same == v.path.startswith(("hidden_1/", "batch_norm_1/")), v.path
"""


@pytest.mark.cross_backend
def test_a_jax_run_fine_tunes_on_tensorflow_and_torch(tmp_path):
    source, saved = str(tmp_path / "jax-run"), str(tmp_path / "weights.npz")
    for backend in ("jax", "tensorflow", "torch"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(_FINE_TUNE), source,
                                 backend, saved], env=env, capture_output=True, text=True,
                                timeout=300, cwd=REPO_ROOT)
        assert result.returncode == 0, f"{backend}:\n{result.stderr[-3000:]}"


def test_the_estimators_warm_start_continues_the_same_training():
    from sklearn.datasets import load_iris

    from kerasdnn.training.estimator import DNNClassifier

    X, y = load_iris(return_X_y=True)
    settings = dict(hidden_units=(8,), batch_size=32, random_state=0, optimizer="sgd")
    once = DNNClassifier(epochs=4, **settings).fit(X, y)
    twice = DNNClassifier(epochs=2, warm_start=True, **settings).fit(X, y)
    first = twice.model_
    twice.fit(X, y)
    assert twice.model_ is first and len(twice.history_["loss"]) == 4
    np.testing.assert_allclose(twice.history_["loss"], once.history_["loss"], rtol=1e-4)
    np.testing.assert_allclose(twice.predict_proba(X), once.predict_proba(X), atol=1e-5)
    with pytest.raises(ValueError, match="same classes"):
        twice.fit(X[y < 2], y[y < 2])
