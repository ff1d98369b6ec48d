"""Property-based checks of the commands' argument and config reading (hypothesis):
random ``config.json`` documents, search-space files and flag values (wrong types,
nulls, lists, huge and negative numbers, unicode, empty strings) into ``train``,
``evaluate``, ``export``, ``compare`` and ``tuning.search``.

Each command either accepts the input, or exits with status 2 and one line
``<prog>: error: ...`` on stderr, never a traceback, and then its output folder
is exactly as it was.  The commands run in-process through their ``main(argv)``
with the work stopped where it would start (the data load, the model load, the
search): what is tested is everything before it, which is where every input
is checked.  train and evaluate load the data (digits) first, so that what the
data pipeline is given is tested too.  The inputs do not depend on the backend:
they run in the jax tox env only.  A few examples also run as subprocesses (tests/test_cli_errors.py
holds the table of hand-picked bad inputs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.control import currently_in_test_context  # noqa: E402

from kerasdnn.core.config import ModelConfig, TrainConfig  # noqa: E402

PROPERTY_SETTINGS = settings(
    max_examples=30, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _one_backend(backend: str) -> None:
    if backend != "jax":
        pytest.skip("backend-independent: runs in the jax env")


class Stopped(BaseException):
    """Raised where a command's real work would start: the input was accepted (a
    BaseException, so that no ``except Exception`` of the command takes it for an error)."""


def _stop(*args: Any, **kwargs: Any) -> None:
    raise Stopped


# --------------------------------------------------------------------------- strategies

EDGE_INTEGERS = (0, 1, -1, 2, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 2**64, -(2**64))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(EDGE_INTEGERS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(("", " ", "auto", "digits", "relu", "adam", "ünïcødé", "\u202e", "0")),
    st.text(max_size=6),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6,
)
TRAIN_KEYS = [field.name for field in dataclasses.fields(TrainConfig)]
MODEL_KEYS = [field.name for field in dataclasses.fields(ModelConfig)]


def _section(keys: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), JSON_VALUES, max_size=4)


# A run's config.json with a few of its values replaced: near the valid documents.
# Drawn as the edit, applied to a real run's record (:func:`_document`).
RUN_RECORD = {"train": TrainConfig(dataset="digits").to_dict(),
              "model": ModelConfig(input_shape=(64,)).to_dict(), "backend": "jax"}


@dataclasses.dataclass(frozen=True)
class Edit:
    section: str
    changes: dict[str, Any]


def _edits(section: str, keys: Sequence[str]) -> st.SearchStrategy[Edit]:
    changes = st.dictionaries(st.sampled_from(keys), JSON_VALUES, max_size=2)
    return changes.map(lambda values: Edit(section, values))


CONFIG_DOCUMENTS = st.one_of(
    _edits("train", TRAIN_KEYS),
    _edits("model", MODEL_KEYS),
    JSON_VALUES,
    st.fixed_dictionaries({}, optional={
        "train": _section(TRAIN_KEYS) | JSON_VALUES,
        "model": _section(MODEL_KEYS) | JSON_VALUES,
        "backend": JSON_VALUES,
    }),
)


def _document(drawn: Any, base: dict[str, Any] = RUN_RECORD) -> Any:
    """The config document a drawn value stands for (an :class:`Edit` of ``base``)."""
    if isinstance(drawn, Edit):
        return {**base, drawn.section: {**base[drawn.section], **drawn.changes}}
    return drawn


FLAG_TEXT = st.one_of(
    st.sampled_from(("1", "3", "0.5", "digits", "relu", "adam", "random", "hyperband")),
    st.sampled_from(("", "0", "-1", "1.5", "1e400", "nan", "inf", str(2**32), str(2**64),
                     "-" + str(2**64), "abc", "ünï", "[1]", "null", "true", "500,250", ",")),
    st.text(max_size=6),
)


def _flags(names: Sequence[str]) -> st.SearchStrategy[list[str]]:
    pairs = st.lists(st.tuples(st.sampled_from(names), FLAG_TEXT), max_size=3)
    return pairs.map(lambda items: [text for pair in items for text in pair])


TRAIN_FLAGS = ("--dataset", "--validation-split", "--scale", "--epochs", "--batch-size",
               "--seed", "--early-stopping", "--steps-per-execution", "--devices", "--hidden",
               "--activation", "--dropout", "--l2", "--optimizer", "--lr", "--momentum",
               "--clipnorm")
SEARCH_FLAGS = ("--tuner", "--max-trials", "--epochs", "--max-epochs", "--factor",
                "--objective", "--executions-per-trial", "--early-stopping", "--dataset",
                "--seed", "--project-name", "--chief", "--worker", "--workers")
SPACE_DOCUMENTS = st.one_of(
    JSON_VALUES,
    st.dictionaries(
        st.sampled_from(("num_layers", "units", "activation", "dropout", "l2", "optimizer",
                         "learning_rate", "momentum", "batch_size")) | st.text(max_size=5),
        JSON_VALUES | st.dictionaries(st.sampled_from(("min", "max", "sampling")), SCALARS,
                                      max_size=3),
        max_size=3,
    ),
)


# --------------------------------------------------------------------------- the check


def _snapshot(folder: Path) -> list[tuple[str, int, int]]:
    return [(str(path.relative_to(folder)), path.lstat().st_mode, path.lstat().st_size)
            for path in [folder, *sorted(folder.rglob("*"))]]


@contextlib.contextmanager
def _folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kerasdnn-props-") as name:
        yield Path(name)


def accepts_or_refuses_in_one_line(
    main: Callable[[list[str]], int], argv: list[str], prog: str, folder: Path
) -> str:
    """Run ``main(argv)``; ``"accepted"`` when it reached the stopped work, ``"refused"``
    when it exited 2 with one error line and ``folder`` unchanged; anything else fails."""
    before = _snapshot(folder)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status: Any = main(argv)
        except Stopped:
            if currently_in_test_context():  # --hypothesis-show-statistics: how often
                event("accepted")
            return "accepted"
        except SystemExit as exit_:
            status = exit_.code
    lines = err.getvalue().splitlines()
    assert status == 2, (argv, status, err.getvalue())
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), (argv, lines)
    assert _snapshot(folder) == before, (argv, "the folder changed")
    if currently_in_test_context():
        event("refused")
    return "refused"


def _write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, allow_nan=True), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- train, compare


@pytest.fixture
def train_main(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    import kerasdnn.train
    import kerasdnn.training.run

    monkeypatch.setattr(kerasdnn.training.run, "_settle", _stop)  # the data is loaded, no model yet
    return sys.modules["kerasdnn.train"].main


@PROPERTY_SETTINGS
@given(document=CONFIG_DOCUMENTS, flags=_flags(TRAIN_FLAGS))
def test_train_config_files_and_flags(train_main: Callable, document: Any,
                                      flags: list[str]) -> None:
    with _folder() as folder:
        config = _write_json(folder / "config.json", _document(document))
        accepts_or_refuses_in_one_line(
            train_main, ["--config", str(config), *flags, "--out", str(folder / "run")],
            "python -m kerasdnn.train", folder)


@pytest.mark.parametrize("document", [{"train": None}, {"model": [1]}, {"train": {"seed": 2**32}},
                                      {"model": {"metrics": 5}}, {"train": "x", "model": {}}])
def test_train_refuses_the_documents_that_crashed_it(train_main: Callable, document: Any,
                                                     tmp_path: Path) -> None:
    config = _write_json(tmp_path / "config.json", document)
    assert accepts_or_refuses_in_one_line(
        train_main, ["--config", str(config), "--out", str(tmp_path / "run")],
        "python -m kerasdnn.train", tmp_path) == "refused"


@pytest.fixture
def compare_main(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    import kerasdnn.training.crossbackend
    from kerasdnn.compare import main

    monkeypatch.setattr(kerasdnn.training.crossbackend, "_run_backend", _stop)
    return main


@PROPERTY_SETTINGS
@given(document=CONFIG_DOCUMENTS, flags=_flags((*TRAIN_FLAGS, "--check", "--backends")))
def test_compare_config_files_and_flags(compare_main: Callable, document: Any,
                                        flags: list[str]) -> None:
    with _folder() as folder:
        config = _write_json(folder / "config.json", _document(document))
        accepts_or_refuses_in_one_line(
            compare_main, ["--config", str(config), *flags, "--out", str(folder / "cmp")],
            "python -m kerasdnn.compare", folder)


# --------------------------------------------------------------------------- evaluate, export


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Path:
    """A finished run of a tiny network on digits (one epoch): what evaluate and export
    read besides config.json."""
    if backend != "jax":
        pytest.skip("backend-independent: runs in the jax env")
    from kerasdnn.training.run import train

    out = tmp_path_factory.mktemp("real") / "run"
    train({"dataset": "digits", "epochs": 1, "out": str(out)}, {"hidden_units": (8,)},
          verbose=0)
    return out


def _run_folder(folder: Path, real_run: Path, drawn: Any) -> Path:
    """A copy of ``real_run`` whose config.json is the drawn document (an edit of the
    run's own record, or anything); loading its model is where the work is stopped."""
    run = folder / "run"
    shutil.copytree(real_run, run)
    base = json.loads((real_run / "config.json").read_text(encoding="utf-8"))
    _write_json(run / "config.json", _document(drawn, base))
    return run


@pytest.fixture
def stop_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    import kerasdnn.serving.artifact

    monkeypatch.setattr(keras.saving, "load_model", _stop)
    monkeypatch.setattr(keras.models, "load_model", _stop)
    # export: its work starts with the data (TensorFlow) or a TensorFlow subprocess (others)
    monkeypatch.setattr(kerasdnn.serving.artifact, "_source", _stop)
    monkeypatch.setattr(kerasdnn.serving.artifact, "_export_in_subprocess", _stop)


@PROPERTY_SETTINGS
@given(document=CONFIG_DOCUMENTS, flags=_flags(("--dataset", "--batch-size")))
def test_evaluate_run_configs_and_flags(stop_model_load: None, real_run: Path, document: Any,
                                        flags: list[str]) -> None:
    import kerasdnn.evaluate  # noqa: F401

    main = sys.modules["kerasdnn.evaluate"].main
    with _folder() as folder:
        run = _run_folder(folder, real_run, document)
        accepts_or_refuses_in_one_line(
            main, [str(run), *flags, "--out", str(folder / "eval")],
            "python -m kerasdnn.evaluate", folder)


@PROPERTY_SETTINGS
@given(document=CONFIG_DOCUMENTS, flags=_flags(("--format",)))
def test_export_run_configs_and_flags(stop_model_load: None, real_run: Path, document: Any,
                                      flags: list[str]) -> None:
    import kerasdnn.export  # noqa: F401

    main = sys.modules["kerasdnn.export"].main
    with _folder() as folder:
        run = _run_folder(folder, real_run, document)
        accepts_or_refuses_in_one_line(
            main, [str(run), "--format", "tf_saved_model", *flags, "--out", str(folder / "served")],
            "python -m kerasdnn.export", folder)


# --------------------------------------------------------------------------- tuning.search


@pytest.fixture
def search_main(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    import tuning.search

    monkeypatch.setattr(tuning.search, "search", _stop)
    monkeypatch.setattr(tuning.search, "run_local_search", _stop)
    monkeypatch.setattr(tuning.search, "check_backend", lambda: "jax")
    monkeypatch.setattr(tuning.search, "check_resume", lambda options, space: None)
    return tuning.search.main


@PROPERTY_SETTINGS
@given(space=SPACE_DOCUMENTS, flags=_flags(SEARCH_FLAGS))
def test_search_space_files_and_flags(search_main: Callable, space: Any,
                                      flags: list[str]) -> None:
    with _folder() as folder:
        path = _write_json(folder / "space.json", space)
        accepts_or_refuses_in_one_line(
            search_main, ["--space", str(path), *flags, "--directory", str(folder / "tuning")],
            "python -m tuning.search", folder)


@pytest.mark.parametrize("seed", ["0", "-1", str(2**32)])
def test_search_seed_rule(search_main: Callable, seed: str, tmp_path: Path) -> None:
    assert accepts_or_refuses_in_one_line(
        search_main, ["--seed", seed, "--directory", str(tmp_path / "t")],
        "python -m tuning.search", tmp_path) == "refused"


def test_search_seed_leaves_room_for_every_execution(search_main: Callable,
                                                     tmp_path: Path) -> None:
    argv = ["--seed", str(2**32 - 1), "--directory", str(tmp_path / "t")]
    assert accepts_or_refuses_in_one_line(
        search_main, argv, "python -m tuning.search", tmp_path) == "accepted"
    assert accepts_or_refuses_in_one_line(
        search_main, [*argv, "--executions-per-trial", "2"], "python -m tuning.search",
        tmp_path) == "refused"



@pytest.mark.parametrize("command", ["kerasdnn.evaluate", "kerasdnn.export"])
def test_a_valid_run_reaches_the_model_load(stop_model_load: None, real_run: Path,
                                            command: str, tmp_path: Path) -> None:
    """The stop point of the two tests above is reached: they test the whole reading."""
    import importlib

    importlib.import_module(command)
    run = _run_folder(tmp_path, real_run, Edit("train", {}))
    format_ = ["--format", "tf_saved_model"] if command.endswith("export") else []
    assert accepts_or_refuses_in_one_line(
        sys.modules[command].main, [str(run), *format_, "--out", str(tmp_path / "out")],
        f"python -m {command}", tmp_path) == "accepted"
