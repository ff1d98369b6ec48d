"""TensorFlow's start-up lines: dropped as TF_CPP_MIN_LOG_LEVEL says, everything else kept."""

from __future__ import annotations

import os

import pytest

from pipelines import tf_setup

ONEDNN = (b"I0000 00:00:1795972319.646892    6812 port.cc:153] oneDNN custom operations "
          b"are on. You may see slightly different numerical results.\n")
PREAMBLE = (b"WARNING: All log messages before absl::InitializeLog() is called are written "
            b"to STDERR\n")
WARNING = b"W0000 00:00:1795972319.700000    6812 cuda_dnn.cc:8] a warning\n"
ERROR = b"E0000 00:00:1795972319.700000    6812 cuda_dnn.cc:9] a real error\n"
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
    with tf_setup._stderr_at_log_level():
        os.write(2, PREAMBLE + ONEDNN + OTHER + WARNING + ERROR)
        os.write(2, ONEDNN)  # TensorFlow prints its start-up lines twice
    assert capfd.readouterr().err.encode() == kept + (ONEDNN if level == "0" else b"")


def test_stderr_is_restored_after_an_exception(capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(ImportError), tf_setup._stderr_at_log_level():
        os.write(2, OTHER)
        raise ImportError("no such module")
    os.write(2, b"after\n")
    assert capfd.readouterr().err.encode() == OTHER + b"after\n"
