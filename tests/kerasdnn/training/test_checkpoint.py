"""kerasdnn.training.checkpoint in this process, on a tiny model: EarlyStopping's state travels
with the checkpoint, so a run interrupted before its early stop stops where an
uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kerasdnn.training.checkpoint import RunCheckpoint, latest_checkpoint, restore_checkpoint


class Interrupted(Exception):
    """Stands for a kill after an epoch's checkpoint (fit ends without on_train_end)."""


def _model():
    import keras

    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.5, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _fit(model, run: Path, *, initial_epoch: int = 0, restored=None, stop_after=None):
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    # Validated on the opposite labels: the validation loss is best after the first epoch.
    early = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    callbacks = [early, RunCheckpoint(run / "backup", run / "history.csv", restored, early)]
    if stop_after is not None:
        class Kill(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch + 1 == stop_after:
                    raise Interrupted

        callbacks.append(Kill())
    model.fit(x, y, validation_data=(x, 1 - y), batch_size=16, epochs=8, shuffle=False,
              initial_epoch=initial_epoch, callbacks=callbacks, verbose=0)
    return latest_checkpoint(run / "backup")


def test_a_resumed_run_stops_early_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    whole = _model()
    done = _fit(whole, tmp_path / "whole")
    assert done.finished and done.epochs_done == 3  # best at epoch 1, stopped at epoch 3

    killed = _model()
    with pytest.raises(Interrupted):
        _fit(killed, tmp_path / "killed", stop_after=2)
    resumed = _model()
    restored = restore_checkpoint(resumed, tmp_path / "killed" / "backup")
    assert restored.epochs_done == 2 and restored.early_stopping["wait"] == 1
    again = _fit(resumed, tmp_path / "killed", initial_epoch=2, restored=restored)

    assert again.finished and again.epochs_done == done.epochs_done
    for got, want in zip(resumed.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert (tmp_path / "killed" / "history.csv").read_text() == (
        tmp_path / "whole" / "history.csv").read_text()
