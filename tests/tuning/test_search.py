"""End-to-end searches on digits: outputs, batch size, resume, a diverging trial."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from tests.tuning.conftest import run_search, search_args, steps, train_examples, write_space
from tuning.results import read_trials_csv

BATCH_SIZES = [16, 32, 64, 128]
RUN_FILES = ("model.keras", "config.json", "history.csv", "report.json", "report.md",
             "roc.png", "confusion_matrix.png", "history.png", "predictions.npz")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A random search of 2 trials, then the same command with --max-trials 4.

    The space has exactly four points (the batch sizes), so four distinct
    trials are all it can give.
    """
    folder = tmp_path_factory.mktemp("search")
    space = write_space(folder, batch_size=BATCH_SIZES)
    args = ["--tensorboard", *search_args(folder, space)]
    first = run_search([*args, "--max-trials", "2"])
    project = folder / "p"
    first_rows = read_trials_csv(project / "trials.csv")
    first_files = {
        path: path.stat().st_mtime_ns for path in project.glob("trial_*/trial.json")
    }
    second = run_search([*args, "--max-trials", "4"])
    return {"project": project, "first": first, "second": second, "first_rows": first_rows,
            "first_files": first_files, "args": args}


def test_search_writes_trials_plot_and_best_run(resumed: dict) -> None:
    project: Path = resumed["project"]
    rows = read_trials_csv(project / "trials.csv")
    assert [row["status"] for row in rows] == ["COMPLETED"] * 4
    for column in ("trial_id", "status", "batch_size", "learning_rate", "score", "seconds"):
        assert column in rows[0]
    assert all(float(row["seconds"]) > 0 for row in rows)
    assert (project / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    best = project / "best"
    for name in RUN_FILES:
        assert (best / name).is_file(), name
    report = json.loads((best / "report.json").read_text())
    for key in ("accuracy", "per_class", "roc_auc", "confusion_matrix"):
        assert key in report
    predictions = np.load(best / "predictions.npz")
    assert report["accuracy"] == pytest.approx(
        accuracy_score(predictions["y_true"], predictions["y_prob"].argmax(axis=1))
    )

    # The best trial is the one with the highest score in trials.csv: it is the
    # one retrained, and KerasTuner's own record agrees.
    scores = [float(row["score"]) for row in rows]
    top = max(scores)
    oracle_scores = [json.loads(path.read_text())["score"]
                     for path in project.glob("trial_*/trial.json")]
    assert max(oracle_scores) == pytest.approx(top)
    config = json.loads((best / "config.json").read_text())
    best_batch_sizes = {int(row["batch_size"]) for row, score in zip(rows, scores, strict=True)
                        if score == top}
    assert config["train"]["batch_size"] in best_batch_sizes
    assert config["model"]["hidden_units"] == [16]
    assert config["model"]["optimizer"] == "adam"
    retrained = re.search(r"retraining trial \S+ \(val_accuracy ([0-9.]+)\)", resumed["second"])
    assert retrained and float(retrained.group(1)) == pytest.approx(top, abs=1e-4)


def test_the_dashboard_has_one_row_per_trial_with_its_curves(resumed: dict) -> None:
    from tuning.dashboard import read_trial_rows

    rows = read_trial_rows(resumed["project"] / "tensorboard")  # TensorBoard's own reader
    trials = read_trials_csv(resumed["project"] / "trials.csv")
    assert [row["trial_id"] for row in rows] == [row["trial_id"] for row in trials]
    for board, trial in zip(rows, trials, strict=True):
        assert board["batch_size"] == float(trial["batch_size"])
        assert board["learning_rate"] == pytest.approx(float(trial["learning_rate"]))
        assert board["optimizer"] == trial["optimizer"]
        assert len(board["val_accuracy"]) == 1  # one epoch, one point
        assert board["val_accuracy"][0] == pytest.approx(float(trial["score"]))
        assert {"loss", "accuracy", "val_loss"} <= set(board)
    from tensorboard.backend.event_processing import plugin_event_accumulator
    from tensorboard.plugins.hparams import metadata

    experiment = plugin_event_accumulator.EventAccumulator(
        str(resumed["project"] / "tensorboard"))
    experiment.Reload()
    content = experiment.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    info = metadata.parse_experiment_plugin_data(content)
    assert info.metric_infos[0].name.tag == "val_accuracy"
    assert {"batch_size", "learning_rate"} <= {h.name for h in info.hparam_infos}


def test_progress_is_one_line_per_trial_then_a_ranked_table(resumed: dict) -> None:
    out = resumed["second"]
    trial_lines = [line for line in out.splitlines() if re.match(r"trial \d+: ", line)]
    assert [line.split(":")[0] for line in trial_lines] == ["trial 2", "trial 3"]
    table = out[out.index("rank trial val_accuracy"):].splitlines()
    ranked = [float(line.split()[2]) for line in table[1:5]]
    assert ranked == sorted(ranked, reverse=True)
    assert "Epoch 1/1" not in out  # no per-epoch Keras progress bars


def test_batch_size_changes_the_steps_per_epoch(resumed: dict) -> None:
    rows = read_trials_csv(resumed["project"] / "trials.csv")
    examples = train_examples()
    recorded = {int(row["batch_size"]): int(float(row["steps_per_epoch"])) for row in rows}
    assert recorded == {size: steps(examples, size) for size in BATCH_SIZES}


def test_resume_runs_only_the_missing_trials(resumed: dict) -> None:
    rows = read_trials_csv(resumed["project"] / "trials.csv")
    assert [row["trial_id"] for row in rows] == ["0", "1", "2", "3"]
    assert sorted(int(row["batch_size"]) for row in rows) == BATCH_SIZES
    # The first run's trials are kept as they were, not run again.
    assert rows[:2] == resumed["first_rows"]
    for path, mtime in resumed["first_files"].items():
        assert path.stat().st_mtime_ns == mtime
    assert "continuing a random search" in resumed["second"]
    assert "2 trial(s) done" in resumed["second"]


def test_resume_with_another_space_is_refused(resumed: dict, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tests.tuning.conftest import user_error

    other = write_space(tmp_path, batch_size=[16, 32])
    args = [*resumed["args"][:-2], "--space", str(other), "--max-trials", "5"]
    line = user_error(args, capsys)
    assert "different search space" in line and "--overwrite" in line


def test_a_diverging_trial_fails_and_the_search_goes_on(tmp_path: Path) -> None:
    # Two points: a sane learning rate and one that blows the weights up at once.
    space = write_space(tmp_path, optimizer="sgd", momentum=0.0,
                        learning_rate=[1e30, 0.05], batch_size=64)
    out = run_search([*search_args(tmp_path, space), "--max-trials", "2"])
    rows = read_trials_csv(tmp_path / "p" / "trials.csv")
    by_rate = {float(row["learning_rate"]): row for row in rows}
    assert by_rate[1e30]["status"] == "FAILED"
    assert "diverged" in by_rate[1e30]["error"]
    assert by_rate[1e30]["score"] == ""
    assert by_rate[0.05]["status"] == "COMPLETED"
    assert rows[0]["status"] == "FAILED"  # the failure came first; the search went on
    assert re.search(r"trial 0: failed .*diverged", out)
    config = json.loads((tmp_path / "p" / "best" / "config.json").read_text())
    assert config["model"]["learning_rate"] == 0.05


def test_a_trial_scores_the_same_whatever_ran_before_it_in_the_process(tmp_path: Path) -> None:
    # The training order of a trial's epochs must not depend on how many trials this
    # process ran before (what lets N workers, or a rerun after a kill, match a serial
    # search): trial 1 of a search scores what the same configuration scores as trial 0.
    two = write_space(tmp_path, batch_size=[32, 64])
    run_search([*search_args(tmp_path, two), "--objective", "val_loss", "--max-trials", "2"])
    rows = read_trials_csv(tmp_path / "p" / "trials.csv")
    second = rows[1]
    alone = tmp_path / "alone"
    alone.mkdir()
    one = write_space(alone, batch_size=int(second["batch_size"]))
    run_search([*search_args(alone, one), "--objective", "val_loss", "--max-trials", "1"])
    first = read_trials_csv(alone / "p" / "trials.csv")[0]
    assert float(first["score"]) == float(second["score"])
