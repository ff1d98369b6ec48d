"""pipelines.load end to end on digits, idx: and npz: (data written by the tests).

References are independent: float64 NumPy on the arrays the test wrote, and
scikit-learn's own load_digits.
"""

from __future__ import annotations

import numpy as np
import pytest

import pipelines
from pipelines.errors import (
    DataFormatError,
    InvalidArgumentError,
    InvalidDataError,
    PipelineError,
    UnknownDatasetError,
)
from tests.pipelines.conftest import CLASS_COUNTS, IMAGE_SHAPE, TEST_CLASS_COUNTS

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env


def collect(dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*dataset.as_numpy_iterator(), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def keys(x: np.ndarray) -> list[bytes]:
    """Identify examples by content (every written image is unique)."""
    return [row.tobytes() for row in np.asarray(x)]


def source_name(kind: str, idx_dir, npz_path) -> str:
    return f"idx:{idx_dir}" if kind == "idx" else f"npz:{npz_path}"


@pytest.mark.parametrize("kind", ["idx", "npz"])
def test_files_end_to_end(kind, idx_dir, npz_path, arrays):
    splits = pipelines.load(source_name(kind, idx_dir, npz_path), batch_size=32, seed=7)
    info = splits.info
    n_features = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    assert info.input_shape == (n_features,)
    assert info.num_classes == 4 and info.class_names == ["0", "1", "2", "3"]
    assert info.num_examples == {"train": 180, "validation": 20, "test": 40}

    parts = {name: collect(getattr(splits, name)) for name in ("train", "validation", "test")}
    for x, y in parts.values():
        assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape[1] == n_features
        assert x.min() >= 0.0 and x.max() <= 1.0
    # Values: exactly the written uint8 / 255 (float64 reference).
    reference = {
        k: v
        for k, v in zip(
            keys(arrays["x_train"].reshape(200, -1)),
            arrays["x_train"].reshape(200, -1),
            strict=True,
        )
    }
    x_train = parts["train"][0]
    scaled = np.stack([reference[k] for k in keys(np.rint(x_train * 255).astype(np.uint8))])
    np.testing.assert_allclose(x_train, scaled / 255.0, rtol=0, atol=1e-6)

    # Train + validation are the written train split; test is the written test split.
    written = {
        k: int(v)
        for k, v in zip(keys(arrays["x_train"].reshape(200, -1)), arrays["y_train"], strict=True)
    }
    as_bytes = {n: keys(np.rint(x * 255).astype(np.uint8)) for n, (x, _) in parts.items()}
    assert set(as_bytes["train"]).isdisjoint(as_bytes["validation"])
    assert set(as_bytes["train"] + as_bytes["validation"]) == set(written)
    assert len(as_bytes["train"] + as_bytes["validation"]) == 200
    assert as_bytes["test"] == keys(arrays["x_test"].reshape(40, -1))  # fixed, source order
    for name in ("train", "validation"):
        assert [written[k] for k in as_bytes[name]] == parts[name][1].tolist()
    np.testing.assert_array_equal(parts["test"][1], arrays["y_test"])

    # Stratified: each class keeps its share of the validation split (within rounding).
    validation_counts = np.bincount(parts["validation"][1], minlength=4)
    assert np.all(np.abs(validation_counts - 0.1 * np.array(CLASS_COUNTS)) <= 1)
    assert np.bincount(parts["test"][1]).tolist() == list(TEST_CLASS_COUNTS)


def test_shuffle_is_seeded_and_reshuffled_each_epoch(npz_path):
    first = pipelines.load(f"npz:{npz_path}", batch_size=16, seed=3)
    second = pipelines.load(f"npz:{npz_path}", batch_size=16, seed=3)
    other = pipelines.load(f"npz:{npz_path}", batch_size=16, seed=4)
    epoch1, epoch2 = collect(first.train)[0], collect(first.train)[0]
    assert not np.array_equal(epoch1, epoch2)  # another epoch, another order
    assert sorted(keys(epoch1)) == sorted(keys(epoch2))  # ... of the same examples
    np.testing.assert_array_equal(epoch1, collect(second.train)[0])  # same seed, same order
    np.testing.assert_array_equal(epoch2, collect(second.train)[0])
    assert not np.array_equal(epoch1, collect(other.train)[0])
    for name in ("validation", "test"):  # fixed order
        np.testing.assert_array_equal(
            collect(getattr(first, name))[0], collect(getattr(first, name))[0]
        )


def test_standardize_uses_train_statistics_only(npz_path, arrays):
    unit = pipelines.load(f"npz:{npz_path}", batch_size=None, seed=5, flatten=False)
    standard = pipelines.load(
        f"npz:{npz_path}", batch_size=None, seed=5, flatten=False, scale="standardize"
    )
    assert standard.info.input_shape == IMAGE_SHAPE
    train_raw = np.stack([x for x, _ in unit.train.as_numpy_iterator()]).astype(np.float64)
    train_raw = np.rint(train_raw * 255)
    mean, std = train_raw.mean(axis=0), train_raw.std(axis=0)
    std[std == 0] = 1.0
    x_unit, _ = next(iter(unit.test.batch(1000).as_numpy_iterator()))
    x_std, _ = next(iter(standard.test.batch(1000).as_numpy_iterator()))
    expected = (np.rint(x_unit.astype(np.float64) * 255) - mean) / std
    np.testing.assert_allclose(x_std, expected, rtol=1e-5, atol=1e-5)
    # The constant pixel (row 0, column 2 is always 1) has zero variance: it stays finite.
    assert np.all(np.isfinite(x_std)) and np.all(x_std[:, 0, 2] == 0)
    train_std = np.stack([x for x, _ in standard.train.as_numpy_iterator()])
    np.testing.assert_allclose(train_std.mean(axis=0), 0, atol=1e-4)


@pytest.mark.parametrize("cache", [True, False])
def test_unbatched_and_uncached_give_the_same_examples(npz_path, cache):
    batched = pipelines.load(f"npz:{npz_path}", batch_size=7, cache=cache)
    single = pipelines.load(f"npz:{npz_path}", batch_size=None, cache=cache)
    x, y = next(iter(single.validation))
    assert x.shape == (35,) and y.shape == ()
    # Static shapes: Keras and the tuner see the feature size without running anything.
    assert single.train.element_spec[0].shape.as_list() == [35]
    assert batched.train.element_spec[0].shape.as_list() == [None, 35]
    # Known sizes: Keras shows progress with a total from the first epoch.
    assert int(single.train.cardinality()) == 180 and int(batched.train.cardinality()) == 26
    np.testing.assert_array_equal(
        collect(batched.validation)[0],
        np.stack([x for x, _ in single.validation.as_numpy_iterator()]),
    )
    assert collect(batched.train)[0].shape == (180, 35)


def test_digits_matches_scikit_learn():
    from sklearn.datasets import load_digits

    digits = load_digits()
    splits = pipelines.load("digits", batch_size=100, scale="unit")
    info = splits.info
    assert (info.source, info.input_shape, info.num_classes) == ("digits", (64,), 10)
    assert info.scale == "unit"
    assert info.note is None
    assert sum(info.num_examples.values()) == 1797 and info.num_examples["test"] == 360
    parts = [collect(getattr(splits, n)) for n in ("train", "validation", "test")]
    x_all = np.concatenate([x for x, _ in parts]).astype(np.float64)
    y_all = np.concatenate([y for _, y in parts])
    assert x_all.min() == 0.0 and x_all.max() == 1.0
    # Same multiset of (image, label) as scikit-learn's data scaled by 1/16.
    ours = sorted(zip(keys(np.rint(x_all * 16).astype(np.int64)), y_all.tolist(), strict=True))
    theirs = sorted(zip(keys(digits.data.astype(np.int64)), digits.target.tolist(), strict=True))
    assert ours == theirs
    # The test split is fixed (not seeded by the user's seed) and stratified.
    test_again = collect(pipelines.load("digits", batch_size=100, seed=99, scale="unit").test)
    np.testing.assert_array_equal(parts[2][0], test_again[0])
    test_counts = np.bincount(parts[2][1], minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * np.bincount(digits.target)) <= 1)


# --- bad input ------------------------------------------------------------------------


def assert_one_line(error: BaseException) -> None:
    assert isinstance(error, PipelineError)
    assert "\n" not in str(error) and str(error)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownDatasetError) as caught:
        pipelines.load("mnits")
    assert_one_line(caught.value)
    for known in ("auto", "mnist", "digits", "idx:DIR", "npz:PATH", "tfds:NAME"):
        assert known in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"validation_split": 0},
        {"validation_split": 1},
        {"validation_split": -0.1},
        {"validation_split": 1.5},
        {"batch_size": 0},
        {"batch_size": 2.5},
        {"scale": "minmax"},
        {"seed": "x"},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(InvalidArgumentError) as caught:
        pipelines.load("digits", **kwargs)
    assert_one_line(caught.value)


def test_missing_idx_folder_and_file(tmp_path, idx_dir):
    with pytest.raises(DataFormatError, match="does not exist"):
        pipelines.load(f"idx:{tmp_path / 'nope'}")
    next(idx_dir.glob("t10k-labels*")).unlink()
    with pytest.raises(DataFormatError, match="t10k-labels-idx1-ubyte") as caught:
        pipelines.load(f"idx:{idx_dir}")
    assert_one_line(caught.value)


def test_truncated_idx_and_wrong_magic(tmp_path, arrays):
    from tests.pipelines.conftest import idx_bytes, write_idx_dir

    folder = write_idx_dir(tmp_path / "d", arrays, gz=False)
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DataFormatError, match="truncated") as caught:
        pipelines.load(f"idx:{folder}")
    assert_one_line(caught.value)
    images.write_bytes(b"\x08\x03" + idx_bytes(arrays["x_train"])[2:])
    with pytest.raises(DataFormatError, match="magic"):
        pipelines.load(f"idx:{folder}")


@pytest.mark.parametrize("kind", ["idx", "npz"])
def test_count_mismatch(tmp_path, arrays, kind):
    from tests.pipelines.conftest import write_idx_dir

    arrays = dict(arrays, y_train=arrays["y_train"][:-1])
    if kind == "idx":
        name = f"idx:{write_idx_dir(tmp_path / 'd', arrays, gz=True)}"
    else:
        np.savez(tmp_path / "m.npz", **arrays)
        name = f"npz:{tmp_path / 'm.npz'}"
    with pytest.raises(DataFormatError, match="200 train images but 199 train labels") as caught:
        pipelines.load(name)
    assert_one_line(caught.value)


def test_npz_missing_key_or_not_npz(tmp_path, arrays):
    np.savez(tmp_path / "m.npz", **{k: v for k, v in arrays.items() if k != "y_test"})
    with pytest.raises(DataFormatError, match="lacks y_test") as caught:
        pipelines.load(f"npz:{tmp_path / 'm.npz'}")
    assert_one_line(caught.value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError):
        pipelines.load(f"npz:{tmp_path / 'junk.npz'}")
    with pytest.raises(DataFormatError, match="does not exist"):
        pipelines.load(f"npz:{tmp_path / 'absent.npz'}")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"y_test": np.array([0, 1, 2, 4] * 10)}, r"in \[0, 4\) .* found 4 \(10 examples\)"),
        ({"y_train": -np.ones(200, np.int64)}, r">= 0, found -1 \(200 examples\)"),
        ({"y_train": np.full(200, 0.5)}, "integer class indices"),
        ({"x_test": np.full((40, 7, 5), np.nan)}, "NaN"),
        ({"x_train": np.full((200, 7, 5), np.inf)}, "NaN or infinite"),
        ({"x_test": np.zeros((0, 7, 5)), "y_test": np.zeros(0, np.int64)}, "test split is empty"),
    ],
)
def test_bad_values(tmp_path, arrays, change, words):
    data = dict(arrays, class_names=np.array(["a", "b", "c", "d"]), **change)
    np.savez(tmp_path / "m.npz", **data)
    with pytest.raises(InvalidDataError, match=words) as caught:
        pipelines.load(f"npz:{tmp_path / 'm.npz'}")
    assert_one_line(caught.value)


def test_empty_validation_split(tmp_path, arrays):
    two = [int(np.argmax(arrays["y_train"] == label)) for label in (0, 1)]  # two classes
    data = dict(arrays, x_train=arrays["x_train"][two], y_train=arrays["y_train"][two],
                y_test=arrays["y_test"] % 2)
    np.savez(tmp_path / "m.npz", **data)
    with pytest.raises(InvalidDataError, match="non-empty validation part") as caught:
        pipelines.load(f"npz:{tmp_path / 'm.npz'}", validation_split=0.9)
    assert_one_line(caught.value)


def test_auto_scaling_standardizes_digits_with_training_statistics() -> None:
    from sklearn.preprocessing import StandardScaler

    splits = pipelines.load("digits", batch_size=500)
    assert splits.info.scale == "standardize"
    x_train, _ = collect(splits.train)
    x_unit, _ = collect(pipelines.load("digits", batch_size=500, scale="unit").train)
    # Same examples in the same order (same seed); scikit-learn's scaler as the reference.
    reference = StandardScaler().fit(np.asarray(x_unit, np.float64) * 16)
    np.testing.assert_allclose(
        x_train, reference.transform(np.asarray(x_unit, np.float64) * 16), atol=1e-5
    )


def test_repeated_train_stream_is_indexed_by_epoch() -> None:
    import math

    splits = pipelines.load("digits", batch_size=128, seed=3, repeat=True)
    steps = math.ceil(splits.info.num_examples["train"] / 128)

    def epochs(dataset, count: int) -> list[np.ndarray]:
        labels = [y for _, y in dataset.take(count * steps).as_numpy_iterator()]
        return [np.concatenate(labels[e * steps:(e + 1) * steps]) for e in range(count)]

    for _ in range(3):  # iterators made and dropped must not move the order
        iter(splits.train)
    first = epochs(splits.train, 3)
    again = epochs(pipelines.load("digits", batch_size=128, seed=3, repeat=True).train, 3)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # Each epoch is a new permutation of the same examples.
    assert not np.array_equal(first[0], first[1])
    np.testing.assert_array_equal(np.sort(first[0]), np.sort(first[2]))
    # Skipping k epochs' batches starts exactly at epoch k.
    resumed = epochs(splits.train.skip(2 * steps), 1)
    np.testing.assert_array_equal(resumed[0], first[2])


def test_a_finite_training_set_is_shuffled_by_its_seed_alone() -> None:
    """Not by TensorFlow's global seed, which keras.utils.set_random_seed sets."""
    import tensorflow as tf

    def orders() -> list[list[list[int]]]:
        train = pipelines.load("digits", batch_size=500, seed=5).train
        return [[y[:8].numpy().tolist() for _, y in train] for _ in range(2)]

    plain = orders()
    tf.random.set_seed(3)
    try:
        seeded = orders()
    finally:
        tf.random.set_seed(None)
    assert plain[0] != plain[1]  # reshuffled each pass
    assert seeded == plain


def test_train_and_validation_is_every_example_of_both_each_epoch() -> None:
    """The retraining's stream: each epoch all training and validation examples once,
    reshuffled by (seed, epoch) alone, in batches of the asked size."""
    from pipelines.builder import train_and_validation

    examples = pipelines.load("digits", batch_size=None, seed=5)
    rows = np.concatenate([np.stack([x for x, _ in split.as_numpy_iterator()])
                           for split in (examples.train, examples.validation)])
    splits = pipelines.load("digits", batch_size=100, seed=5)
    stream = train_and_validation(splits, batch_size=100, seed=5)
    assert stream.batches_per_epoch == -(-len(rows) // 100) == 15
    batches = list(stream.dataset.take(2 * 15).as_numpy_iterator())
    assert [len(y) for _, y in batches[:15]] == [100] * 14 + [len(rows) - 1400]
    epochs = [np.concatenate([x for x, _ in batches[e * 15:(e + 1) * 15]]) for e in range(2)]
    def sorted_rows(array: np.ndarray) -> np.ndarray:
        return array[np.lexsort(array.T)]

    for epoch in epochs:
        np.testing.assert_array_equal(sorted_rows(epoch), sorted_rows(rows))
    assert not np.array_equal(epochs[0], epochs[1])
    again = train_and_validation(pipelines.load("digits", batch_size=100, seed=5),
                                 batch_size=100, seed=5)
    for got, want in zip(again.blocks(1, 1).take(15).as_numpy_iterator(), batches[15:],
                         strict=True):
        np.testing.assert_array_equal(got[0], want[0])
