"""Streamed ``npz:`` and ``idx:`` sources (pipelines.array_stream): every training row
once per epoch, the same rows as the in-memory load holds (split otherwise: by hash),
one-pass standardize statistics against NumPy's float64 ones, pieces read as row
ranges (never the whole array) with a flat peak memory, disjoint per-process pieces,
and one-line refusals of what cannot be read piece by piece."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pipelines
from pipelines import array_files
from pipelines.array_stream import load_streamed_arrays, training_moments
from pipelines.builder import _scaling
from pipelines.errors import InvalidArgumentError, InvalidDataError
from pipelines.piece_stream import Shard
from pipelines.tables.plan import split_codes
from tests.pipelines.conftest import make_arrays, write_idx_dir

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env

SEED, VALIDATION = 3, 0.2
ROW_BYTES = 7 * 5  # make_arrays: 7x5 uint8 images
PIECE = {"piece_bytes": ROW_BYTES * 16}  # 200 training rows: 13 pieces


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("arrays")
    np.savez(folder / "m.npz", **make_arrays(), class_names=np.array(["a", "b", "c", "d"]))
    write_idx_dir(folder / "idx", make_arrays(), gz=False)
    return {"npz": f"npz:{folder / 'm.npz'}", "idx": f"idx:{folder / 'idx'}"}


def training_rows() -> np.ndarray:
    """The rows of x_train that the hash split leaves for training."""
    codes = split_codes(np.arange(200), seed=SEED, test_split=0.0, validation_split=VALIDATION)
    return codes == 0


def as_set(x: np.ndarray) -> list[bytes]:
    """Rows as a sorted list of their bytes: a multiset to compare."""
    return sorted(row.tobytes() for row in np.ascontiguousarray(x, np.float32))


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to [0, 1] as pipelines do: times float32(1 / 255)."""
    return x.reshape(len(x), -1).astype(np.float32) * np.float32(1.0 / 255)


def one_epoch(splits: pipelines.Splits, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
    stream = splits.stream
    batches = list(stream.blocks(epoch, 1).take(stream.batches_per_epoch).as_numpy_iterator())
    return np.concatenate([x for x, *_ in batches]), np.concatenate([y for _, y, *_ in batches])


@pytest.mark.parametrize("kind", ["npz", "idx"])
def test_an_epoch_holds_every_training_row_once_and_the_rows_of_the_in_memory_load(
        sources: dict[str, str], kind: str) -> None:
    arguments = {"batch_size": 32, "validation_split": VALIDATION, "seed": SEED}
    streamed = pipelines.load(sources[kind], stream=True, repeat=True, shuffle_buffer=50,
                              **arguments, **PIECE)
    in_memory = pipelines.load(sources[kind], **arguments)
    raw = make_arrays()
    keep = training_rows()
    x0, y0 = one_epoch(streamed, 0)
    x1, _ = one_epoch(streamed, 1)
    expected = unit(raw["x_train"][keep])
    assert as_set(x0) == as_set(x1) == as_set(expected)
    assert not np.array_equal(x0, x1)  # reshuffled by (seed, epoch)
    by_row = {row.tobytes(): label for row, label in zip(
        expected, raw["y_train"][keep], strict=True)}
    assert [by_row[row.tobytes()] for row in x0] == y0.tolist()  # labels travel with rows
    # the same examples in train + validation as in memory, split by hash, not stratified
    both = [np.concatenate([x for x, _ in split.as_numpy_iterator()])
            for split in (streamed.validation, in_memory.train, in_memory.validation)]
    assert as_set(np.concatenate([x0, both[0]])) == as_set(np.concatenate(both[1:]))
    test = [np.concatenate([y for _, y in s.test.as_numpy_iterator()])
            for s in (streamed, in_memory)]
    np.testing.assert_array_equal(*test)
    info, memory_info = streamed.info, in_memory.info
    assert (info.input_shape, info.class_names, info.num_classes, info.scale) == (
        memory_info.input_shape, memory_info.class_names, memory_info.num_classes,
        memory_info.scale)
    assert info.num_examples["train"] == int(keep.sum()) == streamed.stream.batches_per_epoch \
        * 32 - (-int(keep.sum()) % 32)
    assert sum(info.num_examples.values()) == sum(memory_info.num_examples.values())


def test_one_pass_without_repeat_and_unbatched_examples(sources: dict[str, str]) -> None:
    splits = pipelines.load(sources["npz"], stream=True, batch_size=None, seed=SEED,
                            validation_split=VALIDATION, **PIECE)
    x, y = next(iter(splits.train))
    assert x.shape == (ROW_BYTES,) and y.dtype.name == "int32"
    assert sum(1 for _ in splits.train) == splits.info.num_examples["train"]
    assert sum(1 for _ in splits.test) == 40


def test_standardize_statistics_of_one_pass_equal_numpy_float64_on_the_same_rows(
        tmp_path: Path) -> None:
    """Large offsets and small spreads: where a running sum of squares would lose digits.
    Tolerance: 1e-10 relative on the float64 mean and std; the float32 scaling as
    the in-memory load computes it from the same rows, to float32 rounding."""
    rng = np.random.default_rng(1)
    x = (1e4 + rng.normal(size=(500, 3, 2)) * 1e-2).astype(np.float64)
    y = np.arange(500) % 3
    np.savez(tmp_path / "f.npz", x_train=x, y_train=y, x_test=x[:30], y_test=y[:30])
    name = f"npz:{tmp_path / 'f.npz'}"
    count, mean, std = training_moments(name, validation_split=VALIDATION, seed=SEED,
                                        piece_bytes=48 * 7)
    codes = split_codes(np.arange(500), seed=SEED, test_split=0.0, validation_split=VALIDATION)
    rows = x[codes == 0].reshape(-1, 6)
    assert count == len(rows)
    np.testing.assert_allclose(mean, rows.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(std, rows.std(axis=0), rtol=1e-10)
    splits = load_streamed_arrays(name, scale="standardize", validation_split=VALIDATION,
                                  seed=SEED, batch_size=None, piece_bytes=48 * 7)
    offset, multiplier = _scaling(x[codes == 0], "standardize", 1.0)
    first_test = next(iter(splits.test))[0].numpy()
    expected = ((x[0].astype(np.float32) - offset) * multiplier).reshape(-1)
    np.testing.assert_allclose(first_test, expected, rtol=1e-5, atol=1e-5)
    assert splits.info.scale == "standardize"


def test_pieces_are_read_as_row_ranges_never_the_whole_array(
        sources: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[tuple[int, int, int]] = []
    read = array_files.StoredArray.rows

    def recorded(self: array_files.StoredArray, start: int, stop: int) -> np.ndarray:
        reads.append((len(self), start, stop))
        return read(self, start, stop)

    monkeypatch.setattr(array_files.StoredArray, "rows", recorded)
    splits = pipelines.load(sources["idx"], stream=True, repeat=True, batch_size=32,
                            scale="standardize", **PIECE)
    one_epoch(splits)
    feature_reads = [(n, a, b) for n, a, b in reads if b - a > 1 and not
                     (a == 0 and b == n)]  # the labels (one integer a row) are read whole
    assert feature_reads and max(b - a for _, a, b in feature_reads) <= 16
    whole = [(n, a, b) for n, a, b in reads if a == 0 and b == n]
    assert sorted(n for n, _, _ in whole) == [40, 200]  # y_test, y_train only


def test_two_processes_read_disjoint_rows_covering_the_training_split(
        sources: dict[str, str]) -> None:
    seen = []
    for index in (0, 1):
        splits = pipelines.load(sources["npz"], stream=True, repeat=True, batch_size=32,
                                seed=SEED, validation_split=VALIDATION, **PIECE,
                                shard=Shard(index, 2, 2))
        assert splits.stream.sharded and splits.stream.batch_size == 16
        x, _, = one_epoch(splits)[:2]
        weights = np.concatenate([w for *_, w in splits.stream.blocks(0, 1).take(
            splits.stream.batches_per_epoch).as_numpy_iterator()])
        seen.append(x[weights > 0])
    assert not set(as_set(seen[0])) & set(as_set(seen[1]))
    expected = unit(make_arrays()["x_train"][training_rows()])
    assert as_set(np.concatenate(seen)) == as_set(expected)


def test_what_cannot_be_read_piece_by_piece_is_refused_in_one_line(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "c.npz", **make_arrays())
    with pytest.raises(InvalidDataError, match=r"np\.savez_compressed.*save it with np\.savez"):
        pipelines.load(f"npz:{tmp_path / 'c.npz'}", stream=True)
    write_idx_dir(tmp_path / "gz", make_arrays(), gz=True)
    with pytest.raises(InvalidDataError, match=r"is gzipped.*gunzip"):
        pipelines.load(f"idx:{tmp_path / 'gz'}", stream=True)
    with pytest.raises(InvalidArgumentError, match="not 'digits'"):
        pipelines.load("digits", stream=True)
    x = np.zeros((200, 2))
    x[150, 1] = np.nan  # past the first row, which the in-memory checks see
    np.savez(tmp_path / "nan.npz", **{**make_arrays(), "x_train": x, "x_test": x[:40]})
    with pytest.raises(InvalidDataError,
                       match=r"train features contain NaN .*\(rows 1\d\d\.\.1\d\d\)"):
        pipelines.load(f"npz:{tmp_path / 'nan.npz'}", stream=True)
    np.savez(tmp_path / "labels.npz", **{**make_arrays(), "y_train": np.full(200, 0.5)})
    with pytest.raises(InvalidDataError, match="integer class indices"):
        pipelines.load(f"npz:{tmp_path / 'labels.npz'}", stream=True)


def test_a_streamed_pass_keeps_its_peak_memory_flat_as_the_file_grows(
        tmp_path: Path) -> None:
    """Peak RSS of one streamed epoch of IDX files (written in parts, never whole) of
    20,000 and 80,000 images of 28x28: the growth must stay far below the data's size.
    The peak is the kernel's VmHWM, reset just before the epoch (``clear_refs``), as
    tests/pipelines/test_streaming.py measures a streamed table."""
    script = textwrap.dedent("""
        import json, re, sys
        from pathlib import Path
        import numpy as np
        from pipelines.array_stream import load_streamed_arrays
        rows, folder = int(sys.argv[1]), Path(sys.argv[2])
        folder.mkdir()
        rng = np.random.default_rng(0)
        for stem, count in (("train", rows), ("t10k", 100)):
            with open(folder / f"{stem}-images-idx3-ubyte", "wb") as images, \\
                    open(folder / f"{stem}-labels-idx1-ubyte", "wb") as labels:
                images.write(bytes([0, 0, 8, 3]) + np.array([count, 28, 28], ">u4").tobytes())
                labels.write(bytes([0, 0, 8, 1]) + np.array([count], ">u4").tobytes())
                for start in range(0, count, 5000):  # in parts: never all in memory
                    n = min(5000, count - start)
                    images.write(rng.integers(0, 256, (n, 28, 28), np.uint8).tobytes())
                    labels.write((np.arange(start, start + n) % 10).astype(np.uint8).tobytes())
        warm = load_streamed_arrays(f"idx:{folder}", batch_size=256, repeat=True,
                                    shuffle_buffer=512, scale="standardize",
                                    piece_bytes=1 << 18)

        def kib(field):
            status = Path("/proc/self/status").read_text()
            return int(re.search(field + r":\\s+(\\d+) kB", status).group(1))

        Path("/proc/self/clear_refs").write_text("5")  # the peak is now the current RSS
        before = kib("VmHWM")
        stream = warm.stream
        seen = sum(len(y) for _, y in stream.blocks(0, 1).take(
            stream.batches_per_epoch).as_numpy_iterator())
        after = kib("VmHWM")
        print(json.dumps({"seen": seen, "train": warm.info.num_examples["train"],
                          "before": before, "after": after}))
    """)
    results = {}
    for rows in (20_000, 80_000):
        out = subprocess.run([sys.executable, "-c", script, str(rows),
                              str(tmp_path / f"{rows}")],
                             env=os.environ, capture_output=True, text=True, timeout=300,
                             check=True)
        results[rows] = json.loads(out.stdout.strip().splitlines()[-1])
        assert results[rows]["seen"] == results[rows]["train"]
    size_mib = (tmp_path / "80000" / "train-images-idx3-ubyte").stat().st_size / 2**20
    epoch_mib = {rows: (r["after"] - r["before"]) / 1024 for rows, r in results.items()}
    # 60,000 more images: ~45 MiB more uint8, ~180 MiB more as float32. Measured here:
    # an epoch's peak ~14 and ~17 MiB (pieces of 256 KiB, windows of 512 rows)
    assert size_mib > 55
    assert epoch_mib[80_000] - epoch_mib[20_000] < 10, epoch_mib
