"""Streamed tables (pipelines.tables.streaming): the one-pass statistics against the
in-memory fit on the same training rows (pandas / NumPy float64), every training row
once per epoch, hash-defined splits, disjoint per-process pieces, and a peak memory
that does not grow with the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipelines
from pipelines.errors import InvalidArgumentError, InvalidDataError
from pipelines.tables import pieces as pieces_module
from pipelines.tables import running
from pipelines.tables.encode import encode, fit_preprocessing
from pipelines.tables.read import read_table
from pipelines.tables.schema import Column
from pipelines.tables.streaming import (
    Shard,
    fit_streamed,
    load_streamed,
    raw_split,
    split_codes,
)

ROWS = 3000
BATCH = 64
SPLIT = {"seed": 5, "test_split": 0.2, "validation_split": 0.1}


def table(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """Floats with missing values, text categories with missing values and a label
    that depends on them; every float distinct, so rows can be told apart."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    frame = pd.DataFrame({
        "x": x,
        "z": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(3, 2, rows)),
        "color": rng.choice(["red", "green", "blue", None], rows),
        "size": rng.choice(["S", "M", "L"], rows),
        "label": np.where(x > 0.3, "yes", np.where(x < -0.3, "no", "maybe")),
    })
    frame.loc[rng.choice(rows, 20, replace=False), "label"] = None  # unlabelled rows
    return frame


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The table as one CSV file (cut into small pieces by the tests), a folder of
    three CSV shards, and Parquet with small row groups."""
    folder = tmp_path_factory.mktemp("streamed")
    frame = table()
    frame.to_csv(folder / "t.csv", index=False)
    (folder / "shards").mkdir()
    for index, start in enumerate(range(0, ROWS, 1000)):
        frame.iloc[start:start + 1000].to_csv(folder / "shards" / f"part-{index}.csv",
                                              index=False)
    frame.to_parquet(folder / "t.parquet", row_group_size=400)
    return {"csv": f"csv:{folder / 't.csv'}", "shards": f"csv:{folder / 'shards'}",
            "parquet": f"parquet:{folder / 't.parquet'}"}


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pieces_module, "PIECE_BYTES", 16_384)  # the 3000-row CSV: ~14 pieces


def reference_rows() -> dict[str, np.ndarray]:
    """Row numbers of each split, from the documented rule: the row-number hash
    decides, unlabelled rows belong to none."""
    frame = table()
    codes = split_codes(np.arange(ROWS), **SPLIT)
    labelled = frame["label"].notna().to_numpy()
    return {split: np.flatnonzero(labelled & (codes == code))
            for code, split in enumerate(("train", "validation", "test"))}


@pytest.fixture(scope="module")
def fitted(sources: dict[str, str]) -> dict[str, dict]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pieces_module, "PIECE_BYTES", 16_384)
        return {name: fit_streamed(source, target="label", **SPLIT)
                for name, source in sources.items()}


def sorted_rows(x: np.ndarray) -> np.ndarray:
    return x[np.lexsort(x.T[::-1])]


@pytest.mark.parametrize("name", ["csv", "shards", "parquet"])
def test_one_pass_statistics_equal_the_in_memory_fit_on_the_same_training_rows(
        fitted: dict[str, dict], name: str) -> None:
    state = fitted[name]
    assert len(state["stream"]["pieces"]) >= 3  # really read in pieces
    frame = read_table(table())
    schema = [Column(**column) for column in state["schema"]]
    expected = fit_preprocessing(frame.iloc[reference_rows()["train"]], schema)
    assert state["feature_names"] == expected["feature_names"]
    for got, want in zip(state["columns"], expected["columns"], strict=True):
        assert got.keys() == want.keys()
        for key in ("name", "kind", "vocabulary", "median", "indicator"):  # exact
            assert got.get(key) == want.get(key), (got["name"], key)
        for key in ("mean", "variance"):  # float64, summed in another order
            if key in want:
                assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15)
    assert state["class_names"] == ["maybe", "no", "yes"]
    counts = {split: sum(p[split] for p in state["stream"]["pieces"])
              for split in ("train", "validation", "test")}
    assert counts == {split: len(rows) for split, rows in reference_rows().items()}
    missing = {c["name"]: c["missing"] for c in state["schema"]}
    assert missing == {"x": 0, "z": int(table()["z"].isna().sum()),
                       "color": int(table()["color"].isna().sum()), "size": 0}


def test_a_median_past_the_sample_size_is_the_median_of_a_uniform_sample(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(running, "SAMPLE_SIZE", 2000)
    values = np.random.default_rng(1).exponential(size=50_000)
    stats = running.RunningStats({"v": "numeric"})
    for start in range(0, len(values), 7000):
        stats.update({"v": values[start:start + 7000]}, np.arange(start, start + 7000)[
            :len(values[start:start + 7000])])
    median = stats.columns()[0]["median"]
    rank = (values < median).mean()
    assert abs(rank - 0.5) < 3 / np.sqrt(2000)  # three standard errors of a sample's rank
    assert median != np.median(values)  # sampled, not exact
    column = stats.columns()[0]
    assert column["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert column["variance"] == pytest.approx(values.var(), rel=1e-11)


@pytest.mark.parametrize("name", ["csv", "parquet"])
def test_each_epoch_streams_every_training_row_once_in_a_seeded_order(
        sources: dict[str, str], fitted: dict[str, dict], name: str) -> None:
    state = fitted[name]
    splits = load_streamed(sources[name], target="label", batch_size=BATCH, repeat=True,
                           preprocessing=state, shuffle_buffer=500, **SPLIT)
    stream = splits.stream
    steps = stream.batches_per_epoch
    assert steps == -(-len(reference_rows()["train"]) // BATCH)
    batches = list(stream.blocks(0, 1).take(2 * steps).as_numpy_iterator())
    epochs = [batches[:steps], batches[steps:]]
    expected_x = encode(read_table(table()).iloc[reference_rows()["train"]], state)
    for epoch in epochs:
        assert [len(y) for _, y in epoch[:-1]] == [BATCH] * (steps - 1)
        x = np.concatenate([x for x, _ in epoch])
        np.testing.assert_array_equal(sorted_rows(x), sorted_rows(expected_x))
    first, second = (np.concatenate([x for x, _ in epoch]) for epoch in epochs)
    assert not np.array_equal(first, second)  # reshuffled each epoch
    # epoch 1 on its own (a resumed run) is the stream's epoch 1, in blocks of 4 batches
    resumed = np.concatenate([x for x, _ in stream.blocks(1, 4).take(-(-steps // 4))
                              .as_numpy_iterator()])
    np.testing.assert_array_equal(resumed, second)


def test_validation_and_test_are_the_hash_defined_rows_in_table_order(
        sources: dict[str, str], fitted: dict[str, dict]) -> None:
    state = fitted["shards"]
    splits = load_streamed(sources["shards"], target="label", batch_size=BATCH,
                           preprocessing=state, **SPLIT)
    frame = read_table(table())
    for split, dataset in (("validation", splits.validation), ("test", splits.test)):
        rows = reference_rows()[split]
        x = np.concatenate([x for x, _ in dataset.as_numpy_iterator()])
        y = np.concatenate([y for _, y in dataset.as_numpy_iterator()])
        np.testing.assert_array_equal(x, encode(frame.iloc[rows], state))
        names = np.array(state["class_names"])
        assert names[y].tolist() == frame["label"].iloc[rows].tolist()
    assert splits.info.num_examples == {k: len(v) for k, v in reference_rows().items()}


@pytest.mark.parametrize("name", ["csv", "parquet"])
def test_raw_split_reads_the_rows_at_given_places_of_the_split_alone(
        name: str, fitted: dict[str, dict]) -> None:
    state = fitted[name]
    columns, labels = raw_split(state, "test")
    places = np.array([0, 1, 7, 250, len(labels) - 1])
    some, some_labels = raw_split(state, "test", places)
    np.testing.assert_array_equal(some_labels, labels[places])
    for column, values in columns.items():
        np.testing.assert_array_equal(some[column], values[places])
    assert len(raw_split(state, "test", np.array([], np.int64))[1]) == 0


def test_two_processes_read_disjoint_pieces_that_cover_every_training_row(
        sources: dict[str, str], fitted: dict[str, dict]) -> None:
    state, global_batch = fitted["parquet"], 65  # odd: the processes take 33 and 32 rows
    shares, weights = [], []
    for index in range(2):
        stream = load_streamed(sources["parquet"], target="label", batch_size=global_batch,
                               repeat=True, preprocessing=state, shuffle_buffer=300,
                               shard=Shard(index, 2, replicas=2), **SPLIT).stream
        assert stream.sharded and stream.batch_size == 33  # 66 padded rows, 33 each
        batches = list(stream.blocks(0, 3).take(-(-stream.batches_per_epoch // 3))
                       .as_numpy_iterator())
        x, _, w = (np.concatenate(part) for part in zip(*batches, strict=True))
        assert len(w) == stream.batches_per_epoch * 33
        shares.append(x[w > 0])
        weights.append(w.reshape(stream.batches_per_epoch, 33))
    both = np.concatenate(shares)
    expected = encode(read_table(table()).iloc[reference_rows()["train"]], state)
    np.testing.assert_array_equal(sorted_rows(both), sorted_rows(expected))  # once each
    assert len(np.unique(both, axis=0)) == len(both)
    # every step's real rows weigh the padded global batch, as one process's would
    step_weight = weights[0].sum(axis=1) + weights[1].sum(axis=1)
    np.testing.assert_allclose(step_weight, 66, rtol=1e-5)


def test_fewer_pieces_than_processes_is_refused_with_what_to_do(
        sources: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "one.parquet"
    table(200).to_parquet(path)
    with pytest.raises(InvalidDataError, match=r"1 piece.*for 2 processes; split it"):
        load_streamed(f"parquet:{path}", target="label", repeat=True,
                      shard=Shard(1, 2, 2))


def test_text_below_the_inferred_rows_of_a_numeric_column_is_one_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = table(400).astype({"x": object})
    frame.loc[350, "x"] = "oops"
    frame.to_csv(tmp_path / "t.csv", index=False)
    monkeypatch.setattr(pieces_module, "HEAD_ROWS", 100)
    with pytest.raises(InvalidDataError, match="numeric column holds text further down"):
        pipelines.load(f"csv:{tmp_path / 't.csv'}", target="label", stream=True)


def test_stream_is_refused_where_there_is_nothing_to_stream() -> None:
    with pytest.raises(InvalidArgumentError, match=r"stream .* an npz:PATH or an idx:DIR "
                       r"piece by piece, not 'digits'"):
        pipelines.load("digits", stream=True)
    with pytest.raises(InvalidArgumentError, match="a DataFrame is in memory already"):
        pipelines.load(table(), target="label", stream=True)


def test_a_streamed_run_reads_its_saved_plan_and_an_in_memory_run_is_not_mixed_up(
        sources: dict[str, str], fitted: dict[str, dict]) -> None:
    with pytest.raises(InvalidArgumentError, match="trained on a streamed table"):
        pipelines.load(sources["csv"], target="label", preprocessing=fitted["csv"])
    in_memory = pipelines.load(sources["csv"], target="label").info.table
    with pytest.raises(InvalidArgumentError, match="trained on the table in memory"):
        pipelines.load(sources["csv"], target="label", stream=True, preprocessing=in_memory)


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "torch",
                    reason="tf.data and Arrow read the same on every backend: the torch env")
def test_a_streamed_pass_keeps_its_peak_memory_flat_as_the_file_grows(
        tmp_path: Path) -> None:
    """Peak RSS of one streamed epoch (after the same imports and warm-up) of a file
    and of one four times larger: the growth must stay far below the data's size.
    The peak is the kernel's VmHWM, reset just before the epoch (``clear_refs``): a
    child's ``ru_maxrss`` starts at its parent's, which would hide the child's own."""
    script = textwrap.dedent("""
        import json, re, sys
        from pathlib import Path
        import numpy as np, pandas as pd
        import pipelines
        from pipelines.tables import pieces
        pieces.PIECE_BYTES = 1 << 20
        rows, path = int(sys.argv[1]), sys.argv[2]
        rng = np.random.default_rng(0)
        for start in range(0, rows, 100_000):  # written in parts: never all in memory
            n = min(100_000, rows - start)
            pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(6)} | {
                "c": rng.choice(["a", "b", "c"], n), "label": rng.integers(0, 3, n)}
            ).to_csv(path, index=False, header=start == 0, mode="w" if start == 0 else "a")
        warm = pipelines.load(f"csv:{path}", target="label", stream=True, batch_size=1000,
                              repeat=True, shuffle_buffer=8192)

        def kib(field):
            status = Path("/proc/self/status").read_text()
            return int(re.search(field + r":\\s+(\\d+) kB", status).group(1))

        Path("/proc/self/clear_refs").write_text("5")  # the peak is now the current RSS
        before = kib("VmHWM")
        stream = warm.stream
        seen = sum(len(y) for _, y in stream.blocks(0, 10).take(
            -(-stream.batches_per_epoch // 10)).as_numpy_iterator())
        after = kib("VmHWM")
        print(json.dumps({"seen": seen, "train": warm.info.num_examples["train"],
                          "before": before, "after": after}))
    """)
    results = {}
    for rows in (100_000, 400_000):
        # the system allocator: Arrow's default pool keeps freed pages for a while (a
        # bounded cache, flat up to 4 million rows in BENCHMARKS.md) that would blur this
        out = subprocess.run([sys.executable, "-c", script, str(rows),
                              str(tmp_path / f"{rows}.csv")],
                             env={**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"},
                             capture_output=True, text=True, timeout=600, check=True)
        results[rows] = json.loads(out.stdout.strip().splitlines()[-1])
        assert results[rows]["seen"] == results[rows]["train"]
    size_mib = (tmp_path / "400000.csv").stat().st_size / 2**20
    epoch_mib = {rows: (r["after"] - r["before"]) / 1024 for rows, r in results.items()}
    # 300,000 more rows: ~35 MiB more CSV, ~13 MiB more encoded float32. Measured here:
    # an epoch's peak ~20 MiB for both (1.6 MiB apart), ~48 MiB more with a window of
    # the whole file
    assert size_mib > 35
    assert epoch_mib[400_000] - epoch_mib[100_000] < 6, epoch_mib


def test_a_folder_of_csv_shards_reads_in_memory_as_the_one_file(
        sources: dict[str, str]) -> None:
    pd.testing.assert_frame_equal(read_table(sources["shards"]), read_table(sources["csv"]))


def test_no_device_prefetch_runs_ahead_on_a_streamed_table(
        sources: dict[str, str], fitted: dict[str, dict],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorFlow's feed on a GPU (its device prefetch swapped for a probe here) leaves a
    streamed table's dataset as it is: a thread of TensorFlow's running the reading
    generator ahead would hang the process when the iterator is deleted."""
    import pipelines.feed
    from pipelines.backends import backend_spec

    monkeypatch.setattr(pipelines.feed, "backend_spec", lambda _: backend_spec("tensorflow"))
    probe = []
    monkeypatch.setattr(pipelines.feed, "prefetch_to_device",
                        lambda dataset: probe.append(dataset) or dataset)
    stream = load_streamed(sources["csv"], target="label", batch_size=BATCH, repeat=True,
                           preprocessing=fitted["csv"], **SPLIT).stream
    assert stream.python_reader
    fed = pipelines.feed.for_fit(stream, skip=3)
    assert probe == [] and len(next(iter(fed))[1]) == BATCH
    in_memory = pipelines.load("digits", batch_size=BATCH, repeat=True).stream
    pipelines.feed.for_fit(in_memory)
    assert len(probe) == 1  # the in-memory stream keeps its device prefetch
