"""Saving and loading ``.keras`` files: on the same backend (identical predictions,
training resumes where it stopped) and across backends (tox env ``cross``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasdnn.network.models import DNN, build_model
from tests.conftest import REPO_ROOT

BACKENDS = ("tensorflow", "jax", "torch")
CONFIG = dict(input_shape=(8, 8), hidden_units=(16, 8), num_classes=3, batch_norm=True,
              dropout=0.1, l2=1e-4, optimizer="adam", metrics=("accuracy", "auc"), seed=3)


def _data(seed=0, n=24):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8), dtype=np.float32), rng.integers(0, 3, n).astype(np.int32)


def test_save_then_load_on_the_same_backend(tmp_path):
    # No dropout here: Keras does not save dropout's random-generator state, and the
    # resumed step below must be comparable.
    model = build_model(**{**CONFIG, "dropout": 0.0, "metrics": ("accuracy",)})
    x, y = _data()
    with_nan = x.copy()
    with_nan[12, 3, 3] = np.nan  # the second of three batches is skipped
    model.fit(with_nan, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert model.skipped_steps == 1
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = keras.models.load_model(path)
    assert isinstance(loaded, DNN)
    assert loaded.model_config == model.model_config
    assert loaded.skipped_steps == 1  # the count travels with the file
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

    # The optimizer state came along: the next step is the same on both.
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2
    x_next, y_next = _data(seed=1, n=8)
    ours = model.train_on_batch(x_next, y_next, return_dict=True)
    theirs = loaded.train_on_batch(x_next, y_next, return_dict=True)
    assert theirs["loss"] == pytest.approx(ours["loss"], rel=1e-6)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                   rtol=0, atol=1e-6)


def test_mixed_precision_model_round_trips(tmp_path):
    model = build_model(input_shape=(4,), hidden_units=(8,), num_classes=2, mixed_precision=True)
    x = np.random.default_rng(0).random((6, 4), dtype=np.float32)
    model.train_on_batch(x, np.array([0, 1, 0, 1, 1, 0], np.int32))
    model.save(tmp_path / "mixed.keras")
    loaded = keras.models.load_model(tmp_path / "mixed.keras")
    assert isinstance(loaded.optimizer, keras.optimizers.LossScaleOptimizer)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


_SAVE_AND_LOAD = """
import json, sys
import keras
import numpy as np
from kerasdnn.network.models import build_model
out, backend, save, others = sys.argv[1], sys.argv[2], sys.argv[3] == "save", sys.argv[4:]
rng = np.random.default_rng(0)
x = rng.random((16, 8, 8), dtype=np.float32)
y = rng.integers(0, 3, 16).astype(np.int32)
if save:
    model = build_model(**json.loads(sys.argv[-1]), steps_per_execution=2)
    model.train_on_batch(x, y)
    model.save(f"{out}/{backend}.keras")
    np.save(f"{out}/{backend}.npy", model.predict(x, verbose=0))
    others = others[:-1]
for other in others:
    model = keras.models.load_model(f"{out}/{other}.keras")
    assert type(model).__name__ == "DNN", type(model)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(f"{out}/{other}.npy"),
                               rtol=0, atol=1e-5, err_msg=f"saved on {other}, loaded on {backend}")
    assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])  # still trains
"""


def _run(backend: str, *args: str) -> None:
    root = str(REPO_ROOT)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(_SAVE_AND_LOAD), *args],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{backend}:\n{result.stdout}\n{result.stderr[-3000:]}"


@pytest.mark.cross_backend
def test_a_model_saved_on_each_backend_loads_on_the_other_two(tmp_path):
    out, config = str(tmp_path), json.dumps(CONFIG)
    # Five processes: each backend saves once and loads the two others.
    _run("tensorflow", out, "tensorflow", "save", config)
    _run("jax", out, "jax", "save", "tensorflow", config)
    _run("torch", out, "torch", "save", "tensorflow", "jax", config)
    _run("tensorflow", out, "tensorflow", "load", "jax", "torch")
    _run("jax", out, "jax", "load", "torch")
