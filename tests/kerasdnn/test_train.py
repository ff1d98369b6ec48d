"""The main job, ``python -m kerasdnn.train``: run directory, report, resume, bad input.

The end-to-end runs are real subprocesses on the backend of the tox env, on
scikit-learn's bundled digits (no network).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

from tests.conftest import REPO_ROOT

RUN_FILES = (
    "model.keras",
    "config.json",
    "history.csv",
    "report.json",
    "report.md",
    "roc.png",
    "confusion_matrix.png",
    "history.png",
    "pr.png",
    "calibration.png",
    "misclassified.png",
    "epoch_times.json",
    "predictions.npz",
)


def run_train(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "kerasdnn.train", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real 5-epoch run of the CLI on digits, shared by the checks below."""
    out = tmp_path_factory.mktemp("train") / "digits-run"
    result = run_train("--dataset", "digits", "--epochs", "5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "backend" in result.stdout and "parameters" in result.stdout
    return out


def test_cli_writes_every_file_of_the_run_directory(digits_run: Path) -> None:
    for name in RUN_FILES:
        path = digits_run / name
        assert path.is_file() and path.stat().st_size > 0, name
    assert not (digits_run / "backup").exists(), "a finished run keeps no backup"
    leftovers = [p.name for p in digits_run.iterdir() if ".tmp" in p.name]
    assert leftovers == []


def test_config_json_repeats_the_run(digits_run: Path, backend: str) -> None:
    record = json.loads((digits_run / "config.json").read_text())
    assert record["backend"] == backend
    assert record["train"]["epochs"] == 5 and record["train"]["dataset"] == "digits"
    assert record["model"]["hidden_units"] == [500, 250]
    assert record["model"]["input_shape"] == [64] and record["model"]["num_classes"] == 10
    assert record["train"]["seed"] == record["model"]["seed"]
    assert {"keras", "numpy", "scikit-learn"} <= set(record["versions"])
    assert record["dataset"]["source"] == "digits"
    # auto: the examples kept on the device where the backend has that path
    assert record["train"]["input_path"] == "auto"
    assert record["input_path"] == ("stream" if backend == "tensorflow" else "resident")


def test_report_matches_scikit_learn_on_the_saved_predictions(digits_run: Path) -> None:
    saved = np.load(digits_run / "predictions.npz")
    y_true, y_prob = saved["y_true"], saved["y_prob"]
    assert y_prob.shape == (len(y_true), 10)
    np.testing.assert_allclose(y_prob.sum(axis=1), 1.0, atol=1e-5)
    y_pred = y_prob.argmax(axis=1)
    report = json.loads((digits_run / "report.json").read_text())

    accuracy = metrics.accuracy_score(y_true, y_pred)
    assert accuracy >= 0.90
    assert report["accuracy"] == pytest.approx(accuracy)
    assert report["macro_avg"]["f1-score"] == pytest.approx(
        metrics.f1_score(y_true, y_pred, average="macro")
    )
    assert report["weighted_avg"]["f1-score"] == pytest.approx(
        metrics.f1_score(y_true, y_pred, average="weighted")
    )
    assert report["roc_auc"]["ovr_macro"] == pytest.approx(
        metrics.roc_auc_score(y_true, y_prob, multi_class="ovr", average="macro")
    )
    assert report["roc_auc"]["ovo_macro"] == pytest.approx(
        metrics.roc_auc_score(y_true, y_prob, multi_class="ovo", average="macro")
    )
    np.testing.assert_array_equal(
        report["confusion_matrix"], metrics.confusion_matrix(y_true, y_pred, labels=range(10))
    )


def test_history_has_every_epoch_and_the_step_logs(digits_run: Path) -> None:
    lines = (digits_run / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[0] == "epoch" and len(lines) == 1 + 5
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "grad_norm", "skipped_steps"):
        assert column in header


def test_train_is_callable_from_python(tmp_path: Path) -> None:
    import kerasdnn

    result = kerasdnn.train(
        dataset="digits", epochs=1, hidden_units=(32,), out=str(tmp_path / "run"), verbose=0
    )
    assert result.out_dir == tmp_path / "run"
    assert result.model_config.hidden_units == (32,)
    assert len(result.history["loss"]) == 1
    assert 0.0 <= result.report["accuracy"] <= 1.0


def test_resuming_with_other_settings_is_refused(digits_run: Path, tmp_path: Path) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((digits_run / "config.json").read_text())
    (unfinished / "backup").mkdir()
    result = run_train("--out", str(unfinished), "--resume", "--epochs", "7")
    assert result.returncode == 2
    assert "cannot resume" in result.stderr and "epochs: 5 → 7" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--optimizer", "rmsprop"], {}, "argument --optimizer: invalid choice"),
        (["--epochs", "0"], {}, "--epochs: must be an integer >= 1"),
        (["--lr", "-0.1"], {}, "--lr: must be a positive number"),
        (["--hidden", "500,abc"], {}, "--hidden: must be comma-separated positive integers"),
        (["--no-such-flag"], {}, "unrecognized arguments"),
        ([], {"KERAS_BACKEND": "mxnet"}, "unknown KERAS_BACKEND 'mxnet'"),
        (["--dataset", "no_such_data"], {}, "no_such_data"),
        (["--config", "missing.json"], {}, "--config missing.json: no such file"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = run_train(*args, "--out", str(out), env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert not out.exists(), "nothing is written on bad input"


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "a-file"
    out.write_text("keep me")
    result = run_train("--dataset", "digits", "--out", str(out))
    assert result.returncode == 2
    assert "is a file" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert out.read_text() == "keep me"


def test_resume_on_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "stuff.txt").write_text("x")
    result = run_train("--out", str(tmp_path), "--resume")
    assert result.returncode == 2
    assert "not a kerasdnn run directory" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stuff.txt"]


def test_help_imports_no_backend() -> None:
    code = (
        "import sys\n"
        "from kerasdnn.train import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'jax', 'torch', 'keras') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert "HEAVY []" in result.stdout
    assert "--early-stopping PATIENCE" in result.stdout and "(default: 500,250)" in result.stdout


@pytest.mark.parametrize(
    ("flag", "bad", "good", "field", "refused", "allowed"),
    [
        ("--dropout", "1", "0", "dropout", 1.0, "a number in [0, 1)"),
        ("--momentum", "1", "0.5", "momentum", 1.0, "a number in [0, 1)"),
        ("--validation-split", "0", "0.5", "validation_split", 0.0, "a number in (0, 1)"),
        ("--clipnorm", "0", "1e-3", "clipnorm", 0.0, "a positive number"),
        ("--hidden", "5,0", "", "hidden_units", (5, 0), "positive integers"),
        ("--early-stopping", "0", "1", "early_stopping", 0, "an integer >= 1"),
    ],
)
def test_a_flag_refuses_what_its_config_field_refuses(
    flag: str, bad: str, good: str, field: str, refused: object, allowed: str,
    capsys: pytest.CaptureFixture,
) -> None:
    """One rule per setting: a flag accepts and refuses what its config field does,
    and says what to give in one line."""
    from kerasdnn.core.config import ModelConfig, TrainConfig
    from kerasdnn.core.errors import ConfigError
    from kerasdnn.train import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([flag, bad])
    line = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in line
    assert f"argument {flag}: must be {allowed}" in line and f"got {bad}" in line
    assert "null" not in line  # a flag cannot give one
    kind = TrainConfig if field in TrainConfig.__dataclass_fields__ else ModelConfig
    with pytest.raises(ConfigError, match=re.escape(f"{field} must be {allowed}")):
        kind(**{field: refused})
    accepted = vars(build_parser().parse_args([flag, good]))[field]
    assert getattr(kind(**{field: accepted}), field) == accepted
