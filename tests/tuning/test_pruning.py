"""``--prune``: the median rule and ASHA, decided by KerasTuner's oracle from per-epoch
reports, against a reference written here from the rules' definitions; a pruned
trial in a real search (its row, never best, never rerun); the same with two workers."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest

from kerasdnn.core.config import ModelConfig
from tests.tuning.conftest import run_search, search_args, write_space
from tuning.hypermodel import DNNHyperModel, make_tuner
from tuning.pruning import Pruner
from tuning.results import read_trials_csv, read_workers

# Per-epoch val_accuracy of 7 trials; the events below interleave them as parallel
# workers would.  Trial 2 is the best of all at epoch 1 (the warm-up) and then drops;
# several values tie at the median or at ASHA's cut.
TABLE = {
    "0": [0.50, 0.60, 0.70, 0.80, 0.80, 0.82],
    "1": [0.40, 0.60, 0.65, 0.70, 0.70, 0.70],
    "2": [0.95, 0.30, 0.90, 0.99, 0.99, 0.99],
    "3": [0.45, 0.60, 0.70, 0.75, 0.76, 0.77],
    "4": [0.30, 0.45, 0.65, 0.72, 0.85, 0.86],
    "5": [0.50, 0.55, 0.66, 0.80, 0.80, 0.80],
    "6": [0.20, 0.62, 0.70, 0.60, 0.90, 0.95],
}
EPOCHS = len(TABLE["0"])
# (trial, epoch): trials 0 and 1 run together, then 2 and 3, then 4, 5 and 6.
EVENTS = ([(t, e) for e in range(1, EPOCHS + 1) for t in ("0", "1")]
          + [(t, e) for e in range(1, EPOCHS + 1) for t in ("2", "3")]
          + [(t, e) for e in range(1, EPOCHS + 1) for t in ("4", "5", "6")])


def reference(rule: str, direction: str, warmup: int, min_trials: int,
              table: dict[str, list[float]]) -> dict[str, int]:
    """The trials each rule stops, and the epoch (1-based), replaying EVENTS in order."""
    sign = 1 if direction == "max" else -1
    seen: dict[int, dict[str, float]] = {}  # epoch -> trial -> value reported
    stopped: dict[str, int] = {}
    for trial, epoch in EVENTS:
        if trial in stopped:
            continue
        value = sign * table[trial][epoch - 1]
        others = [sign * v for t, v in seen.get(epoch, {}).items()]
        seen.setdefault(epoch, {})[trial] = table[trial][epoch - 1]
        if epoch <= warmup or len(others) < min_trials:
            continue
        if rule == "median":
            ordered = sorted(others)
            middle = len(ordered) // 2
            median = ordered[middle] if len(ordered) % 2 else \
                (ordered[middle - 1] + ordered[middle]) / 2
            if value < median:
                stopped[trial] = epoch
        else:
            if epoch not in {(warmup + 1) * 3 ** k for k in range(4)}:
                continue
            everyone = [*others, value]
            keep = max(1, len(everyone) // 3)
            if sum(v > value for v in everyone) >= keep:  # not among the best `keep`
                stopped[trial] = epoch
    return stopped


def replay(pruner: Pruner, table: dict[str, list[float]]) -> tuple[dict[str, int], object]:
    """EVENTS through a real tuner's oracle, as KerasTuner's workers report: the trials
    stopped (the epoch their last report carried) and the oracle."""
    objective = "val_accuracy" if pruner.direction == "max" else "val_loss"
    tuner = make_tuner("random", DNNHyperModel(ModelConfig(input_shape=(4,))),
                       objective=objective, seed=1, max_trials=len(table),
                       directory=tempfile.mkdtemp(), project_name="p", pruner=pruner)
    oracle = tuner.oracle
    trials = {}
    for trial_id in table:  # every trial running at once, one tuner id each
        trial = oracle.create_trial(f"tuner{trial_id}")
        assert trial.trial_id == trial_id
        trials[trial_id] = trial
    stopped: dict[str, int] = {}
    for trial_id, epoch in EVENTS:
        if trial_id in stopped:
            continue
        reply = oracle.update_trial(trial_id, {objective: table[trial_id][epoch - 1],
                                               "epoch": epoch}, step=epoch - 1)
        if reply.status == "STOPPED":
            stopped[trial_id] = epoch
        if reply.status == "STOPPED" or epoch == EPOCHS:
            trials[trial_id].status = "COMPLETED"  # what the tuner reports when fit returns
            oracle.end_trial(trials[trial_id])
    return stopped, oracle


@pytest.mark.parametrize("direction", ["max", "min"])
@pytest.mark.parametrize(("rule", "warmup", "min_trials"),
                         [("median", 1, 2), ("median", 0, 1), ("median", 2, 3),
                          ("asha", 0, 2), ("asha", 1, 2), ("asha", 0, 4)])
def test_the_oracle_prunes_exactly_as_the_reference(rule: str, warmup: int, min_trials: int,
                                                    direction: str) -> None:
    table = TABLE if direction == "max" else \
        {t: [round(1 - v, 2) for v in values] for t, values in TABLE.items()}
    want = reference(rule, direction, warmup, min_trials, table)
    got, oracle = replay(Pruner(rule, direction, warmup=warmup, min_trials=min_trials), table)
    assert got == want
    assert want and len(want) < len(table)  # the case decides something both ways
    statuses = {t: oracle.trials[t].status for t in table}
    assert statuses == {t: "STOPPED" if t in want else "COMPLETED" for t in table}
    best = oracle.get_best_trials(1)[0]
    assert best.trial_id not in want
    better = max if direction == "max" else min
    completed = {t: better(values) for t, values in table.items() if t not in want}
    assert best.score == pytest.approx(better(completed.values()))


def test_a_trial_best_in_its_warmup_then_pruned_is_never_best() -> None:
    # Trial 2 holds the best value of the table (0.99) but is pruned at epoch 2.
    got, oracle = replay(Pruner("median", "max", warmup=1, min_trials=2), TABLE)
    assert got["2"] == 2
    assert oracle.get_best_trials(1)[0].trial_id != "2"
    assert oracle.trials["2"].score is None


def test_ties_with_the_median_and_the_cut_go_on() -> None:
    rule = Pruner("median", "max", warmup=0, min_trials=2)
    assert not rule.decide(2, 0.6, [0.6, 0.6])
    assert rule.decide(2, 0.59, [0.6, 0.6])
    asha = Pruner("asha", "max", warmup=0, min_trials=2)
    assert not asha.decide(1, 0.9, [0.9, 0.5])  # best of 3 tied with another: kept
    assert asha.decide(1, 0.5, [0.9, 0.6])


# --------------------------------------------------------------------------- real searches

PRUNE_SPACE = {"optimizer": "sgd", "learning_rate": [0.05, 0.0001], "batch_size": [32, 64]}


def _pruned_search(folder: Path, *extra: str) -> list[str]:
    space = write_space(folder, **PRUNE_SPACE)
    args = search_args(folder, space, "--max-trials", "4", "--prune", "median",
                       "--prune-warmup", "0", "--prune-min-trials", "1", *extra)
    args[args.index("--epochs") + 1] = "2"
    return args


@pytest.mark.slow
def test_a_pruned_trial_says_when_it_stopped_is_never_best_and_never_rerun(
        tmp_path: Path) -> None:
    args = _pruned_search(tmp_path)
    out = run_search(args)
    project = tmp_path / "p"
    rows = read_trials_csv(project / "trials.csv")
    pruned = [row for row in rows if row["status"] == "PRUNED"]
    assert pruned, out
    decisions = json.loads((project / "pruning.json").read_text())
    stops = {d["trial_id"]: d["epoch"] for d in decisions if d["pruned"]}
    for row in pruned:
        assert int(row["pruned_at_epoch"]) == stops[row["trial_id"]]
        assert row["score"] == "" and row["best_epoch"] == ""
        assert float(row["pruned_value"]) == pytest.approx(
            next(d["value"] for d in decisions if d["pruned"] and d["trial_id"] == row["trial_id"]))
        assert re.search(rf"^trial {row['trial_id']}: pruned at epoch {row['pruned_at_epoch']} ",
                         out, re.M)
    # each epoch of a pruned trial is reported once: it trained no further
    for row in pruned:
        epochs = [d["epoch"] for d in decisions if d["trial_id"] == row["trial_id"]]
        assert epochs == list(range(1, int(row["pruned_at_epoch"]) + 1))
    completed = {row["trial_id"]: float(row["score"]) for row in rows
                 if row["status"] == "COMPLETED"}
    best = max(completed, key=completed.get)
    assert re.search(rf"^retraining trial {best} ", out, re.M)

    again = run_search(args)  # the same command: nothing is left to run
    assert not re.search(r"^trial \d+:", again, re.M), again
    assert read_trials_csv(project / "trials.csv") == rows


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax", reason="run on the JAX env")
def test_with_two_workers_the_chief_decides_from_both_workers_reports(tmp_path: Path) -> None:
    from tuning.search import main

    args = _pruned_search(tmp_path, "--workers", "2")
    args[args.index("--max-trials") + 1] = "6"
    assert main(args) == 0
    project = tmp_path / "p"
    decisions = json.loads((project / "pruning.json").read_text())
    workers = read_workers(project)
    reported: dict[int, dict[str, float]] = {}  # what the chief had heard, in its order
    mixed = False
    for d in decisions:
        heard = reported.setdefault(d["epoch"], {})
        assert d["others"] == pytest.approx(heard)  # every report the chief had, no other
        rule = Pruner("median", "max", warmup=0, min_trials=1)
        assert d["pruned"] == rule.decide(d["epoch"], d["value"], list(heard.values()))
        ran_on = {workers[t] for t in d["others"]} | {workers[d["trial_id"]]}
        mixed |= ran_on == {"tuner1", "tuner2"}
        heard[d["trial_id"]] = d["value"]
    assert mixed, (decisions, workers)  # a decision weighed both workers' trials
    rows = read_trials_csv(project / "trials.csv")
    assert {row["worker"] for row in rows} == {"tuner1", "tuner2"}
    assert any(row["status"] == "PRUNED" for row in rows)
