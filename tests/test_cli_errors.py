"""Every bad input to the four command lines: exit status 2, one line on stderr
that names the problem (and says what to do), no traceback, nothing written.

Each case runs ``python -m kerasdnn.train``, ``kerasdnn.evaluate``,
``tuning.search`` or ``pipelines`` as a subprocess in a folder of its own,
which must be exactly as it was afterwards.  The subprocess sees TensorFlow's
start-up noise unfiltered: ``TF_ENABLE_ONEDNN_OPTS=1`` turns oneDNN's start-up
lines on on any CPU, ``TF_CPP_MIN_LOG_LEVEL`` is not set by the test, and
stderr is taken as it comes.  Its network is down (tests/data/offline).

Most cases fail before TensorFlow is imported and do not depend on the
backend: they run in the ``jax`` tox env only.  The cases that go through
TensorFlow and Keras (``per_backend``) run on every backend.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gzip
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA_DIR, REPO_ROOT
from tests.pipelines.conftest import idx_bytes, make_arrays, write_idx_dir

PREFIXES = {
    "kerasdnn.train": "python -m kerasdnn.train: error: ",
    "kerasdnn.evaluate": "python -m kerasdnn.evaluate: error: ",
    "tuning.search": "python -m tuning.search: error: ",
    "pipelines": "python -m pipelines: error: ",
}
TABLE_BACKEND = "jax"  # where the backend-independent cases run


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: the command, its arguments (paths relative to the case's
    folder), what to write there first, and words the error line must hold."""

    id: str
    command: str
    args: tuple[str, ...]
    expect: str
    setup: Callable[[Path], None] = lambda folder: None
    env: tuple[tuple[str, str], ...] = ()
    per_backend: bool = False  # goes through TensorFlow and Keras: run on every backend
    read_only: str | None = None  # a folder made read-only (for root too) before the run


# --------------------------------------------------------------------------- inputs


def arrays(**changes: np.ndarray) -> dict[str, np.ndarray]:
    return {**make_arrays(), **changes}


def idx(name: str = "d", gz: bool = False, **changes: np.ndarray) -> Callable[[Path], None]:
    return lambda folder: write_idx_dir(folder / name, arrays(**changes), gz=gz) and None


def idx_then(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        write_idx_dir(folder / "d", make_arrays(), gz=False)
        edit(folder / "d")

    return setup


def npz(name: str = "m.npz", **changes: np.ndarray) -> Callable[[Path], None]:
    return lambda folder: np.savez(folder / name, **arrays(**changes))


def text(name: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return setup


def folders(*names: str) -> Callable[[Path], None]:
    return lambda folder: [(folder / name).mkdir(parents=True) for name in names] and None


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda folder: [setup(folder) for setup in setups] and None


def run_dir(name: str = "run", *, model: bytes | None = b"not a zip",
            model_zip: bool = True) -> Callable[[Path], None]:
    """A finished-looking run of digits: a real config.json, and a model.keras that is
    a zip archive of garbage (``model_zip``) or the raw bytes ``model``."""
    def setup(folder: Path) -> None:
        from kerasdnn.core.config import ModelConfig, TrainConfig
        from kerasdnn.core.rundir import run_record

        run = folder / name
        run.mkdir()
        record = run_record(ModelConfig(input_shape=(64,)), TrainConfig(dataset="digits"),
                            backend="jax")
        (run / "config.json").write_text(json.dumps(record))
        if model_zip:
            with zipfile.ZipFile(run / "model.keras", "w") as archive:
                archive.writestr("config.json", "{not json")
        elif model is not None:
            (run / "model.keras").write_bytes(model)

    return setup


def unfinished_run(folder: Path) -> None:
    run_dir(model=None, model_zip=False)(folder)


def truncate(name: str, keep: int) -> Callable[[Path], None]:
    def edit(idx_folder: Path) -> None:
        path = idx_folder / name
        path.write_bytes(path.read_bytes()[:keep])

    return edit


def corrupt_gzip(idx_folder: Path) -> None:
    path = idx_folder / "train-labels-idx1-ubyte"
    data = gzip.compress(path.read_bytes())
    path.unlink()
    (idx_folder / "train-labels-idx1-ubyte.gz").write_bytes(data[: len(data) // 2])


def wrong_magic(idx_folder: Path) -> None:
    path = idx_folder / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])


def fewer_labels(idx_folder: Path) -> None:
    labels = make_arrays()["y_train"][:-1]
    (idx_folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))


def object_npz(folder: Path) -> None:
    data = make_arrays()
    np.savez(folder / "m.npz", **{**data, "y_test": np.array(list(data["y_test"]), object)})


def damaged_npz(folder: Path) -> None:
    np.savez(folder / "m.npz", **make_arrays())
    raw = bytearray((folder / "m.npz").read_bytes())
    raw[200:400] = bytes(200)  # inside the first member: its CRC no longer matches
    (folder / "m.npz").write_bytes(bytes(raw))


def stored_search(folder: Path) -> None:
    project = folder / "runs" / "tuning" / "digits-random"
    project.mkdir(parents=True)
    (project / "search.json").write_text(json.dumps({"tuner": "bayesian"}))


def table_csv(rows: int = 30, *, label: str | None = None, x: str | None = None) -> str:
    """A small CSV: numeric x, categorical c, string labels of three classes."""
    lines = ["x,c,label"] + [
        f"{x if x is not None and i == 7 else i * 0.5},{'uvw'[i % 3]},"
        f"{label if label is not None else ('cat', 'dog', 'emu')[i % 3]}"
        for i in range(rows)]
    return "\n".join(lines) + "\n"


def rare_class_csv() -> str:
    return table_csv().replace("0.0,u,cat", "0.0,u,yak")


A = make_arrays()
ONE_CLASS = np.zeros_like(A["y_train"])
WITH_255 = np.where(np.arange(len(A["y_train"])) < 3, 255, A["y_train"]).astype(np.uint8)
NAMES = np.array(["a", "b", "c", "d"])
MNIST_OFFLINE = "is not prepared in"


def T(id: str, args: tuple[str, ...], expect: str, **kw) -> Case:
    return Case(id, "kerasdnn.train", args, expect, **kw)


def E(id: str, args: tuple[str, ...], expect: str, **kw) -> Case:
    return Case(id, "kerasdnn.evaluate", args, expect, **kw)


def S(id: str, args: tuple[str, ...], expect: str, **kw) -> Case:
    return Case(id, "tuning.search", args, expect, **kw)


def P(id: str, args: tuple[str, ...], expect: str, **kw) -> Case:
    return Case(id, "pipelines", args, expect, **kw)


OUT = ("--out", "out")
CASES = [
    # kerasdnn.train: flags, environment, config files
    T("flag-choice", ("--optimizer", "rmsprop", *OUT), "argument --optimizer: invalid choice"),
    T("flag-range", ("--epochs", "0", *OUT), "--epochs: must be an integer >= 1"),
    T("flag-list", ("--hidden", "500,abc", *OUT), "comma-separated positive integers"),
    T("flag-unknown", ("--no-such-flag", *OUT), "unrecognized arguments"),
    T("backend", OUT, "unknown KERAS_BACKEND 'mxnet'", env=(("KERAS_BACKEND", "mxnet"),)),
    # TABLE_BACKEND's env installs its own backend only
    T("backend-not-installed", OUT, "KERAS_BACKEND is torch, but PyTorch is not installed",
      env=(("KERAS_BACKEND", "torch"),)),
    # Keras's launcher variable on JAX (this env has no PyTorch for torchrun's WORLD_SIZE;
    # that one and --devices 2 on PyTorch: tests/kerasdnn/training/test_distribute.py)
    T("launched-without-data-parallel", OUT,
      "started as one of 2 processes (a launcher such as torchrun) without --data-parallel",
      env=(("KERAS_BACKEND", "jax"), ("KERAS_DISTRIBUTION_NUM_PROCESSES", "2"))),
    T("devices-without-data-parallel", (*OUT, "--devices", "2"), "needs --data-parallel"),
    T("dataset-unknown", ("--dataset", "no_such_data", *OUT), "unknown dataset 'no_such_data'"),
    T("config-missing", ("--config", "c.json", *OUT), "--config c.json: no such file; give"),
    T("config-folder", ("--config", "c", *OUT), "--config c is a folder; give a JSON file",
      setup=folders("c")),
    T("config-not-json", ("--config", "c.json", *OUT), "is not valid JSON (Expecting",
      setup=text("c.json", "{train: 1")),
    T("config-binary", ("--config", "c.json", *OUT), "is not a text file",
      setup=text("c.json", b"\xff\xfe\x00")),
    T("config-not-object", ("--config", "c.json", *OUT), "expected a JSON object",
      setup=text("c.json", "[1, 2]")),
    T("config-section-null", ("--config", "c.json", *OUT),
      '"train" must be a JSON object of settings, got null',
      setup=text("c.json", '{"train": null}')),
    T("config-section-list", ("--config", "c.json", *OUT),
      '"model" must be a JSON object of settings, got a list',
      setup=text("c.json", '{"model": [1]}')),
    T("config-metrics-number", ("--config", "c.json", *OUT), "metrics must be a list",
      setup=text("c.json", '{"model": {"metrics": 5}}')),
    T("seed-too-large", ("--seed", str(2**32), *OUT), "--seed: must be an integer 0 .. 4294967295"),
    T("batch-size-huge", ("--batch-size", str(2**64), *OUT), "(at most 2147483647)"),
    T("warmup-as-long-as-the-run", ("--warmup-epochs", "2", "--epochs", "2", *OUT),
      "warmup_epochs (2) must be fewer than the epochs (2)"),
    T("config-unknown-key", ("--config", "c.json", *OUT), "unknown TrainConfig key(s) epoch",
      setup=text("c.json", '{"train": {"epoch": 3}}')),
    # kerasdnn.train: where it writes
    T("out-parent-file", ("--out", "f/run"), "--out f/run: f is a file, not a folder",
      setup=text("f", "keep")),
    T("out-file", ("--out", "f"), "--out f is a file", setup=text("f", "keep")),
    T("out-not-empty", ("--out", "o"), "o is not empty; pass --resume",
      setup=text("o/x.txt", "keep")),
    T("out-read-only", ("--dataset", "digits", "--out", "ro/run"), "ro is not writable",
      setup=folders("ro"), read_only="ro"),
    T("default-out-read-only", ("--dataset", "digits"), "is not writable",
      setup=folders("runs"), read_only="runs"),
    T("resume-no-out", ("--resume",), "--resume needs --out"),
    T("resume-not-a-run", ("--out", "o", "--resume"), "not a kerasdnn run directory",
      setup=text("o/x.txt", "keep")),
    T("resume-damaged", ("--out", "o", "--resume"), "is damaged",
      setup=text("o/config.json", "")),
    # kerasdnn.train: each data source's bad files
    T("idx-no-folder", ("--dataset", "idx:nowhere", *OUT), "does not exist; give a folder"),
    T("idx-missing-file", ("--dataset", "idx:d", *OUT), "t10k-labels-idx1-ubyte[.gz] is missing",
      setup=idx_then(lambda d: (d / "t10k-labels-idx1-ubyte").unlink())),
    T("idx-truncated", ("--dataset", "idx:d", *OUT), "is truncated",
      setup=idx_then(truncate("train-images-idx3-ubyte", 1000))),
    T("idx-bad-gzip", ("--dataset", "idx:d", *OUT), "truncated or corrupt gzip",
      setup=idx_then(corrupt_gzip)),
    T("idx-magic", ("--dataset", "idx:d", *OUT), "wrong magic number",
      setup=idx_then(wrong_magic)),
    T("idx-count-mismatch", ("--dataset", "idx:d", *OUT), "200 train images but 199 train "
      "labels", setup=idx_then(fewer_labels)),
    T("idx-label-255", ("--dataset", "idx:d", *OUT), "label(s) 255 (3 examples) occur",
      setup=idx(y_train=WITH_255)),
    T("idx-one-class", ("--dataset", "idx:d", *OUT), "only label 0 (200 examples)",
      setup=idx(y_train=ONE_CLASS, y_test=np.zeros_like(A["y_test"]))),
    T("idx-unseen-test-class", ("--dataset", "idx:d", *OUT), "test labels 2 (10 examples), "
      "3 (10 examples) never occur", setup=idx(y_train=A["y_train"] % 2)),
    T("idx-shape-mismatch", ("--dataset", "idx:d", *OUT), "of one shape",
      setup=idx(x_test=np.zeros((40, 5, 7), np.uint8))),
    T("npz-missing", ("--dataset", "npz:m.npz", *OUT), "npz: file m.npz does not exist"),
    T("npz-text", ("--dataset", "npz:m.npz", *OUT), "m.npz is not a .npz archive",
      setup=text("m.npz", "x_train,y_train\n1,2\n")),
    T("npz-damaged", ("--dataset", "npz:m.npz", *OUT), "damaged or truncated",
      setup=damaged_npz),
    T("npz-lacks-key", ("--dataset", "npz:m.npz", *OUT), "lacks y_test",
      setup=lambda f: np.savez(f / "m.npz", x_train=A["x_train"], y_train=A["y_train"],
                               x_test=A["x_test"])),
    T("npz-object", ("--dataset", "npz:m.npz", *OUT), "holds object arrays",
      setup=object_npz),
    T("npz-nan", ("--dataset", "npz:m.npz", *OUT), "NaN or infinite",
      setup=npz(x_test=np.full((40, 7, 5), np.nan))),
    T("npz-float-labels", ("--dataset", "npz:m.npz", *OUT), "integer class indices",
      setup=npz(y_train=np.full(200, 0.5))),
    T("npz-negative-labels", ("--dataset", "npz:m.npz", *OUT), ">= 0, found -1",
      setup=npz(y_train=-np.ones(200, np.int64))),
    T("npz-beyond-names", ("--dataset", "npz:m.npz", *OUT), "in [0, 4) for its 4 class "
      "names, found 7", setup=npz(class_names=NAMES, y_test=np.full(40, 7))),
    T("npz-one-hot", ("--dataset", "npz:m.npz", *OUT), "one class index per example",
      setup=npz(y_train=np.eye(4)[A["y_train"]])),
    T("npz-count-mismatch", ("--dataset", "npz:m.npz", *OUT), "200 train images but 199",
      setup=npz(y_train=A["y_train"][:-1])),
    # kerasdnn.train: tables (csv:, parquet:)
    T("table-no-target", ("--dataset", "csv:t.csv", *OUT), "name its label column with "
      "--target COLUMN", setup=text("t.csv", table_csv())),
    T("table-wrong-target", ("--dataset", "csv:t.csv", "--target", "y", *OUT),
      "--target 'y' is not a column of csv:t.csv; its columns: x, c, label",
      setup=text("t.csv", table_csv())),
    T("table-header-only", ("--dataset", "csv:t.csv", "--target", "label", *OUT),
      "has a header but no rows", setup=text("t.csv", "x,c,label\n")),
    T("table-empty-file", ("--dataset", "csv:t.csv", "--target", "label", *OUT),
      "csv:t.csv is empty", setup=text("t.csv", "")),
    T("table-one-class", ("--dataset", "csv:t.csv", "--target", "label", *OUT),
      "has only one class ('dog')", setup=text("t.csv", table_csv(label="dog"))),
    T("table-missing-target-values", ("--dataset", "csv:t.csv", "--target", "label", *OUT),
      "target 'label' has no values", setup=text("t.csv", table_csv(label=""))),
    T("table-mixed-column", ("--dataset", "csv:t.csv", "--target", "label", *OUT),
      "column 'x' mixes numbers and text", setup=text("t.csv", table_csv(x="seven"))),
    T("table-rare-class", ("--dataset", "csv:t.csv", "--target", "label", *OUT),
      "class 'yak' has 1 row(s), too few", setup=text("t.csv", rare_class_csv())),
    T("table-truncated", ("--dataset", "csv:t.csv", "--target", "label", *OUT),
      "csv:t.csv is truncated", setup=text("t.csv", table_csv()[:-6])),
    T("table-not-utf8", ("--dataset", "csv:t.csv", "--target", "label", *OUT),
      "is not UTF-8", setup=text("t.csv", table_csv().encode() + b"1,\xe9t\xe9,cat\n")),
    T("table-missing-file", ("--dataset", "csv:nowhere.csv", "--target", "label", *OUT),
      "csv:nowhere.csv: no such file"),
    T("table-folder", ("--dataset", "csv:d", "--target", "label", *OUT),
      "csv:d is an empty folder",
      setup=folders("d")),
    T("parquet-not-parquet", ("--dataset", "parquet:t.parquet", "--target", "label", *OUT),
      "is not a readable Parquet file", setup=text("t.parquet", table_csv())),
    T("table-features-kind", ("--dataset", "csv:t.csv", "--target", "label", "--features",
      "f.json", *OUT), "--features f.json: must be a JSON object",
      setup=both(text("t.csv", table_csv()), text("f.json", '{"x": "text"}'))),
    T("table-target-for-images", ("--dataset", "digits", "--target", "label", *OUT),
      "target (--target) is for a table"),
    # kerasdnn.train: streamed tables (--stream)
    T("stream-for-images", ("--dataset", "digits", "--stream", *OUT),
      "stream (--stream) reads a table (csv:PATH, parquet:PATH), an npz:PATH or an idx:DIR"),
    T("stream-compressed-npz", ("--dataset", "npz:m.npz", "--stream", *OUT),
      "is compressed (np.savez_compressed), which cannot be read piece by piece; save it "
      "with np.savez", setup=lambda f: np.savez_compressed(f / "m.npz", **make_arrays())),
    T("stream-gzipped-idx", ("--dataset", "idx:d", "--stream", *OUT),
      "is gzipped, which cannot be read piece by piece; gunzip it", setup=idx(gz=True)),
    T("stream-buffer-without-stream", ("--dataset", "csv:t.csv", "--target", "label",
      "--shuffle-buffer", "100", *OUT), "--shuffle-buffer needs --stream",
      setup=text("t.csv", table_csv())),
    T("stream-text-below-the-head", ("--dataset", "csv:t.csv", "--target", "label", "--stream",
      *OUT), "a numeric column holds text further down than the 10,000 rows",
      setup=text("t.csv", table_csv(12_000).replace("\n5500.0,", "\nseven,", 1))),
    T("stream-truncated", ("--dataset", "csv:t.csv", "--target", "label", "--stream", *OUT),
      "is not a well-formed CSV file", setup=text("t.csv", table_csv()[:-6])),
    # kerasdnn.train: the input path (--input-path)
    T("input-path-resident-weighted", ("--dataset", "digits", "--input-path", "resident",
      "--class-weight", "balanced", *OUT),
      "--input-path resident cannot run here: the stream adds to its stored examples"),
    T("input-path-unknown", ("--dataset", "digits", "--input-path", "gpu", *OUT),
      "argument --input-path: invalid choice"),
    T("tfds-offline", ("--dataset", "mnist", "--data-dir", "tfds", *OUT), MNIST_OFFLINE,
      per_backend=True),
    # kerasdnn.evaluate
    E("eval-missing", ("nowhere",), "no such file or directory"),
    E("eval-not-a-run", ("o",), "not a kerasdnn run directory", setup=text("o/x.txt", "x")),
    E("eval-unfinished", ("run",), "has not finished", setup=unfinished_run),
    E("eval-not-zip", ("run",), "not a .keras archive",
      setup=run_dir(model=b"junk", model_zip=False)),
    E("eval-damaged-model", ("run", "--out", "o"), "cannot load run/model.keras",
      setup=run_dir(), per_backend=True),
    E("eval-out-parent-file", ("run", "--out", "f/o"), "f is a file, not a folder",
      setup=both(run_dir(), text("f", "x"))),
    E("eval-out-run-dir", ("run", "--out", "run"), "is a run directory", setup=run_dir()),
    E("eval-default-out-read-only", ("run",), "run is not writable", setup=run_dir(),
      read_only="run"),
    E("eval-batch-size", ("run", "--batch-size", "0"), "must be an integer >= 1"),
    E("eval-backend", ("run",), "unknown KERAS_BACKEND", setup=run_dir(),
      env=(("KERAS_BACKEND", "numpy"),)),
    # tuning.search
    S("search-tuner", ("--tuner", "grid"), "argument --tuner: invalid choice"),
    S("search-seed-0", ("--seed", "0"), "KerasTuner replaces seed 0"),
    S("search-seed-too-large", ("--seed", str(2**32)), "must be an integer 0 .. 4294967295"),
    S("space-range-of-lists", ("--space", "s.json"), "search space 'units'",
      setup=lambda folder: (folder / "s.json").write_text('{"units": {"min": [1]}}') and None),
    S("search-backend", ("--dataset", "digits"), "unknown KERAS_BACKEND",
      env=(("KERAS_BACKEND", "mxnet"),)),
    S("space-missing", ("--space", "s.json"), "--space s.json: no such file; give"),
    S("space-folder", ("--space", "s"), "--space s is a folder", setup=folders("s")),
    S("space-not-json", ("--space", "s.json"), "is not valid JSON",
      setup=text("s.json", "{units: 64")),
    S("space-empty-choice", ("--space", "s.json"), "empty list of values; give at least one",
      setup=text("s.json", '{"batch_size": []}')),
    S("space-inverted-range", ("--space", "s.json"), "(min 0.4 > max 0.1); give min <= max",
      setup=text("s.json", '{"dropout": {"min": 0.4, "max": 0.1}}')),
    S("space-unknown-key", ("--space", "s.json"), "unknown search space key(s) 'units_0'",
      setup=text("s.json", '{"units_0": 64}')),
    S("directory-file", ("--dataset", "digits", "--directory", "f"), "f is a file, not a "
      "folder; choose another --directory", setup=text("f", "keep")),
    S("directory-read-only", ("--dataset", "digits", "--directory", "ro/t"),
      "ro is not writable", setup=folders("ro"), read_only="ro"),
    S("search-other-settings", ("--dataset", "digits"), "cannot continue the search",
      setup=stored_search),
    S("search-bad-data", ("--dataset", "npz:m.npz"), "is not a .npz archive",
      setup=text("m.npz", "1 2 3\n")),
    # python -m pipelines
    P("pipelines-unknown", ("mnits",), "unknown dataset 'mnits'"),
    P("pipelines-flag", ("digits", "--batch-size", "x"), "argument --batch-size: invalid int"),
    P("pipelines-batch-size", ("digits", "--batch-size", "0"), "batch_size (--batch-size)"),
    P("pipelines-backend", ("digits",), "unknown KERAS_BACKEND",
      env=(("KERAS_BACKEND", "mxnet"),)),
    P("pipelines-idx-255", ("idx:d",), "label(s) 255", setup=idx(y_train=WITH_255)),
    P("pipelines-npz-text", ("npz:m.npz",), "is not a .npz archive",
      setup=text("m.npz", "not numbers")),
    P("pipelines-offline", ("fashion_mnist", "--data-dir", "tfds"), "--manual-dir"),
]


# --------------------------------------------------------------------------- running


def drop_root_write_override() -> None:
    """In the child, before exec: root loses the capabilities that let it write in
    a read-only folder (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so the folder is
    read-only for it as for anyone.  (chmod alone does not stop root.)"""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2):
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def can_drop_root_write_override() -> bool:
    if os.geteuid() != 0:
        return True  # chmod is enough
    probe = subprocess.run([sys.executable, "-c", ""], preexec_fn=drop_root_write_override,
                           capture_output=True, check=False)
    return probe.returncode == 0


def snapshot(folder: Path) -> list[tuple[str, int, int, int]]:
    """Every entry under ``folder`` (itself included): path, mode, size, mtime."""
    entries = [folder, *sorted(folder.rglob("*"))]
    return [(str(p.relative_to(folder)), p.lstat().st_mode, p.lstat().st_size,
             p.lstat().st_mtime_ns) for p in entries]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_status_2_and_writes_nothing(
    case: Case, backend: str, tmp_path: Path
) -> None:
    if not case.per_backend and backend != TABLE_BACKEND:
        pytest.skip(f"backend-independent: runs in the {TABLE_BACKEND} env")
    preexec = None
    if case.read_only:
        if not can_drop_root_write_override():
            pytest.skip("cannot make a folder read-only for root here (no CAP_SETPCAP)")
        preexec = drop_root_write_override if os.geteuid() == 0 else None
    work = tmp_path / "work"
    work.mkdir()
    case.setup(work)
    if case.read_only:
        (work / case.read_only).chmod(0o555)
    before = snapshot(work)
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(
        PYTHONPATH=os.pathsep.join([str(DATA_DIR / "offline"), str(REPO_ROOT)]),
        TF_ENABLE_ONEDNN_OPTS="1",
        TFDS_DATA_DIR=str(tmp_path / "tfds-home"),
        **dict(case.env),
    )
    result = subprocess.run(
        [sys.executable, "-m", case.command, *case.args],
        cwd=work, env=env, capture_output=True, text=True, timeout=120, preexec_fn=preexec,
        check=False,
    )
    after = snapshot(work)
    if case.read_only:
        (work / case.read_only).chmod(0o755)  # so that pytest can clean up
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(PREFIXES[case.command]), lines[0]
    assert case.expect in lines[0], lines[0]
    assert "allow_pickle" not in lines[0]
    assert after == before, "the folder changed"


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert {case.command for case in CASES} == set(PREFIXES)
