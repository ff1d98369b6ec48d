"""The benchmark harness: its arithmetic against hand computation, its tables,
the import check of the start-up benchmark, one tiny end-to-end run of
``python -m benchmarks.epoch`` on the current backend (shape only, not timed), and
``benchmarks.epoch_grid`` on rows it is given (its table; its cells reach the workers)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import epoch, epoch_grid, startup
from benchmarks._common import REPO_ROOT, Completed, markdown_table, summarize


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
        {"backend": "jax", "path": epoch.STOCK_KERAS_SPE, "examples": 1000,
         **summarize([0.2, 0.24])},
        # trained on fewer examples than asked (validation split): scaled to 1000
        {"backend": "jax", "path": epoch.KERASDNN, "examples": 500, **summarize([0.1, 0.12])},
        {"backend": "pytorch", "path": epoch.FLOOR, "gflops": 30.0},
        {"backend": "pytorch", "path": epoch.PURE_LOOP, "examples": 1000, **summarize([0.4])},
        {"backend": "torch", "path": epoch.KERASDNN, "error": "ModuleNotFoundError: x"},
    ]


def test_derived_seconds_and_ratios_match_hand_computation() -> None:
    rows = _rows()
    epoch.add_derived(rows, examples=1000)
    jax_floor, stock, stock_spe, kerasdnn, torch_floor, pure, failed = rows
    machine_floor = 6 * 520_260 * 1000 / 60e9  # the best rate of any library: JAX's 60
    assert jax_floor["median"] == pytest.approx(machine_floor)
    assert torch_floor["median"] == pytest.approx(6 * 520_260 * 1000 / 30e9)
    assert torch_floor["ratios"] == pytest.approx({"floor": 2.0})  # its own rate is half
    assert jax_floor["ratios"] == pytest.approx({"floor": 1.0})
    assert kerasdnn["median"] == pytest.approx(0.22)  # 0.11 s for 500 → 0.22 s for 1000
    assert kerasdnn["measured"]["examples"] == 500
    assert kerasdnn["examples_per_second"] == pytest.approx(1000 / 0.22)
    # ÷ stock Keras against the faster stock row: 0.22 s (10 steps/execution), not 0.25 s
    assert kerasdnn["ratios"] == pytest.approx({
        "floor": 0.22 / machine_floor, "pure_pytorch": 0.22 / 0.4, "stock_keras": 0.22 / 0.22,
    })
    assert stock["ratios"] == pytest.approx({"floor": 0.25 / machine_floor,
                                             "pure_pytorch": 0.25 / 0.4,
                                             "stock_keras": 0.25 / 0.22})
    assert stock_spe["ratios"]["stock_keras"] == pytest.approx(1.0)
    # the pure loop's floor is the machine's too, not PyTorch's own (slower) rate
    assert pure["ratios"] == pytest.approx({"floor": 0.4 / machine_floor})
    assert "ratios" not in failed and "median" not in failed


def test_rounds_merge_into_one_row_per_path() -> None:
    written = [
        {"backend": "jax", "path": epoch.FLOOR, "device": "cpu", "gflops": 50.0},
        {"backend": "jax", "path": epoch.KERASDNN, "device": "cpu", "examples": 900,
         "steps_per_execution": 10, **summarize([0.3])},
        {"backend": "jax", "path": epoch.STOCK_KERAS, "error": "ValueError: boom"},
        # the next round, rows in the reverse order
        {"backend": "jax", "path": epoch.STOCK_KERAS, "error": "ValueError: again"},
        {"backend": "jax", "path": epoch.KERASDNN, "device": "cpu", "examples": 900,
         "steps_per_execution": 10, **summarize([0.1])},
        {"backend": "jax", "path": epoch.FLOOR, "device": "cpu", "gflops": 70.0},
    ]
    floor, kerasdnn, stock = epoch.merge_rounds(written)
    assert (floor["gflops"], floor["gflops_rounds"]) == (70.0, [50.0, 70.0])
    assert kerasdnn["seconds"] == [0.3, 0.1] and kerasdnn["median"] == pytest.approx(0.2)
    assert kerasdnn["examples"] == 900 and kerasdnn["steps_per_execution"] == 10
    assert stock["error"] == "ValueError: boom" and "median" not in stock


def test_workers_alternate_the_order_of_their_rows(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    measured: list[str] = []
    monkeypatch.setattr(epoch, "torch_device", lambda: "cpu")  # PyTorch may not be installed
    monkeypatch.setattr(epoch, "torch_gemm_gflops",
                        lambda *args: measured.append(epoch.FLOOR) or 1.0)
    monkeypatch.setattr(epoch, "time_pure_torch",
                        lambda *args: measured.append(epoch.PURE_LOOP) or summarize([1.0]))
    for round_ in (0, 1):
        args = epoch.parse_args(["--worker", epoch.PURE_TORCH, "--result",
                                 str(tmp_path / "rows"), "--round", str(round_),
                                 "--examples", "100", "--repeats", "1"])
        epoch.run_worker(epoch.PURE_TORCH, args)
    assert measured == [epoch.FLOOR, epoch.PURE_LOOP, epoch.PURE_LOOP, epoch.FLOOR]


def test_table_shows_every_row_and_errors() -> None:
    rows = _rows()
    epoch.add_derived(rows, examples=1000)
    table = epoch.format_table(rows).splitlines()
    assert len(table) == 2 + len(rows)
    assert "÷ floor" in table[0] and "÷ stock Keras" in table[0]
    assert "0.22 [0.20–0.24]" in table[5] and "| 1.00 " in table[5]  # kerasdnn ÷ stock Keras
    assert "error: ModuleNotFoundError: x" in table[-1]


def test_kerasdnn_rows_show_their_input_path_and_compare_with_stock() -> None:
    for backend in ("tensorflow", "jax", "torch"):
        assert epoch.KERASDNN_STREAM in epoch.EXPECTED_PATHS[backend]
    rows = [
        {"backend": "jax", "path": epoch.STOCK_KERAS, "examples": 1000, **summarize([0.4])},
        {"backend": "jax", "path": epoch.KERASDNN, "input_path": "resident", "examples": 1000,
         **summarize([0.2])},
        {"backend": "jax", "path": epoch.KERASDNN_STREAM, "input_path": "stream",
         "examples": 1000, **summarize([0.3])},
    ]
    epoch.add_derived(rows, examples=1000)
    assert rows[1]["ratios"]["stock_keras"] == pytest.approx(0.5)
    assert rows[2]["ratios"]["stock_keras"] == pytest.approx(0.75)
    table = epoch.format_table(rows).splitlines()
    assert "| kerasdnn (resident) " in table[3] and "| 0.50 " in table[3]
    assert "| kerasdnn, tf.data stream " in table[4] and "| 0.75 " in table[4]


def _stub_measurements(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every row of benchmarks.epoch's workers made instant; what each was asked is
    recorded as ``(row, examples, batch size[, input path])``."""
    asked: list[tuple] = []

    def stock(images, labels, repeats, steps_per_execution=1, batch_size=epoch.BATCH_SIZE):
        path = epoch.STOCK_KERAS_SPE if steps_per_execution > 1 else epoch.STOCK_KERAS
        asked.append((path, len(images), batch_size))
        # 10 steps/execution is the faster stock row at batch 100 only
        faster = steps_per_execution > 1 and batch_size == 100
        return {"examples": len(images), "batch_size": batch_size,
                **summarize([len(images) / (2000.0 if faster else 1000.0)])}

    def kerasdnn(images, labels, repeats, device_prefetch, workdir, steps_per_execution,
                 batch_size=epoch.BATCH_SIZE, input_path="auto", jit_compile="auto"):
        asked.append((epoch.KERASDNN, len(images), batch_size, input_path))
        path = "resident" if input_path == "auto" else input_path
        return {"examples": len(images), "batch_size": batch_size, "input_path": path,
                **summarize([len(images) / (4000.0 if path == "resident" else 1500.0)])}

    def pure(images, labels, repeats, batch_size=epoch.BATCH_SIZE):
        asked.append((epoch.PURE_LOOP, len(images), batch_size))
        return {"examples": len(images), "batch_size": batch_size,
                **summarize([len(images) / 3000.0])}

    for name, value in {"keras_device": lambda name: "cpu", "torch_device": lambda: "cpu",
                        "keras_gemm_gflops": lambda *args: 50.0,
                        "torch_gemm_gflops": lambda *args: 50.0, "time_stock_keras": stock,
                        "time_kerasdnn": kerasdnn, "time_pure_torch": pure}.items():
        monkeypatch.setattr(epoch, name, value)
    return asked


def test_batch_size_reaches_every_row(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    asked = _stub_measurements(monkeypatch)
    for worker in ("jax", epoch.PURE_TORCH):
        args = epoch.parse_args(["--worker", worker, "--result", str(tmp_path / "rows"),
                                 "--examples", "300", "--repeats", "1", "--batch-size", "150"])
        epoch.run_worker(worker, args)
    assert sorted(asked) == sorted([
        (epoch.STOCK_KERAS, 300, 150), (epoch.STOCK_KERAS_SPE, 300, 150),
        (epoch.KERASDNN, 300, 150, "auto"), (epoch.KERASDNN, 300, 150, "stream"),
        (epoch.PURE_LOOP, 300, 150)])
    written = [json.loads(line) for line in (tmp_path / "rows").read_text().splitlines()]
    assert {row["path"]: row.get("input_path") for row in written if row["backend"] == "jax"
            } == {epoch.FLOOR: None, epoch.STOCK_KERAS: None, epoch.STOCK_KERAS_SPE: None,
                  epoch.KERASDNN: "resident", epoch.KERASDNN_STREAM: "stream"}
    with pytest.raises(SystemExit):
        epoch.parse_args(["--examples", "100", "--batch-size", "200"])


def _grid_cell(examples: int, batch_size: int, stock_spe: float) -> dict:
    rows = [
        {"backend": "jax", "device": "cpu", "path": epoch.STOCK_KERAS, "examples": examples,
         **summarize([1.0])},
        {"backend": "jax", "device": "cpu", "path": epoch.STOCK_KERAS_SPE,
         "examples": examples, **summarize([stock_spe])},
        {"backend": "jax", "device": "cpu", "path": epoch.KERASDNN, "input_path": "resident",
         "examples": examples, **summarize([0.5])},
        {"backend": "jax", "device": "cpu", "path": epoch.KERASDNN_STREAM,
         "input_path": "stream", "error": "RuntimeError: boom"},
        {"backend": "tensorflow", "device": "cpu", "path": epoch.STOCK_KERAS,
         "examples": examples, **summarize([2.0])},
        {"backend": "tensorflow", "device": "cpu", "path": epoch.KERASDNN,
         "input_path": "stream", "examples": examples, **summarize([1.0])},
        {"backend": epoch.PURE_TORCH, "device": "cpu", "path": epoch.PURE_LOOP,
         "examples": examples, **summarize([0.25])},
    ]
    epoch.add_derived(rows, examples)
    return {"examples": examples, "batch_size": batch_size, "rows": rows}


def test_grid_table_one_row_per_path_two_columns_per_cell() -> None:
    cells = [_grid_cell(1000, 100, stock_spe=0.8), _grid_cell(2000, 1000, stock_spe=1.5)]
    table = epoch_grid.format_grid(cells).splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["backend", "path", "1,000 × batch 100: ex/s", "÷ stock",
                      "2,000 × batch 1000: ex/s", "÷ stock"]
    lines = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2]):
             [cell.strip() for cell in line.strip("|").split("|")[2:]] for line in table[2:]}
    assert list(lines) == [
        ("jax (cpu)", "kerasdnn (resident)"), ("jax (cpu)", epoch.KERASDNN_STREAM),
        ("jax (cpu)", epoch_grid.STOCK_BEST), ("tensorflow (cpu)", "kerasdnn (stream)"),
        ("tensorflow (cpu)", epoch_grid.STOCK_BEST), ("torch (no Keras) (cpu)", epoch.PURE_LOOP)]
    # 1,000 examples: stock best 0.8 s (10 steps/execution); 2,000: 1.0 s (one step)
    assert lines[("jax (cpu)", "kerasdnn (resident)")] == ["2,000", "0.62", "4,000", "0.50"]
    assert lines[("jax (cpu)", epoch_grid.STOCK_BEST)] == [
        "1,250", "10 steps/exec", "2,000", "1 step/exec"]
    assert lines[("jax (cpu)", epoch.KERASDNN_STREAM)] == ["error", "", "error", ""]
    assert lines[("tensorflow (cpu)", "kerasdnn (stream)")] == ["1,000", "0.50", "2,000", "0.50"]
    assert lines[("torch (no Keras) (cpu)", epoch.PURE_LOOP)] == ["4,000", "", "8,000", ""]


def test_grid_runs_benchmarks_epoch_per_cell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    asked = _stub_measurements(monkeypatch)

    def in_process(module, worker, options, *, backend, timeout):  # the worker, no subprocess
        result = tmp_path / "result"
        result.unlink(missing_ok=True)
        assert epoch.main(["--worker", worker, "--result", str(result), *options]) == 0
        return Completed(0, 0.0, "", ""), result.read_text()

    monkeypatch.setattr(epoch, "run_worker_process", in_process)
    out = tmp_path / "grid.json"
    assert epoch_grid.main(["--backends", "jax", "--sizes", "200,400", "--batch-sizes", "100",
                            "--repeats", "1", "--json", str(out)]) == 0
    assert {entry[1:3] for entry in asked} == {(200, 100), (400, 100)}
    cells = json.loads(out.read_text())["cells"]
    assert [(cell["examples"], cell["batch_size"]) for cell in cells] == [(200, 100), (400, 100)]
    printed = capsys.readouterr().out.splitlines()
    assert any("cores" in line for line in printed)  # the machine and its load
    rows = [line for line in printed if line.startswith("| ")]
    assert len(rows) == 1 + 4  # header; kerasdnn, its stream, stock best, pure PyTorch
    assert "| kerasdnn (resident) " in rows[1] and "| 10 steps/exec " in rows[3]


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
         "--batch-size", "200", "--repeats", "1", "--device-prefetch", "off",
         "--timeout", "300", "--json", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu_model"]
    assert report["settings"]["examples"] == 1000 and report["settings"]["batch_size"] == 200
    rows = {(row["backend"], row["path"]): row for row in report["rows"]}
    assert set(rows) == {*((backend, path) for path in epoch.EXPECTED_PATHS[backend]),
                         ("pytorch", epoch.FLOOR), ("pytorch", epoch.PURE_LOOP)}
    measured = [(backend, path) for path in epoch.EXPECTED_PATHS[backend]]
    pytorch_rows = [("pytorch", epoch.FLOOR), ("pytorch", epoch.PURE_LOOP)]
    if importlib.util.find_spec("torch") is None:  # e.g. the tox env of another backend
        for key in pytorch_rows:
            assert "No module named 'torch'" in rows[key]["error"], rows[key]
    else:
        measured += pytorch_rows
    for key in measured:
        assert "error" not in rows[key], rows[key]
        assert rows[key]["median"] > 0 and rows[key]["examples"] == 1000
        assert rows[key].get("batch_size", 200) == 200  # every timed row: --batch-size
    # kerasdnn as kerasdnn.train runs it (resident: the examples fit; on TensorFlow under
    # XLA only, its own row), and its stream
    default = "stream" if backend == "tensorflow" else "resident"
    assert rows[(backend, epoch.KERASDNN)]["input_path"] == default
    assert rows[(backend, epoch.KERASDNN_STREAM)]["input_path"] == "stream"
    assert ((backend, epoch.KERASDNN_XLA) in rows) == (backend == "tensorflow")
    if backend == "tensorflow":
        assert rows[(backend, epoch.KERASDNN_XLA)]["input_path"] == "resident"
    stock = rows[(backend, epoch.STOCK_KERAS)]
    machine_floor = min(row["median"] for row in rows.values() if row["path"] == epoch.FLOOR
                        and "median" in row)
    assert stock["ratios"]["floor"] == pytest.approx(stock["median"] / machine_floor)
    assert report["machine_floor_gflops"] == max(
        row["gflops"] for row in rows.values() if "gflops" in row)
    lines = done.stdout.splitlines()
    assert sum(line.startswith("| ") for line in lines) == 1 + len(rows)
    for path in (epoch.FLOOR, epoch.STOCK_KERAS, epoch.KERASDNN, epoch.PURE_LOOP):
        assert any(f"| {path}" in line for line in lines)
    assert any(f"| kerasdnn ({default})" in line for line in lines)


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


def test_step_profile_divides_every_backend_by_the_machine_floor() -> None:
    from benchmarks import step_profile

    results = [
        {"backend": "tensorflow", "device": "cpu", "rows": {
            "FLOP floor": summarize([4.0]), "kerasdnn, premade batches": summarize([6.0])}},
        {"backend": "jax", "device": "cpu", "rows": {
            "FLOP floor": summarize([2.0]), "kerasdnn, premade batches": summarize([3.0])}},
    ]
    table = step_profile.format_table(results).splitlines()
    # TensorFlow's own floor is twice the machine's (JAX's): 4 / 2, 6 / 2, 2 / 2, 3 / 2
    assert [line.rstrip(" |").rsplit("| ", 1)[1] for line in table[2:]] == [
        "2.00", "3.00", "1.00", "1.50"]


def test_stream_benchmark_compares_streams_of_the_same_examples(tmp_path: Path) -> None:
    import numpy as np

    from benchmarks import stream

    images, labels = epoch.make_data(250)  # 3 batches per epoch, the last one of 50
    for make in (stream.pipelines_stream, stream.classic_stream):
        seen = [y for _, y in stream.as_dataset(make(images, labels)).take(6).as_numpy_iterator()]
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


def test_limit_threads_asks_every_library(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks._common import limit_threads

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                 "TF_NUM_INTEROP_THREADS", "XLA_FLAGS"):  # all put back after the test
        monkeypatch.delenv(name, raising=False)
    limit_threads(0)
    assert "OMP_NUM_THREADS" not in os.environ
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    limit_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    assert os.environ["XLA_FLAGS"] == ("--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1")


def test_search_benchmark_data_are_mnist_shaped_seeded_and_learnable() -> None:
    import numpy as np

    from benchmarks.search_pruning import make_digits_mnist

    data = make_digits_mnist(600, 300, seed=5)
    assert data["x_train"].shape == (600, 28, 28) and data["x_train"].dtype.name == "uint8"
    assert data["x_test"].shape == (300, 28, 28) and data["y_test"].shape == (300,)
    assert set(data["y_train"].tolist()) == set(range(10))
    assert all((data[key] == make_digits_mnist(600, 300, seed=5)[key]).all() for key in data)
    # learnable, on digits the training images never used: nearest class mean >> chance
    x_train = data["x_train"].reshape(600, -1) / 255.0
    x_test = data["x_test"].reshape(300, -1) / 255.0
    means = np.stack([x_train[data["y_train"] == k].mean(0) for k in range(10)])
    guess = ((x_test[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (guess == data["y_test"]).mean() > 0.35


def test_memory_limit_kills_a_run_above_its_cgroups_limit_and_not_one_below() -> None:
    from benchmarks import memory_limit

    try:
        with memory_limit.memory_cgroup(100):
            pass
    except memory_limit.CannotLimit as error:
        pytest.skip(str(error))
    allocate = "import numpy as np; a = np.ones({} * 2**20 // 8); print(a.sum())"
    above = memory_limit.run_limited(["-c", allocate.format(300)], 150, timeout=60)
    below = memory_limit.run_limited(["-c", allocate.format(30)], 150, timeout=60)
    assert memory_limit.outcome(above) == "killed by the OOM killer at the limit (status -9)"
    assert memory_limit.outcome(below) == "completed", below.stderr


def test_memory_limit_table_gives_the_allowance_over_the_imports() -> None:
    from benchmarks.memory_limit import table

    text = table([{"mode": "streamed", "limit_mb": 2000, "outcome": "completed",
                   "wall_seconds": 61.2, "baseline_mb": 770.0, "peak_mb": 1500.0,
                   "test_accuracy": 0.8612},
                  {"mode": "in memory", "limit_mb": 2000, "wall_seconds": 20.0,
                   "outcome": "killed by the OOM killer at the limit (status -9)"}])
    streamed, killed = text.splitlines()[2:]
    assert [cell.strip() for cell in streamed.split("|")[1:-1]] == [
        "kerasdnn.train, streamed", "2,000", "770", "1,230", "1,500 (+730)", "completed",
        "0.8612", "61"]
    assert "killed by the OOM killer" in killed


def test_step_profile_update_rows_keep_the_momentum_out_of_subnormals(backend: str) -> None:
    """The profile's update rows apply one set of gradients again and again.  Zeros (what
    they applied before) shrink SGD's momentum by 0.9 per update into float32's
    subnormal range, where Intel CPUs compute several times slower: the row timed
    1.24 ms per update there against about 0.3 ms for the same update on normal numbers."""
    if backend != "torch":
        pytest.skip("the profile's update rows are PyTorch's")
    import keras
    import numpy as np
    import torch

    import kerasdnn
    from benchmarks.step_profile import step_gradients

    def momentum_turns_subnormal(gradients_of) -> bool:
        keras.utils.set_random_seed(0)
        model = kerasdnn.build_model(input_shape=(8,), hidden_units=(16,))
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.random((32, 8), dtype=np.float32))
        y = torch.from_numpy(rng.integers(0, 10, 32).astype(np.int32))
        gradients = gradients_of(model, x, y)
        model.train_on_batch(x, y)
        tiny = torch.finfo(torch.float32).tiny
        with torch.no_grad():
            for _ in range(1000):
                model.optimizer.apply(gradients, model.trainable_weights)
                if any(bool(((m.value != 0) & (m.value.abs() < tiny)).any())
                       for m in model.optimizer.momentums):
                    return True
        return False

    assert not momentum_turns_subnormal(step_gradients)
    assert momentum_turns_subnormal(
        lambda model, x, y: [torch.zeros_like(v.value) for v in model.trainable_weights])


def test_step_profile_times_each_call_after_its_setup_untimed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``per_step_ms(setup=...)``: the rows that train start every timed call from one
    state, and putting that state back is not timed."""
    from benchmarks import step_profile

    clock = [0.0]
    events: list[str] = []

    def setup() -> None:
        events.append("setup")
        clock[0] += 100.0  # were it timed, every row would read 100 s more

    def run() -> None:
        events.append("run")
        clock[0] += 2.0

    monkeypatch.setattr(step_profile.time, "perf_counter", lambda: clock[0])
    stats = step_profile.per_step_ms(run, steps=4, repeats=3, setup=setup)
    assert events == ["setup", "run"] * 4  # the warm-up call, then 3 timed ones
    assert stats["median"] == stats["min"] == stats["max"] == 2.0 / 4 * 1000
