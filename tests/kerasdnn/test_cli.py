"""kerasdnn.cli (what the commands share) and the line between commands and the
library: flag types, the commands' size and imports, ``kerasdnn.train(...)`` next
to ``python -m kerasdnn.train``, the backend read as Keras reads it."""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kerasdnn import cli
from tests.conftest import REPO_ROOT

COMMANDS = ("kerasdnn.train", "kerasdnn.evaluate", "kerasdnn.export", "kerasdnn.compare",
            "tuning.search", "pipelines.__main__")
COMMAND_SUPPORT = ("kerasdnn.cli", "kerasdnn.cli.flags", "tuning.flags", "pipelines.cli")
FUNCTIONS = {"train": "kerasdnn.training.run", "evaluate": "kerasdnn.evaluation.saved_run",
             "compare": "kerasdnn.training.crossbackend", "export": "kerasdnn.serving.artifact"}


def _path(module: str) -> Path:
    package = REPO_ROOT / module.replace(".", "/") / "__init__.py"
    return package if package.exists() else REPO_ROOT / (module.replace(".", "/") + ".py")


def _imports(module: str) -> set[str]:
    tree = ast.parse(_path(module).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    ("kind", "text", "error"),
    [
        (cli.positive_int, "0", "must be an integer >= 1, got 0"),
        (cli.non_negative_int, "-1", "must be an integer >= 0, got -1"),
        (cli.positive_float, "inf", "must be a positive number, got inf"),
        (cli.non_negative_float, "nan", "must be a number >= 0, got nan"),
        (cli.comma_ints, "5,x", "must be comma-separated positive integers"),
        (cli.setting("epochs"), "0", "got 0"),
    ],
)
def test_flag_types_refuse_with_the_rule(kind, text: str, error: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=error.replace("(", r"\(")):
        kind(text)


def test_flag_types_accept() -> None:
    assert cli.positive_int("3") == 3 and cli.non_negative_float("0") == 0.0
    assert cli.comma_ints(" 64, 32 ") == (64, 32) and cli.comma_ints("") == ()
    assert cli.setting("dropout", float)("0.25") == 0.25


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_is_thin_and_imports_no_other_command(command: str) -> None:
    lines = _path(command).read_text(encoding="utf-8").count("\n")
    assert lines < 200, f"{command}: {lines} lines"
    assert not _imports(command) & (set(COMMANDS) - {command})


def test_the_library_imports_no_command_and_no_command_support() -> None:
    commands = set(COMMANDS) | set(COMMAND_SUPPORT)
    offenders = {}
    for package in ("kerasdnn", "pipelines", "tuning"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            if module in commands or module.endswith(".__main__"):  # python -m <package>
                continue
            found = _imports(module) & commands
            if found:
                offenders[module] = sorted(found)
    assert offenders == {}


def test_the_paths_tell_commands_from_library() -> None:
    """README "Layout": kerasdnn's top level is its public face and its commands;
    ``kerasdnn/cli/`` is what they share; every other folder is library."""
    top = {f"kerasdnn.{path.stem}" for path in (REPO_ROOT / "kerasdnn").glob("*.py")}
    assert top - {"kerasdnn.__init__"} == {c for c in COMMANDS if c.startswith("kerasdnn.")}
    cli = {f"kerasdnn.cli.{path.stem}".removesuffix(".__init__")
           for path in (REPO_ROOT / "kerasdnn" / "cli").glob("*.py")}
    assert cli == {c for c in COMMAND_SUPPORT if c.startswith("kerasdnn.")}


def test_kerasdnn_train_and_co_are_the_library_functions_even_after_the_commands_load():
    import kerasdnn
    from kerasdnn.compare import main as compare_main  # noqa: F401  (loads the commands)
    from kerasdnn.evaluate import main as evaluate_main  # noqa: F401
    from kerasdnn.export import main as export_main  # noqa: F401
    from kerasdnn.train import main as train_main  # noqa: F401

    for name, module in FUNCTIONS.items():
        function = getattr(kerasdnn, name)
        assert inspect.isfunction(function) and function.__module__ == module, name
        assert function is getattr(sys.modules[module], name)
        assert inspect.ismodule(sys.modules[f"kerasdnn.{name}"])
    with pytest.raises(AttributeError, match=r"is the function kerasdnn\.training\.run\.train"):
        kerasdnn.train = print


def test_python_m_kerasdnn_train_is_the_command() -> None:
    result = subprocess.run([sys.executable, "-m", "kerasdnn.train", "--epochs", "0"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("python -m kerasdnn.train: error: argument --epochs: "
                                     "must be an integer >= 1 (at most 2147483647), got 0 "
                                     "(see --help)")


def test_the_backend_is_read_as_keras_reads_it(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """No KERAS_BACKEND: keras.json decides, as in Keras (once said "tensorflow"
    whatever keras.json said, and config.json recorded that)."""
    from pipelines.backends import check_backend
    from pipelines.errors import InvalidArgumentError

    monkeypatch.setitem(sys.modules, "keras", None)  # as before Keras is imported
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert check_backend() == "tensorflow"  # no keras.json: Keras's default
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert check_backend() == "torch"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "mxnet"}))
    with pytest.raises(InvalidArgumentError, match=r"unknown backend 'mxnet' in .*keras\.json"):
        check_backend()
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert check_backend() == "jax"  # the variable wins, as in Keras
    monkeypatch.setenv("KERAS_BACKEND", "mxnet")
    with pytest.raises(InvalidArgumentError, match="unknown KERAS_BACKEND 'mxnet'"):
        check_backend()


def test_once_keras_is_imported_its_backend_is_the_answer(backend: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from kerasdnn.core.runtime import check_backend

    monkeypatch.setenv("KERAS_BACKEND", "mxnet")  # too late to change anything
    assert check_backend() == backend
