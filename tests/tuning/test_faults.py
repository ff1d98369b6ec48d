"""Crash safety of a search: killed during a trial and while retraining ``best/``
(``KERASDNN_FAULT``, kerasdnn.training.faults), the rerun of the same command ends with the
trials and ``best/`` of an uninterrupted search: no trial lost or repeated, no scratch left.

Run on the JAX env only: the retraining is ``kerasdnn.train``, whose crash safety
tests/kerasdnn/training/test_faults.py checks on every backend.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasdnn.training.faults import ENV
from tests.conftest import REPO_ROOT
from tests.tuning.conftest import run_search, search_args, write_space
from tuning.results import read_trials_csv

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax", reason="run on the JAX env"),
]

# Each kill in a rerun of the last killed search; a count is the visit within one process.
POINTS = [
    "trial_end:2",           # the second trial trained, KerasTuner not yet told
    "trial_saved:1",         # run again: its end in trial.json, oracle.json still running
    "batch:3",               # the best trial's retraining, inside its first epoch
    "best_swap:1",           # the retrained best/ complete in its scratch folder
]


def _search(folder: Path) -> list[str]:
    space = write_space(folder, batch_size=[32, 64])
    return [*search_args(folder, space), "--max-trials", "2"]


def _trials(project: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in read_trials_csv(project / "trials.csv")]


def _best_weights(project: Path) -> list[np.ndarray]:
    import keras

    import kerasdnn.network.models  # noqa: F401  (registers the DNN class model.keras names)

    model = keras.saving.load_model(project / "best" / "model.keras")
    return [np.asarray(v) for v in model.weights]


def _report(project: Path) -> dict:
    return {**json.loads((project / "best" / "report.json").read_text()), "title": None}


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted search every killed one must rerun to."""
    folder = tmp_path_factory.mktemp("whole")
    run_search(_search(folder))
    return folder


def test_a_killed_search_reruns_to_the_uninterrupted_result(tmp_path: Path, whole: Path) -> None:
    killed = tmp_path / "killed"
    killed.mkdir()
    args = _search(killed)
    trained: list[str] = []  # the trials each search reported
    for point in POINTS:
        result = subprocess.run([sys.executable, "-m", "tuning.search", *args], cwd=REPO_ROOT,
                                env={**os.environ, ENV: point}, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == -signal.SIGKILL, f"{point} not reached: {result.stderr}"
        trained += re.findall(r"^trial (\d+): ", result.stdout, re.MULTILINE)
    assert list((killed / "p").glob(".best-*")), "the last kill left the retraining's scratch"
    trained += re.findall(r"^trial (\d+): ", run_search(args), re.MULTILINE)
    assert trained == ["0"]  # trial 1 ended in a search that was killed before its report

    got, want = killed / "p", whole / "p"
    assert _trials(got) == _trials(want)
    assert [row["trial_id"] for row in _trials(got)] == ["0", "1"]
    assert sorted(p.name for p in got.iterdir()) == sorted(p.name for p in want.iterdir())
    assert _report(got) == _report(want)
    for mine, theirs in zip(_best_weights(got), _best_weights(want), strict=True):
        np.testing.assert_array_equal(mine, theirs)


# A serial search of 2 trials writes through kerasdnn.core.io in this order (1-based):
# search.json, trial.json, oracle.json, workers.json, build_config.json, trial.json,
# trial.json (trial 0 ended), oracle.json, oracle.json (trial 0 in its end order), …
# KerasTuner's own writes among them go through tuning.chief's patched save_json.
KERASTUNER_WRITES = {"atomic_replace:7": "trial.json", "atomic_replace:9": "oracle.json"}


@pytest.mark.parametrize("point", sorted(KERASTUNER_WRITES))
def test_a_search_killed_while_kerastuner_writes_its_state_reruns_whole(
        tmp_path: Path, whole: Path, point: str) -> None:
    killed = tmp_path / "killed"
    killed.mkdir()
    args = _search(killed)
    result = subprocess.run([sys.executable, "-m", "tuning.search", *args], cwd=REPO_ROOT,
                            env={**os.environ, ENV: point}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == -signal.SIGKILL, f"{point} not reached: {result.stderr}"
    project = killed / "p"
    # killed between KerasTuner's complete new file and its rename: the old one is whole
    leftovers = [p for p in project.rglob(".*.tmp.json")]
    target = KERASTUNER_WRITES[point]
    assert [p.name.split(".")[1] + ".json" for p in leftovers] == [target], (
        f"the kill at {point} is no longer in KerasTuner's {target}: renumber "
        f"KERASTUNER_WRITES ({[p.name for p in leftovers]})")
    json.loads(leftovers[0].read_text())  # the new state, complete
    for state in [*project.rglob("trial.json"), project / "oracle.json"]:
        json.loads(state.read_text())  # every state file readable
    run_search(args)  # the same command reloads that state and ends the search
    assert _trials(project) == _trials(whole / "p")
    assert _report(project) == _report(whole / "p")
