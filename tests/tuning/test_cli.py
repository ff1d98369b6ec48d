"""The search command line: flag checks (one line, status 2), --help without a
backend, the distributed environment, refusing to resume with other settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.tuning.conftest import TINY, search_args, user_error, write_space
from tuning.chief import set_distributed_environment
from tuning.run import check_resume
from tuning.search import build_parser, options_from_args
from tuning.space import load_space


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--tuner", "grid"], "argument --tuner: invalid choice: 'grid'"),
        (["--max-trials", "0"], "argument --max-trials: must be an integer >= 1, got 0"),
        (["--seed", "0"], "KerasTuner replaces seed 0 by a random seed"),
        (["--objective", "accuracy"], "argument --objective: invalid choice"),
        (["--factor", "1", "--tuner", "hyperband"], "must be an integer >= 2"),
        (["--chief", "localhost"], "must be HOST:PORT"),
        (["--worker", "tuner1"], "--worker needs --chief HOST:PORT"),
        (["--worker", "chief2", "--chief", "127.0.0.1:1"], "not 'chief'"),
        (["--chief", "127.0.0.1:1", "--worker", "t1", "--overwrite"], "for the chief only"),
        (["--tuner", "hyperband", "--max-trials", "3"], "do not apply to --tuner hyperband"),
        (["--max-epochs", "3"], "apply to --tuner hyperband only"),
        (["--space", "/nonexistent/space.json"], "no such file"),
        (["--prune", "optuna"], "argument --prune: invalid choice: 'optuna'"),
        (["--prune-warmup", "2"], "--prune-warmup need --prune median or --prune asha"),
        (["--prune", "median", "--prune-warmup", "-1"], "must be an integer >= 0, got -1"),
        (["--prune", "asha", "--prune-min-trials", "0"], "must be an integer >= 1, got 0"),
        (["--tuner", "hyperband", "--prune", "median"], "hyperband stops trials early"),
        (["--prune", "median", "--executions-per-trial", "2"], "--executions-per-trial 1"),
        (["--chief-timeout", "0"], "must be a number of seconds > 0, got 0"),
        (["--chief-timeout", "nan"], "must be a number of seconds > 0, got nan"),
    ],
)
def test_bad_flags_give_one_line_and_status_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert expected in user_error(argv, capsys)


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"units_per_layer": 64}, "unknown search space key(s) 'units_per_layer'"),
        ({"dropout": {"min": 0.4, "max": 0.1}}, "empty range (min 0.4 > max 0.1)"),
        ({"batch_size": []}, "empty list of values"),
        ({"optimizer": ["adam", "rmsprop"]}, "got 'rmsprop'"),
    ],
)
def test_bad_space_files_are_refused(
    space: dict, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    line = user_error(["--dataset", "digits", "--space", str(path)], capsys)
    assert f"--space {path}: " in line and expected in line


def test_a_space_file_that_is_not_json_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "space.json"
    path.write_text("{units: 64")
    assert "is not valid JSON" in user_error(["--space", str(path)], capsys)


def test_resuming_with_another_space_or_tuner_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_space(tmp_path, batch_size=[16, 32])
    options = options_from_args(build_parser().parse_args(search_args(tmp_path, first)))
    settings = check_resume(options, load_space(first))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "search.json").write_text(json.dumps(settings))
    assert check_resume(options, load_space(first)) == settings  # same settings: continue

    other = tmp_path / "other.json"
    other.write_text(json.dumps({**TINY, "batch_size": [16, 64]}))
    line = user_error([*search_args(tmp_path, other)], capsys)
    assert "cannot continue the search in" in line and "different search space" in line
    line = user_error([*search_args(tmp_path, first), "--tuner", "bayesian"], capsys)
    assert "different --tuner" in line
    # --overwrite starts over instead
    overwrite = options_from_args(build_parser().parse_args(
        [*search_args(tmp_path, other), "--overwrite"]))
    assert check_resume(overwrite, load_space(other))["space"]["batch_size"]["values"] == [16, 64]


def test_defaults_depend_on_the_tuner() -> None:
    random = options_from_args(build_parser().parse_args(["--dataset", "digits"]))
    assert (random.max_trials, random.epochs, random.train_epochs) == (10, 10, 10)
    assert random.project_name == "digits-random" and random.direction == "max"
    hyperband = options_from_args(build_parser().parse_args(
        ["--tuner", "hyperband", "--max-epochs", "4", "--objective", "val_loss"]))
    assert (hyperband.max_trials, hyperband.epochs, hyperband.train_epochs) == (None, None, 4)
    assert hyperband.factor == 3 and hyperband.direction == "min"
    assert hyperband.project_name == "auto-hyperband"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--chief", "0.0.0.0:8000"], {"KERASTUNER_TUNER_ID": "chief",
                                       "KERASTUNER_ORACLE_IP": "0.0.0.0",
                                       "KERASTUNER_ORACLE_PORT": "8000"}),
        (["--chief", "10.0.0.5:9001", "--worker", "tuner2"],
         {"KERASTUNER_TUNER_ID": "tuner2", "KERASTUNER_ORACLE_IP": "10.0.0.5",
          "KERASTUNER_ORACLE_PORT": "9001"}),
        ([], {}),
    ],
)
def test_distributed_environment(argv: list[str], expected: dict,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.setenv(name, "")  # recorded, so the test's changes are undone
        monkeypatch.delenv(name)
    set_distributed_environment(options_from_args(build_parser().parse_args(argv)))
    found = {name: os.environ[name] for name in
             ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
             if name in os.environ}
    assert found == expected


def test_help_and_bad_flags_import_no_backend(tmp_path: Path) -> None:
    code = (
        "import runpy, sys\n"
        "for argv in (['--help'], ['--max-trials', '0'], ['--space', sys.argv[1]]):\n"
        "    sys.argv = ['tuning.search', *argv]\n"
        "    try:\n"
        "        runpy.run_module('tuning.search', run_name='__main__', alter_sys=True)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('tensorflow', 'jax', 'torch', 'keras', 'keras_tuner')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    bad = tmp_path / "space.json"
    bad.write_text('{"units": []}')
    result = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=60)
    assert "usage: python -m tuning.search" in result.stdout
    assert "HEAVY []" in result.stdout
    assert "empty list of values" in result.stderr


def test_an_unreadable_stored_search_is_one_line_that_offers_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = write_space(tmp_path)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "search.json").write_text('{"tuner": "random", ')  # torn by hand
    line = user_error(search_args(tmp_path, space), capsys)
    assert "search.json is not valid JSON" in line and "pass --overwrite" in line
