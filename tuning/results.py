"""What a search leaves behind: ``trials.csv``, ``search.png`` and the ranked table.

The rows come from the oracle's trial records (KerasTuner ``Trial`` objects),
so the chief of a distributed search sees the trials of every worker.  Every
file is written atomically.

Example:
    >>> rows = [{"trial_id": "0", "status": "COMPLETED", "score": 0.9, "seconds": 1.5,
    ...          "batch_size": 32}]
    >>> print(ranked_table(rows, "val_accuracy", "max"))  # doctest: +NORMALIZE_WHITESPACE
    rank trial val_accuracy seconds batch_size
       1     0       0.9000     1.5         32
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kerasdnn.core.io import atomic_path, atomic_write_json, atomic_write_text, read_json

__all__ = [
    "FIXED_COLUMNS",
    "best_so_far",
    "format_values",
    "plot_search",
    "ranked_table",
    "read_trials_csv",
    "read_workers",
    "record_workers",
    "search_figure",
    "trial_rows",
    "write_trials_csv",
]

FIXED_COLUMNS = ("trial_id", "status", "worker")
WORKERS_FILE = "workers.json"  # trial id -> the worker that ran it (trials.csv's column)
RESULT_COLUMNS = ("score", "seconds", "steps_per_epoch", "best_epoch", "pruned_at_epoch",
                  "pruned_value", "error")
EPOCH = "epoch"  # tuning.pruning.EPOCH: the metric of every per-epoch report
PRUNED = "PRUNED"  # trials.csv's status of a pruned trial (KerasTuner's record: STOPPED)


def trial_rows(trials: Iterable[Any], messages: Mapping[str, str] | None = None,
               workers: Mapping[str, str] | None = None, objective: str | None = None
               ) -> list[dict]:
    """One dict per KerasTuner trial, in trial order: id, status, worker, hyperparameters,
    results.  A pruned trial (KerasTuner's ``STOPPED``) is ``PRUNED``, with the epoch it
    reached (``pruned_at_epoch``) and its objective there (``pruned_value``); no score.

    ``messages`` maps a trial id to its error text (the last line is kept), ``workers``
    to the worker that ran it (:func:`record_workers`); ``objective`` names the
    search's objective (a pruned trial's ``pruned_value``).
    """
    messages = messages or {}
    workers = workers or {}
    rows = []
    for trial in sorted(trials, key=lambda t: _order(t.trial_id)):
        pruned = trial.status == "STOPPED"
        row: dict[str, Any] = {"trial_id": trial.trial_id,
                               "status": PRUNED if pruned else trial.status,
                               "worker": workers.get(trial.trial_id)}
        values = trial.hyperparameters.values
        for hp in trial.hyperparameters.space:  # declared order; inactive ones empty
            row[hp.name] = values.get(hp.name)
        row.update((name, value) for name, value in values.items() if name not in row)
        completed = trial.status == "COMPLETED"
        row["score"] = trial.score if completed else None
        row["seconds"] = _last(trial, "seconds")
        row["steps_per_epoch"] = _last(trial, "steps_per_epoch") if completed else None
        row["best_epoch"] = (trial.best_step + 1) if completed and trial.best_step is not None \
            else None
        reached = _reached(trial, objective) if pruned else None
        row["pruned_at_epoch"] = reached[0] if reached else None
        row["pruned_value"] = reached[1] if reached else None
        message = messages.get(trial.trial_id) or getattr(trial, "message", None) or ""
        row["error"] = _last_line(message) if not (completed or pruned) else ""
        rows.append(row)
    return rows


def write_trials_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """``trials.csv``: id, status, the hyperparameters, score, seconds, … (atomically)."""
    hyperparameters = [
        key for key in _keys(rows) if key not in (*FIXED_COLUMNS, *RESULT_COLUMNS)
    ]
    columns = [*FIXED_COLUMNS, *hyperparameters, *RESULT_COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(row.get(key)) for key in columns})
    atomic_write_text(path, buffer.getvalue())


def record_workers(oracle: Any, project_dir: str | Path, name: str | None = None) -> dict[str, str]:
    """Record in ``<project_dir>/workers.json`` which worker each trial is handed to.

    Wraps ``oracle.create_trial(tuner_id)``, through which KerasTuner hands out every
    trial (to the tuner of a serial search, and over gRPC to each worker of a
    distributed one); its ``Trial`` records keep no tuner id.  ``name`` replaces the
    tuner id (a serial search: ``"main"``).  A trial run again after a kill is recorded
    again, under the worker that reruns it.  Returns the live mapping, loaded first
    from the file of an earlier run of the search.

    Example:
        >>> import tempfile, types
        >>> oracle = types.SimpleNamespace(create_trial=lambda tuner_id: types.SimpleNamespace(
        ...     trial_id="0", status="RUNNING"))
        >>> workers = record_workers(oracle, tempfile.mkdtemp(), "main")
        >>> _ = oracle.create_trial("tuner0")
        >>> workers
        {'0': 'main'}
    """
    path = Path(project_dir) / WORKERS_FILE
    workers = read_workers(project_dir)
    create_trial = oracle.create_trial

    def create_and_record(tuner_id: str) -> Any:
        trial = create_trial(tuner_id)
        if trial.status == "RUNNING" and workers.get(trial.trial_id) != (
                name or tuner_id):
            workers[trial.trial_id] = name or tuner_id
            atomic_write_json(path, workers)
        return trial

    oracle.create_trial = create_and_record
    return workers


def read_workers(project_dir: str | Path) -> dict[str, str]:
    """The trial id -> worker mapping :func:`record_workers` keeps (empty: none yet)."""
    path = Path(project_dir) / WORKERS_FILE
    try:
        value = read_json(path)
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: the column stays empty, the search goes on
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def read_trials_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``trials.csv`` as dicts of strings (empty string: no value)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def best_so_far(scores: Sequence[float | None], direction: str) -> list[float | None]:
    """Running best of ``scores`` (``None``: failed, skipped).

    Example:
        >>> best_so_far([0.5, None, 0.7, 0.6], "max")
        [0.5, 0.5, 0.7, 0.7]
    """
    better = max if direction == "max" else min
    best: float | None = None
    running = []
    for score in scores:
        if score is not None and not math.isnan(score):
            best = score if best is None else better(best, score)
        running.append(best)
    return running


def plot_search(path: str | Path, rows: Sequence[Mapping[str, Any]], objective: str,
                direction: str) -> None:
    """``search.png``: :func:`search_figure`, written atomically."""
    figure = search_figure(rows, objective, direction)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100)


def search_figure(rows: Sequence[Mapping[str, Any]], objective: str, direction: str) -> Any:
    """The score of each trial, the best so far, pruned trials (a cross at the value
    where each stopped) and failed ones (a red band).

    Drawn on a ``Figure`` of its own, as the reports are: pyplot's backend (a
    notebook's inline plots) is left alone.

    Example:
        >>> figure = search_figure([{"status": "COMPLETED", "score": 0.9},
        ...     {"status": "PRUNED", "score": None, "pruned_value": 0.4}], "val_accuracy", "max")
        >>> [line.get_label() for line in figure.axes[0].lines]
        ['trial', 'best so far', 'pruned (value where stopped)']
    """
    from matplotlib.figure import Figure

    numbers = list(range(1, len(rows) + 1))
    scores = [row.get("score") for row in rows]
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    done = [(n, s) for n, s in zip(numbers, scores, strict=True) if s is not None]
    if done:
        axes.plot(*zip(*done, strict=True), "o", color="tab:blue", label="trial")
    running = best_so_far(scores, direction)
    steps = [(n, b) for n, b in zip(numbers, running, strict=True) if b is not None]
    if steps:
        axes.step(*zip(*steps, strict=True), where="post", color="tab:orange",
                  label="best so far")
    pruned = [(n, row["pruned_value"]) for n, row in zip(numbers, rows, strict=True)
              if row.get("status") == PRUNED and row.get("pruned_value") is not None]
    if pruned:
        axes.plot(*zip(*pruned, strict=True), "x", color="tab:gray", markersize=8,
                  label="pruned (value where stopped)")
    failed = [n for n, row in zip(numbers, rows, strict=True)
              if row.get("status") not in ("COMPLETED", PRUNED)]
    for n in failed:
        axes.axvline(n, color="tab:red", alpha=0.3, linewidth=4)
    if failed:
        axes.plot([], [], color="tab:red", alpha=0.3, linewidth=4, label="failed")
    axes.set_xlabel("trial")
    axes.set_ylabel(objective)
    axes.set_title(f"search: {objective} per trial ({direction}imize)")
    if numbers:
        axes.set_xticks(numbers if len(numbers) <= 20 else numbers[:: max(1, len(numbers) // 20)])
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    return figure


def ranked_table(rows: Sequence[Mapping[str, Any]], objective: str, direction: str,
                 top: int = 5) -> str:
    """The ``top`` completed trials, best first, with their hyperparameters and scores."""
    done = [row for row in rows if row.get("score") is not None]
    done.sort(key=lambda row: row["score"], reverse=direction == "max")
    done = done[:top]
    hyperparameters = [
        key for key in _keys(done)
        if key not in (*FIXED_COLUMNS, *RESULT_COLUMNS) and not key.startswith("tuner/")
    ]
    header = ["rank", "trial", objective, "seconds", *hyperparameters]
    lines = [header]
    for rank, row in enumerate(done, start=1):
        lines.append([
            str(rank), str(row["trial_id"]), f"{row['score']:.4f}",
            "" if row.get("seconds") is None else f"{row['seconds']:.1f}",
            *(_short(row.get(key)) for key in hyperparameters),
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        " ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    )


def format_values(values: Mapping[str, Any]) -> str:
    """``name=value`` pairs of a trial's hyperparameters, short numbers.

    Example:
        >>> format_values({"units_0": 64, "learning_rate": 0.0012345, "tuner/epochs": 2})
        'units_0=64 learning_rate=0.00123'
    """
    return " ".join(
        f"{key}={_short(value)}" for key, value in values.items() if not key.startswith("tuner/")
    )


def _keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        keys.extend(key for key in row if key not in keys)
    return keys


def _short(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _csv_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def _order(trial_id: str) -> tuple[int, str]:
    return (int(trial_id), trial_id) if str(trial_id).isdigit() else (1 << 60, str(trial_id))


def _last(trial: Any, name: str) -> float | None:
    if not trial.metrics.exists(name):
        return None
    value = trial.metrics.get_last_value(name)
    return None if value is None or math.isnan(value) else float(value)


def _reached(trial: Any, objective: str | None) -> tuple[int, float | None] | None:
    """The last epoch a trial reported (1-based) and its ``objective`` there."""
    if not trial.metrics.exists(EPOCH):
        return None
    step = max(observation.step for observation in trial.metrics.get_history(EPOCH))
    value = None
    if objective and trial.metrics.exists(objective):
        value = next((float(o.mean()) for o in trial.metrics.get_history(objective)
                      if o.step == step), None)
    return int(step) + 1, value


def _last_line(message: str) -> str:
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
