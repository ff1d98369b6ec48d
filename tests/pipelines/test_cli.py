"""``python -m pipelines``: the list, a one-line error with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.__main__ import main
from pipelines.sources import SOURCES
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env


def test_list_prints_every_source_on_one_line_without_tensorflow():
    """``--list`` answers at once: one line per source, nothing on stderr, and TensorFlow
    never imported (its quiet import is tested in tests/pipelines/test_tf_setup.py)."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from pipelines.__main__ import main; "
         "status = main(['--list']); "
         "sys.exit(status or 3 * ('tensorflow' in sys.modules))"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", (done.returncode, done.stderr)
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [source.name for source in SOURCES]
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


def test_unknown_name_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["mnits"])
    assert caught.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("python -m pipelines: error: unknown dataset 'mnits'")
    assert captured.err.count("\n") == 1


def test_describes_a_dataset(capsys):
    assert main(["digits", "--batch-size", "10"]) == 0
    out = capsys.readouterr().out
    assert "source: digits" in out and "num_examples: {'train': 1293" in out
