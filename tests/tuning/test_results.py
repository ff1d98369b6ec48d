"""search.png is drawn without touching pyplot's backend (a notebook's inline plots)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from tuning.results import plot_search


def test_plot_search_leaves_pyplot_backend_alone(tmp_path: Path) -> None:
    previous = matplotlib.get_backend()
    matplotlib.use("svg")  # any backend other than Agg, as a notebook's inline one
    try:
        rows = [{"trial_id": "0", "status": "COMPLETED", "score": 0.8},
                {"trial_id": "1", "status": "FAILED", "score": None},
                {"trial_id": "2", "status": "COMPLETED", "score": 0.9}]
        plot_search(tmp_path / "search.png", rows, "val_accuracy", "max")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
    assert (tmp_path / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_search_figure_marks_pruned_trials_where_they_stopped() -> None:
    from tuning.results import search_figure

    rows = [{"status": "COMPLETED", "score": 0.7}, {"status": "PRUNED", "score": None,
                                                    "pruned_value": 0.3},
            {"status": "FAILED", "score": None}, {"status": "COMPLETED", "score": 0.9}]
    axes = search_figure(rows, "val_accuracy", "max").axes[0]
    lines = {line.get_label(): line for line in axes.lines}
    pruned = lines["pruned (value where stopped)"]
    assert list(pruned.get_xdata()) == [2] and list(pruned.get_ydata()) == [0.3]
    assert pruned.get_marker() == "x"
    assert list(lines["trial"].get_xdata()) == [1, 4]
    assert list(lines["best so far"].get_ydata()) == [0.7, 0.7, 0.7, 0.9]
    assert "failed" in lines  # the legend's entry for the red band of trial 3
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert "pruned (value where stopped)" in legend
