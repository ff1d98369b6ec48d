"""One configuration run on several backends, side by side: the numbers, the
largest differences between backends, and a figure.

:func:`summarize` reads the run directories ``<out>/<backend>/`` that
``python -m kerasdnn.compare`` wrote; :func:`comparison_markdown` and
:func:`comparison_figure` present the summary.

Example:
    >>> summary = summarize("cmp", {"torch": {"status": "not installed", "reason": "no torch"}})
    >>> summary["backends"]["torch"]["status"], summary["differences"]["test_probabilities"]
    ('not installed', {'max': None, 'pairs': {}})
"""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from kerasdnn.core.io import read_json
from kerasdnn.core.rundir import (
    COMPARE_PNG,
    EPOCH_TIMES_FILE,
    HISTORY_FILE,
    REPORT_JSON,
    backend_run_dir,
    read_predictions,
)

__all__ = ["FINISHED", "check_failure", "comparison_figure", "comparison_markdown", "summarize"]

FINISHED = "finished"
_COLUMNS = (  # (label, row key, format)
    ("accuracy", "accuracy", ".4f"),
    ("F1 macro", "f1_macro", ".4f"),
    ("ROC AUC macro", "roc_auc_macro", ".4f"),
    ("final loss", "final_loss", ".4f"),
    ("final val loss", "final_val_loss", ".4f"),
    ("s/epoch (median)", "median_epoch_seconds", ".3f"),
    ("wall s", "wall_seconds", ".1f"),
    ("peak RSS MiB", "peak_rss_mib", ".0f"),
)
_MARKERS = "os^"


def summarize(out_dir: str | os.PathLike[str], outcomes: Mapping[str, Mapping[str, Any]]) -> dict:
    """The comparison of the runs in ``out_dir/<backend>/``.

    Args:
        out_dir: the comparison folder.
        outcomes: ``{backend: {"status": "finished" | other, "reason": ...,
            "wall_seconds": ..., "peak_rss_mib": ...}}`` in the order run.

    Returns:
        ``{"backends": {backend: row}, "differences": {"train_loss": ...,
        "test_probabilities": ...}}``; a finished backend's row adds accuracy,
        f1_macro, roc_auc_macro, final_loss, final_val_loss, epochs and
        median_epoch_seconds; each difference is ``{"max": largest absolute
        difference over all pairs (None with fewer than two), "pairs": {"a vs b": value}}``.
    """
    out = Path(out_dir)
    rows: dict[str, dict[str, Any]] = {}
    losses: dict[str, np.ndarray] = {}
    probabilities: dict[str, np.ndarray] = {}
    for backend, outcome in outcomes.items():
        row = dict(outcome)
        if row.get("status") == FINISHED:
            run = backend_run_dir(out, backend)
            report = read_json(run / REPORT_JSON)
            history = _history(run)
            times = read_json(run / EPOCH_TIMES_FILE)
            row.update(
                accuracy=report["accuracy"],
                f1_macro=report["f1_macro"],
                roc_auc_macro=report["roc_auc"]["ovr_macro"],
                final_loss=float(history["loss"][-1]),
                final_val_loss=(float(history["val_loss"][-1])
                                if "val_loss" in history.dtype.names else None),
                epochs=len(history),
                median_epoch_seconds=statistics.median(times["epoch_seconds"]),
            )
            losses[backend] = np.asarray(history["loss"], dtype=np.float64)
            probabilities[backend] = read_predictions(run)[1].astype(np.float64)
        rows[backend] = row
    return {
        "backends": rows,
        "differences": {
            "train_loss": _largest_differences(losses),
            "test_probabilities": _largest_differences(probabilities),
        },
    }


def _largest_differences(values: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Largest absolute difference of every pair (over their common epochs, for curves)."""
    pairs: dict[str, float | None] = {}
    for (a, first), (b, second) in itertools.combinations(values.items(), 2):
        if first.ndim == 1:
            common = min(len(first), len(second))  # early stopping may end runs apart
            first, second = first[:common], second[:common]
        pairs[f"{a} vs {b}"] = (float(np.max(np.abs(first - second)))
                                if first.shape == second.shape and first.size else None)
    known = [value for value in pairs.values() if value is not None]
    return {"max": max(known) if known else None, "pairs": pairs}


def comparison_markdown(summary: Mapping[str, Any], *, title: str | None = None) -> str:
    """``compare.md``: one row per backend, the differences, the figure.

    Example:
        >>> text = comparison_markdown({"backends": {"jax": {"status": "not installed",
        ...     "reason": "no jax"}}, "differences": {}})
        >>> "| jax | not installed: no jax |" in text
        True
    """
    out = [f"# {title or 'Backend comparison'}", "",
           "| backend | " + " | ".join(label for label, _, _ in _COLUMNS) + " |",
           "| --- |" + " ---: |" * len(_COLUMNS)]
    for backend, row in summary["backends"].items():
        if row.get("status") == FINISHED:
            cells = [_cell(row.get(key), spec) for _, key, spec in _COLUMNS]
        else:
            cells = [f"{row.get('status')}: {row.get('reason', '')}".replace("|", "\\|")]
            cells += [""] * (len(_COLUMNS) - 1)
        out.append(f"| {backend} | " + " | ".join(cells) + " |")
    out += ["", "## Largest absolute differences between backends", ""]
    for key, label in (("train_loss", "training loss per epoch"),
                       ("test_probabilities", "test probabilities")):
        found = summary["differences"].get(key, {})
        if not found.get("pairs"):
            out.append(f"- {label}: n/a (fewer than two finished backends)")
            continue
        out.append(f"- {label}: **{_cell(found['max'], '.3g')}** (" + ", ".join(
            f"{pair} {_cell(value, '.3g')}" for pair, value in found["pairs"].items()) + ")")
    check = summary.get("check")
    if check:
        verdict = "passed" if check["passed"] else "FAILED"
        if check.get("unfinished"):
            verdict += " (" + "; ".join(f"{name} did not finish: {why}" for name, why
                                        in check["unfinished"].items()).replace("|", "\\|") + ")"
        out.append(f"- check: test probabilities within {check['tolerance']:g}: {verdict}")
    out += ["", "## Curves and epoch times", "", f"[![compare]({COMPARE_PNG})]({COMPARE_PNG})", ""]
    return "\n".join(out)


def check_failure(check: Mapping[str, Any]) -> str:
    """Why a failed ``--check`` failed, in one phrase: the backends that did not
    finish, else the largest difference against the tolerance.

    Example:
        >>> check_failure({"tolerance": 1e-4, "max_probability_difference": 0.5,
        ...                "unfinished": {"torch": "failed: boom"}})
        'torch did not finish (failed: boom)'
    """
    unfinished = check.get("unfinished") or {}
    if unfinished:
        return "; ".join(f"{name} did not finish ({why})" for name, why in unfinished.items())
    largest = check["max_probability_difference"]
    if largest is None:
        return "fewer than two backends finished"
    return f"test probabilities differ by {largest:.3g}, more than {check['tolerance']:g}"


def comparison_figure(out_dir: str | os.PathLike[str], summary: Mapping[str, Any]) -> Figure:
    """Loss and accuracy curves of every finished backend overlaid (training solid,
    validation dashed), and the median seconds per epoch as bars."""
    figure = Figure(figsize=(17.0, 4.8), layout="constrained")
    loss_ax, accuracy_ax, time_ax = figure.subplots(1, 3)
    finished = [b for b, row in summary["backends"].items() if row.get("status") == FINISHED]
    for index, backend in enumerate(finished):
        history = _history(backend_run_dir(Path(out_dir), backend))
        epochs = np.arange(1, len(history) + 1)
        for ax, base in ((loss_ax, "loss"), (accuracy_ax, "accuracy")):
            for key, style, label in ((base, "-", backend),
                                      (f"val_{base}", "--", f"{backend} (validation)")):
                if key in history.dtype.names:
                    # Backends that agree overlap: shrinking markers keep each one visible.
                    ax.plot(epochs, history[key], style, color=f"C{index}",
                            marker=_MARKERS[index % len(_MARKERS)], markersize=9 - 2.5 * index,
                            fillstyle="none", label=label)
    for ax, base in ((loss_ax, "loss"), (accuracy_ax, "accuracy")):
        ax.set_title(f"{base}: training (solid), validation (dashed)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if finished:
            ax.legend(fontsize="small")
    seconds = [summary["backends"][b]["median_epoch_seconds"] for b in finished]
    time_ax.bar(finished, seconds, color=[f"C{i}" for i in range(len(finished))])
    time_ax.set_title("median seconds per epoch")
    time_ax.set_ylabel("seconds")
    return figure


def _history(run_dir: Path) -> np.ndarray:
    """history.csv as a structured array, one field per column (no Keras import here)."""
    return np.atleast_1d(np.genfromtxt(run_dir / HISTORY_FILE, delimiter=",", names=True))


def _cell(value: Any, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(float(value), spec)
