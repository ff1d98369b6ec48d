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
