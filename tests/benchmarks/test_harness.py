"""The benchmark harness: its arithmetic against hand computation, its tables,
the import check of the start-up benchmark, and one tiny end-to-end run of
``python -m benchmarks.epoch`` on the current backend (shape only, not timed)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import epoch, startup
from benchmarks._common import REPO_ROOT, markdown_table, summarize


def test_parameters_and_flops_of_the_seed_network() -> None:
    assert epoch.PARAMETERS == 784 * 500 + 500 + 500 * 250 + 250 + 250 * 10 + 10 == 520_260
    assert epoch.FLOPS_PER_EXAMPLE == 6 * 520_260


def test_summarize_is_median_min_max() -> None:
    stats = summarize([5.0, 1.0, 3.0, 2.0])
    assert (stats["median"], stats["min"], stats["max"]) == (2.5, 1.0, 5.0)


def test_make_data_is_mnist_shaped_and_seeded() -> None:
    images, labels = epoch.make_data(300)
    assert images.shape == (300, 28, 28) and images.dtype.name == "uint8"
    assert set(labels.tolist()) == set(range(10))
    again, _ = epoch.make_data(300)
    assert (images == again).all()


def _rows() -> list[dict]:
    return [
        {"backend": "jax", "path": epoch.FLOOR, "gflops": 60.0},
        {"backend": "jax", "path": epoch.STOCK_KERAS, "examples": 1000, **summarize([0.3, 0.2])},
        # trained on fewer examples than asked (validation split): scaled to 1000
        {"backend": "jax", "path": epoch.KERASDNN, "examples": 500, **summarize([0.1, 0.12])},
        {"backend": "pytorch", "path": epoch.FLOOR, "gflops": 30.0},
        {"backend": "pytorch", "path": epoch.PURE_LOOP, "examples": 1000, **summarize([0.4])},
        {"backend": "torch", "path": epoch.KERASDNN, "error": "ModuleNotFoundError: x"},
    ]


def test_derived_seconds_and_ratios_match_hand_computation() -> None:
    rows = _rows()
    epoch.add_derived(rows, examples=1000)
    jax_floor, _, kerasdnn, torch_floor, pure, failed = rows
    assert jax_floor["median"] == pytest.approx(6 * 520_260 * 1000 / 60e9)
    assert torch_floor["median"] == pytest.approx(6 * 520_260 * 1000 / 30e9)
    assert kerasdnn["median"] == pytest.approx(0.22)  # 0.11 s for 500 → 0.22 s for 1000
    assert kerasdnn["measured"]["examples"] == 500
    assert kerasdnn["examples_per_second"] == pytest.approx(1000 / 0.22)
    assert kerasdnn["ratios"] == pytest.approx({
        "floor": 0.22 / (6 * 520_260 * 1000 / 60e9), "pure_pytorch": 0.22 / 0.4,
        "stock_keras": 0.22 / 0.25,
    })
    assert rows[1]["ratios"] == pytest.approx({"floor": 0.25 / jax_floor["median"],
                                               "pure_pytorch": 0.25 / 0.4})
    assert pure["ratios"] == pytest.approx({"floor": 0.4 / torch_floor["median"]})
    assert "ratios" not in failed and "median" not in failed


def test_table_shows_every_row_and_errors() -> None:
    rows = _rows()
    epoch.add_derived(rows, examples=1000)
    table = epoch.format_table(rows).splitlines()
    assert len(table) == 2 + len(rows)
    assert "÷ floor" in table[0] and "÷ stock Keras" in table[0]
    assert "0.22 [0.20–0.24]" in table[4] and "0.88" in table[4]  # kerasdnn ÷ stock Keras
    assert "error: ModuleNotFoundError: x" in table[-1]


def test_markdown_table_pads_columns() -> None:
    assert markdown_table(["a", "bb"], [["ccc", "d"]]).splitlines() == [
        "| a   | bb |", "|-----|----|", "| ccc | d  |"]


def test_import_check_sees_what_a_module_imports(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "heavy_fake.py").write_text("")
    (tmp_path / "light_cli.py").write_text(
        "import sys\nif '--help' not in sys.argv:\n    import heavy_fake\nraise SystemExit(0)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert startup.imported_modules("light_cli", ["--help"], watched=["heavy_fake"]) == []
    assert startup.imported_modules("light_cli", ["--run"], watched=["heavy_fake"]) == [
        "heavy_fake"]
    with pytest.raises(RuntimeError, match="exit status"):
        startup.imported_modules("no_such_module_here", [], watched=["heavy_fake"])


@pytest.mark.slow
def test_epoch_benchmark_end_to_end(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "epoch.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.epoch", "--backends", backend, "--examples", "1000",
         "--repeats", "1", "--device-prefetch", "off", "--timeout", "300", "--json", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu_model"]
    assert report["settings"]["examples"] == 1000
    rows = {(row["backend"], row["path"]): row for row in report["rows"]}
    assert set(rows) == {(backend, epoch.FLOOR), (backend, epoch.STOCK_KERAS),
                         (backend, epoch.KERASDNN), ("pytorch", epoch.FLOOR),
                         ("pytorch", epoch.PURE_LOOP)}
    measured = [(backend, epoch.FLOOR), (backend, epoch.STOCK_KERAS), (backend, epoch.KERASDNN)]
    pytorch_rows = [("pytorch", epoch.FLOOR), ("pytorch", epoch.PURE_LOOP)]
    if importlib.util.find_spec("torch") is None:  # e.g. the tox env of another backend
        for key in pytorch_rows:
            assert "No module named 'torch'" in rows[key]["error"], rows[key]
    else:
        measured += pytorch_rows
    for key in measured:
        assert "error" not in rows[key], rows[key]
        assert rows[key]["median"] > 0 and rows[key]["examples"] == 1000
    stock = rows[(backend, epoch.STOCK_KERAS)]
    assert stock["ratios"]["floor"] == pytest.approx(
        stock["median"] / rows[(backend, epoch.FLOOR)]["median"])
    lines = done.stdout.splitlines()
    assert sum(line.startswith("| ") for line in lines) == 1 + len(rows)
    for path in (epoch.FLOOR, epoch.STOCK_KERAS, epoch.KERASDNN, epoch.PURE_LOOP):
        assert any(f"| {path}" in line for line in lines)


def test_step_profile_gemms_are_the_steps_matmuls() -> None:
    from benchmarks import step_profile

    shapes = step_profile.gemm_shapes(100)
    for a, b in shapes:
        assert a[1] == b[0]
    flops = sum(2 * a[0] * a[1] * b[1] for a, b in shapes)
    weights = 784 * 500 + 500 * 250 + 250 * 10
    # forward and weight gradients: every weight; input gradients: all but the first layer
    assert flops == 2 * 100 * (2 * weights + 500 * 250 + 250 * 10)


def test_step_profile_table_divides_by_the_floor() -> None:
    from benchmarks import step_profile

    results = [{"backend": "jax", "device": "cpu", "rows": {
        "FLOP floor": summarize([2.0]),
        "kerasdnn, pipelines.feed": {**summarize([3.0, 3.2]), "steps_per_execution": 10},
        "JAX step": {"error": "RuntimeError: boom"},
    }}]
    table = step_profile.format_table(results).splitlines()
    assert len(table) == 2 + 3
    assert "| 1.00" in table[2] and "(10 steps/execution)" in table[3] and "| 1.55" in table[3]
    assert "error: RuntimeError: boom" in table[4]


def test_stream_benchmark_compares_streams_of_the_same_examples(tmp_path: Path) -> None:
    import numpy as np

    from benchmarks import stream

    images, labels = epoch.make_data(250)  # 3 batches per epoch, the last one of 50
    for make in (stream.pipelines_stream, stream.classic_stream):
        seen = [y for _, y in make(images, labels).take(6).as_numpy_iterator()]
        for first in (0, 3):  # each epoch: every example once, in a new order
            epoch_labels = np.concatenate(seen[first:first + 3])
            assert sorted(epoch_labels.tolist()) == sorted(labels.tolist())
        assert [len(y) for y in seen[:3]] == [100, 100, 50]

    out = tmp_path / "stream.json"
    assert stream.main(["--examples", "250", "--repeats", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(row["stream"], row["reader"]) for row in rows] == [
        (stream.PIPELINES, "in-graph"), (stream.PIPELINES, "host blocks"),
        (stream.PIPELINES, "host padded"), (stream.CLASSIC, "in-graph"),
        (stream.CLASSIC, "host padded"),
    ]
    assert all(row["cpu"]["median"] >= 0 and row["wall"]["median"] > 0 for row in rows)
