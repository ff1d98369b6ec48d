"""Learning-rate schedules (kerasdnn.training.schedules): every step's rate against a float64
NumPy computation of the formula, on the backend of the tox env; the rate of each
epoch in history.csv; a killed and resumed run continues the schedule exactly, the
plateau callback's state included."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasdnn.core.config import ModelConfig
from kerasdnn.core.errors import ConfigError
from kerasdnn.training.checkpoint import RunCheckpoint, read_history_csv, restore_checkpoint
from kerasdnn.training.faults import ENV
from kerasdnn.training.schedules import LR_LOG, LearningRateLog, learning_rate_schedule
from tests.conftest import REPO_ROOT

LR, MIN_LR, DROP, EVERY = 0.1, 0.001, 0.5, 2


def reference(name: str, step: int, epochs: int, per_epoch: int, warmup: int) -> float:
    """The schedule's rate at optimizer step ``step``, float64, from its formula."""
    w = warmup * per_epoch
    if step < w:
        return LR * step / w
    since = step - w
    if name == "constant":
        return LR
    if name == "cosine":
        decay = epochs * per_epoch - w
        t = min(since, decay)
        alpha = MIN_LR / LR
        return LR * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / decay)) + alpha)
    return max(MIN_LR, LR * DROP ** math.floor(since / (EVERY * per_epoch)))


def config(name: str, warmup: int = 0) -> ModelConfig:
    return ModelConfig(input_shape=(4,), hidden_units=(3,), learning_rate=LR, min_lr=MIN_LR,
                       lr_schedule=name, lr_drop=DROP, lr_drop_every=EVERY, warmup_epochs=warmup)


@pytest.mark.parametrize("name", ["constant", "cosine", "step"])
@pytest.mark.parametrize("warmup", [0, 2])
def test_each_steps_rate_is_the_formulas(name, warmup):
    epochs, per_epoch = 6, 7
    schedule = learning_rate_schedule(config(name, warmup), epochs, per_epoch)
    steps = range(epochs * per_epoch + 5)  # past the end too: cosine stays at min_lr
    ours = [float(keras.ops.convert_to_numpy(schedule(step)) if callable(schedule)
                  else schedule) for step in steps]
    expected = [reference(name, step, epochs, per_epoch, warmup) for step in steps]
    np.testing.assert_allclose(ours, expected, rtol=2e-6, atol=1e-9)


def test_the_optimizer_steps_at_the_schedules_rates():
    # SGD without momentum on a linear loss: each step moves a weight by rate * gradient.
    import kerasdnn

    model = kerasdnn.build_model(config("cosine", 1).replace(momentum=0.0, seed=1))
    from kerasdnn.training.schedules import attach_schedule

    attach_schedule(model, epochs=3, steps_per_epoch=2)
    x, y = np.ones((4, 4), np.float32), np.zeros(4, np.int32)
    rates = []
    for step in range(6):
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
        model.train_on_batch(x[:2], y[:2])
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == step + 1
    np.testing.assert_allclose(rates, [reference("cosine", s, 3, 2, 1) for s in range(6)],
                               rtol=2e-6, atol=1e-9)


def test_warmup_as_long_as_the_run_is_refused():
    with pytest.raises(ConfigError, match="fewer than the epochs"):
        learning_rate_schedule(config("cosine", 3), epochs=3, steps_per_epoch=5)
    with pytest.raises(ConfigError, match="not plateau"):
        config("plateau", 1)


def _train(out, *extra, fault=None):
    args = [sys.executable, "-m", "kerasdnn.train", "--dataset", "digits", "--hidden", "16",
            "--batch-size", "256", "--quiet", "--out", str(out), *extra]
    env = {**os.environ, **({ENV: fault} if fault else {})}
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_history_has_each_epochs_rate_and_a_resumed_run_continues_it(tmp_path):
    # digits: 1293 training examples, 6 steps of 256 per epoch.
    flags = ["--epochs", "5", "--lr", str(LR), "--min-lr", str(MIN_LR), "--lr-schedule", "step",
             "--lr-drop", str(DROP), "--lr-drop-every", str(EVERY), "--warmup-epochs", "1"]
    killed = _train(tmp_path / "run", *flags, fault="epoch_end:3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = _train(tmp_path / "run", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = read_history_csv(tmp_path / "run" / "history.csv")
    np.testing.assert_allclose([row[LR_LOG] for row in rows],
                               [reference("step", 6 * epoch, 5, 6, 1) for epoch in range(5)],
                               rtol=2e-6)
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 5 * 6
    assert (tmp_path / "run" / "history.png").stat().st_size > 0


def _plateau_fit(model, x, y, backup, history, epochs, initial_epoch=0):
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1,
                                                min_delta=1.0)  # never better by 1: drops
    restored = restore_checkpoint(model, backup)
    saver = RunCheckpoint(backup, history, restored, plateau=plateau)
    model.fit(x, y, epochs=epochs, initial_epoch=initial_epoch, verbose=0, shuffle=False,
              callbacks=[plateau, LearningRateLog(), saver])
    return saver.history()[LR_LOG]


def _plateau_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")  # loss 1 at first
    return model


def test_the_plateau_callbacks_state_survives_a_resume(tmp_path):
    x, y = np.ones((4, 2), np.float32), np.ones(4, np.float32)
    whole = _plateau_fit(_plateau_model(), x, y, tmp_path / "a", tmp_path / "a.csv", 5)
    _plateau_fit(_plateau_model(), x, y, tmp_path / "b", tmp_path / "b.csv", 3)
    resumed = _plateau_fit(_plateau_model(), x, y, tmp_path / "b", tmp_path / "b.csv", 5, 3)
    # the first epoch sets the best loss; each one after it is not better by 1: a drop
    np.testing.assert_allclose(whole, [0.1, 0.1, 0.05, 0.025, 0.0125], rtol=1e-6)
    assert resumed == whole


def test_the_search_space_tunes_schedule_warmup_and_class_weight_only_when_asked():
    keras_tuner = pytest.importorskip("keras_tuner")
    from kerasdnn.core.config import TrainConfig
    from tuning.hypermodel import DNNHyperModel
    from tuning.space import DEFAULT_SPACE

    hp = keras_tuner.HyperParameters()
    DEFAULT_SPACE.declare(hp)
    assert not {"lr_schedule", "warmup_epochs", "class_weight"} & set(hp.values)
    space = DEFAULT_SPACE.narrow({"num_layers": 1, "units": 8, "batch_size": 256,
                                  "lr_schedule": ["cosine", "step"], "warmup_epochs": [1, 2],
                                  "class_weight": "balanced"})
    hp = keras_tuner.HyperParameters()
    hypermodel = DNNHyperModel(ModelConfig(input_shape=(64,)), space)
    model = hypermodel.build(hp)
    assert (hp.values["lr_schedule"], hp.values["warmup_epochs"], hp.values["class_weight"]) == (
        "cosine", 1, "balanced")
    assert model.model_config.lr_schedule == "cosine" and model.model_config.warmup_epochs == 1
    history = hypermodel.fit(hp, model, TrainConfig(dataset="digits", epochs=2), verbose=0)
    # 6 steps per epoch: epoch 0 warms up from 0, epoch 1 starts at the full rate
    np.testing.assert_allclose(history.history[LR_LOG], [0.0, 0.01], rtol=1e-6)


def test_the_estimator_takes_a_schedule_with_warmup():
    from sklearn.datasets import load_iris

    from kerasdnn.training.estimator import DNNClassifier

    X, y = load_iris(return_X_y=True)
    clf = DNNClassifier(hidden_units=(8,), epochs=3, batch_size=50, random_state=0,
                        learning_rate=0.1, lr_schedule="cosine", warmup_epochs=1).fit(X, y)
    # 3 steps per epoch over 150 examples
    np.testing.assert_allclose(clf.history_[LR_LOG], [reference_at(s) for s in (0, 3, 6)],
                               rtol=1e-6, atol=1e-9)


def reference_at(step: int) -> float:
    """Cosine from 0.1 to 0 over steps 3 to 9, after a warm-up of 3 steps."""
    return 0.1 * step / 3 if step < 3 else 0.1 * 0.5 * (1 + math.cos(math.pi * (step - 3) / 6))
