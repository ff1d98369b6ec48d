"""TensorFlow's start-up lines: dropped as TF_CPP_MIN_LOG_LEVEL says, everything else
kept; all of them replayed when the import dies; filtered however TensorFlow is
imported once ``pipelines`` (or ``kerasdnn``) is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import tf_import_log
from tests.conftest import REPO_ROOT

ONEDNN = (b"I0000 00:00:1795972319.646892    6812 port.cc:153] oneDNN custom operations "
          b"are on. You may see slightly different numerical results.\n")
PREAMBLE = (b"WARNING: All log messages before absl::InitializeLog() is called are written "
            b"to STDERR\n")
WARNING = b"W0000 00:00:1795972319.700000    6812 cuda_dnn.cc:8] a warning\n"
ERROR = b"E0000 00:00:1795972319.700000    6812 cuda_dnn.cc:9] a real error\n"
FATAL = b"F0000 00:00:1795972319.800000    6812 cpu_feature_guard.cc:9] no AVX: cannot run\n"
OTHER = b"/some/module.py:3: UserWarning: kept as it is\n"


@pytest.mark.parametrize(
    ("level", "kept"),
    [
        ("2", OTHER + ERROR),
        ("1", OTHER + WARNING + ERROR),
        ("0", PREAMBLE + ONEDNN + OTHER + WARNING + ERROR),
    ],
)
def test_start_up_lines_follow_the_log_level(
    level: str, kept: bytes, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    with tf_import_log.held_back():
        os.write(2, PREAMBLE + ONEDNN + OTHER + WARNING + ERROR)
        os.write(2, ONEDNN)  # TensorFlow prints its start-up lines twice
    assert capfd.readouterr().err.encode() == kept + (ONEDNN if level == "0" else b"")


def test_an_exception_replays_everything_and_restores_stderr(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    with pytest.raises(ImportError), tf_import_log.held_back():
        os.write(2, ONEDNN + OTHER)
        raise ImportError("no such module")
    os.write(2, b"after\n")
    assert capfd.readouterr().err.encode() == ONEDNN + OTHER + b"after\n"


# --------------------------------------------------------------------------- in a process

FAKE_TENSORFLOW = """
import os, signal, sys
os.write(2, {lines!r})
how = {how!r}
if how == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
elif how == "abort":
    os.abort()
elif how == "exit":
    os._exit(1)
elif how == "child":  # a process that outlives the import, holding descriptor 2
    import subprocess
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
"""


def _run_with_fake_tensorflow(tmp_path: Path, code: str, lines: bytes, how: str,
                              **env: str) -> subprocess.CompletedProcess[bytes]:
    """``code`` in a fresh Python whose ``tensorflow`` is a fake package that writes
    ``lines`` to descriptor 2 while imported and then dies as ``how`` says (or not)."""
    package = tmp_path / "fake" / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_TENSORFLOW.format(lines=lines, how=how))
    environment = {key: value for key, value in os.environ.items()
                   if key != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), str(REPO_ROOT)]),
                       **env)
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          timeout=20, check=False)


@pytest.mark.parametrize("how", ["kill", "abort", "exit"])
def test_the_last_lines_of_an_import_that_dies_are_replayed(tmp_path: Path, how: str) -> None:
    """A CPU without AVX, a fatal log line, the OOM killer: the process dies while
    TensorFlow is imported, and everything it wrote reaches stderr, unfiltered."""
    done = _run_with_fake_tensorflow(tmp_path, "import pipelines.tf_setup",
                                     PREAMBLE + ONEDNN + FATAL, how)
    assert done.returncode != 0
    assert done.stderr == PREAMBLE + ONEDNN + FATAL


@pytest.mark.parametrize("first", ["pipelines", "kerasdnn", "tuning"])
def test_tensorflow_is_quiet_whoever_imports_it(tmp_path: Path, first: str) -> None:
    """Once the package is imported, the first ``import tensorflow`` of the process (by
    Keras, KerasTuner or the user) is filtered; the module keeps its real loader."""
    code = (f"import {first}, importlib, tensorflow; "
            "assert type(tensorflow.__loader__).__module__ != 'pipelines.tf_import_log'; "
            "print('imported')")
    done = _run_with_fake_tensorflow(tmp_path, code, PREAMBLE + ONEDNN + ERROR, "no")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"imported\n" and done.stderr == ERROR


def test_a_child_process_holding_stderr_does_not_hold_the_import(tmp_path: Path) -> None:
    done = _run_with_fake_tensorflow(tmp_path, "import pipelines, tensorflow; print('imported')",
                                     PREAMBLE + ONEDNN + ERROR, "child")
    assert done.stdout == b"imported\n" and done.stderr == ERROR


def test_without_the_package_the_lines_are_not_filtered(tmp_path: Path) -> None:
    """The fake TensorFlow does print them (so the test above can fail)."""
    done = _run_with_fake_tensorflow(tmp_path, "import tensorflow",
                                     PREAMBLE + ONEDNN + ERROR, "no")
    assert done.stderr == PREAMBLE + ONEDNN + ERROR


@pytest.mark.parametrize("how", ["build_model_fit", "data_parallel_run"])
def test_real_tensorflow_through_keras_is_quiet(backend: str, how: str, tmp_path: Path) -> None:
    """``kerasdnn`` then Keras (which imports TensorFlow on its backend), and a data-parallel
    run (which reaches Keras before pipelines): nothing on stderr although oneDNN is on
    and TF_CPP_MIN_LOG_LEVEL is not set."""
    if backend != "tensorflow":
        pytest.skip("Keras imports TensorFlow on the TensorFlow backend")
    environment = {key: value for key, value in os.environ.items()
                   if key != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(TF_ENABLE_ONEDNN_OPTS="1", PYTHONPATH=str(REPO_ROOT))
    args = {
        "build_model_fit": ["-c", "import numpy as np, kerasdnn; "
                            "model = kerasdnn.build_model(hidden_units=(4,), input_shape=(3,)); "
                            "model.fit(np.zeros((8, 3), 'float32'), np.zeros(8, 'int32'), "
                            "verbose=0)"],
        "data_parallel_run": ["-m", "kerasdnn.train", "--dataset", "digits", "--epochs", "1",
                              "--hidden", "8", "--data-parallel", "--devices", "2", "--quiet",
                              "--out", str(tmp_path / "run")],
    }[how]
    done = subprocess.run([sys.executable, *args], env=environment, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
