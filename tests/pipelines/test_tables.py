"""Tables (pipelines.tables): reading, missing values, types, the split, and cleaning
fitted on the training rows only, checked against an independent scikit-learn
ColumnTransformer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipelines
from pipelines.errors import DataFormatError, InvalidArgumentError, InvalidDataError
from pipelines.tables.encode import MISSING, encode, fit_preprocessing
from pipelines.tables.load import split_table
from pipelines.tables.read import read_table
from pipelines.tables.schema import infer_schema

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env


def messy_frame(rows: int = 90, seed: int = 0) -> pd.DataFrame:
    """Mixed types, a missing value of every spelling in every feature column,
    string labels, an id and a date column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "id": np.arange(rows),
        "age": rng.normal(40, 10, rows).round(2),
        "color": rng.choice(["red", "green", "blue"], rows),
        "member": rng.choice([True, False], rows),
        "stars": rng.integers(1, 5, rows),
        "income": rng.integers(1000, 90000, rows),
        "when": pd.date_range("2021-03-01", periods=rows).strftime("%Y-%m-%d"),
        "label": rng.choice(["cat", "dog", "emu"], rows),
    }).astype(object)
    tokens = ["", "NA", "?", "NaN", None]
    for column in ("age", "color", "member", "stars", "income"):
        for i, token in zip(rng.choice(rows, 5, replace=False), tokens, strict=True):
            frame.loc[i, column] = token
    return frame


@pytest.fixture(scope="module")
def messy_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "messy.csv"
    messy_frame().to_csv(path, index=False)
    return path


def test_every_missing_spelling_is_null_in_csv_parquet_and_dataframe(
    messy_csv: Path, tmp_path: Path
) -> None:
    from_csv = read_table(f"csv:{messy_csv}")
    from_frame = read_table(messy_frame())
    messy_frame().astype(str).replace("None", None).to_parquet(tmp_path / "t.parquet")
    from_parquet = read_table(f"parquet:{tmp_path / 't.parquet'}")
    for frame in (from_csv, from_frame, from_parquet):
        assert frame[["age", "color", "member", "stars", "income"]].isna().sum().tolist() == [5] * 5


def test_parquet_folder_of_shards_and_glob_read_every_row(tmp_path: Path) -> None:
    frame = messy_frame().astype(str)
    (tmp_path / "shards").mkdir()
    frame.iloc[:40].to_parquet(tmp_path / "shards" / "part-0.parquet")
    frame.iloc[40:].to_parquet(tmp_path / "shards" / "part-1.parquet")
    assert len(read_table(f"parquet:{tmp_path / 'shards'}")) == len(frame)
    assert len(read_table(f"parquet:{tmp_path / 'shards' / 'part-*.parquet'}")) == len(frame)


def test_types_are_inferred_and_id_and_date_columns_dropped(messy_csv: Path) -> None:
    schema = {c.name: (c.kind, c.detail) for c in infer_schema(read_table(f"csv:{messy_csv}"),
                                                                "label")}
    assert schema == {
        "id": ("drop", "id-like: every value different"),
        "age": ("numeric", "float"),
        "color": ("categorical", "text"),
        "member": ("categorical", "boolean"),
        "stars": ("categorical", "integer, 4 values"),
        "income": ("numeric", "integer"),
        "when": ("drop", "date-like"),
    }


def test_features_spec_and_drop_override_the_inference(messy_csv: Path) -> None:
    schema = {c.name: c.kind for c in infer_schema(
        read_table(f"csv:{messy_csv}"), "label", drop=("age",),
        features={"stars": "numeric", "id": "categorical"})}
    assert (schema["age"], schema["stars"], schema["id"]) == ("drop", "numeric", "categorical")


def test_mixed_type_column_is_refused_with_its_name() -> None:
    frame = pd.DataFrame({"x": ["1", "2", "three", "4"], "y": [0, 1, 0, 1]})
    with pytest.raises(InvalidDataError, match="column 'x' mixes numbers and text"):
        infer_schema(frame, "y")


def test_split_is_seeded_and_stratified_and_every_class_in_every_split() -> None:
    a = split_table(messy_frame(), target="label", seed=3)
    b = split_table(messy_frame(), target="label", seed=3)
    c = split_table(messy_frame(), target="label", seed=4)
    assert all(a.frames[s]["id"].tolist() == b.frames[s]["id"].tolist() for s in a.frames)
    assert a.frames["test"]["id"].tolist() != c.frames["test"]["id"].tolist()
    assert {k: len(v) for k, v in a.frames.items()} == {"train": 64, "validation": 8, "test": 18}
    for labels in a.labels.values():
        assert set(labels) == {0, 1, 2}
    assert a.state["class_names"] == ["cat", "dog", "emu"]


def test_a_class_too_rare_for_every_split_is_named() -> None:
    frame = messy_frame()
    frame.loc[:1, "label"] = "yak"  # two rows: cannot be in train, validation and test
    with pytest.raises(InvalidDataError, match="class 'yak' has 2 row"):
        split_table(frame, target="label")


def test_statistics_come_from_the_training_rows_only() -> None:
    """Validation and test rows get extreme numbers and a category of their own: none
    of it may reach the median, the mean, the variance or the vocabulary."""
    clean = split_table(messy_frame(), target="label", seed=5)
    held_out = set(clean.frames["validation"]["id"]) | set(clean.frames["test"]["id"])
    frame = messy_frame()
    rows = frame["id"].isin(held_out)
    frame.loc[rows, "age"] = 1e6
    frame.loc[rows, "income"] = None
    frame.loc[rows, "color"] = "leaked"
    parts = split_table(frame, target="label", seed=5)
    assert set(parts.frames["train"]["id"]) == set(clean.frames["train"]["id"])
    columns = {c["name"]: c for c in parts.state["columns"]}
    train_age = pd.to_numeric(parts.frames["train"]["age"], errors="coerce")
    median = train_age.median()
    filled = train_age.fillna(median).to_numpy(np.float64)
    assert columns["age"]["median"] == pytest.approx(median)
    assert columns["age"]["mean"] == pytest.approx(filled.mean())
    assert columns["age"]["variance"] == pytest.approx(filled.var())
    assert "leaked" not in columns["color"]["vocabulary"]
    assert columns == {c["name"]: c for c in clean.state["columns"]}


def _sklearn_encoding(train: pd.DataFrame, other: pd.DataFrame) -> np.ndarray:
    """The encoding written with scikit-learn, independently: median imputation and a
    missing indicator then standardization for numbers; a constant "[missing]" and a
    sorted one-hot for categories, with an out-of-vocabulary column in front."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def prepared(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=frame.index)
        for column in ("age", "income"):
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        for column in ("color", "member", "stars"):
            def spelled(value: object) -> object:
                if value is None or pd.isna(value) or str(value).strip() in (
                        "", "NA", "?", "NaN", "None"):
                    return np.nan
                text = str(value).lower()
                return str(int(float(text))) if text.replace(".", "").isdigit() else text

            out[column] = [spelled(v) for v in frame[column].tolist()]
        return out

    order = (("age", "numeric"), ("color", "categorical"), ("member", "categorical"),
             ("stars", "categorical"), ("income", "numeric"))  # the table's column order
    parts = []
    for column, kind in order:
        if kind == "numeric":
            parts.append((f"{column}-value", make_pipeline(SimpleImputer(strategy="median"),
                                                           StandardScaler()), [column]))
            parts.append((f"{column}-missing", MissingIndicator(features="all"), [column]))
        else:
            parts.append((column, make_pipeline(
                SimpleImputer(strategy="constant", fill_value=MISSING),
                OneHotEncoder(handle_unknown="ignore", sparse_output=False)), [column]))
    transformer = ColumnTransformer(parts).fit(prepared(train))
    encoded = transformer.transform(prepared(other))
    # kerasdnn's order: value, indicator per number; [OOV] first, then the sorted one-hot
    blocks, start = [], 0
    for column, kind in order:
        if kind == "numeric":
            blocks.append(encoded[:, start:start + 2])
            start += 2
            continue
        width = len(transformer.named_transformers_[column][-1].categories_[0])
        one_hot = encoded[:, start:start + width]
        blocks.append(np.column_stack([1 - one_hot.sum(axis=1), one_hot]))
        start += width
    return np.column_stack(blocks)


def test_encoding_matches_an_independent_scikit_learn_column_transformer() -> None:
    frame = messy_frame()
    parts = split_table(frame, target="label", seed=2)
    test = parts.frames["test"].copy()
    test.loc[0, "color"] = "violet"  # unseen in training: the OOV column
    test.loc[1, "stars"] = 9
    ours = encode(test, parts.state)
    reference = _sklearn_encoding(parts.frames["train"], test)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert ours[0, 2] == 1.0  # color=[OOV]


def test_load_streams_the_encoded_rows_and_names_the_classes(messy_csv: Path) -> None:
    splits = pipelines.load(f"csv:{messy_csv}", target="label", batch_size=None)
    parts = split_table(f"csv:{messy_csv}", target="label")
    x = np.stack([x for x, _ in splits.test.as_numpy_iterator()])
    np.testing.assert_array_equal(x, encode(parts.frames["test"], parts.state))
    assert splits.info.class_names == ["cat", "dog", "emu"]
    assert splits.info.input_shape == (parts.state["width"],)
    assert "id (id-like" in splits.info.note and "when (date-like)" in splits.info.note


def test_saved_preprocessing_is_reused_not_refit(messy_csv: Path, monkeypatch) -> None:
    state = split_table(f"csv:{messy_csv}", target="label").state

    def refit(*args, **kwargs):
        raise AssertionError("refit")

    monkeypatch.setattr("pipelines.tables.load.fit_preprocessing", refit)
    splits = pipelines.load(f"csv:{messy_csv}", target="label", preprocessing=state)
    assert splits.info.table == state


@pytest.mark.parametrize("kwargs, error, words", [
    ({}, InvalidArgumentError, "name its label column with --target COLUMN"),
    ({"target": "labels"}, InvalidArgumentError, "its columns: id, age"),
    ({"target": "label", "drop": ("nope",)}, InvalidArgumentError, "--drop names column(s)"),
    ({"target": "label", "features": {"age": "text"}}, InvalidArgumentError, "has kind 'text'"),
    ({"target": "label", "test_split": 1.5}, InvalidArgumentError, "test_split"),
])
def test_bad_table_arguments(kwargs, error, words) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        split_table(messy_frame(), **{"target": None, **kwargs})


def test_table_arguments_for_another_source_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="is for a table"):
        pipelines.load("digits", target="label")


@pytest.mark.parametrize("content, words", [
    (b"a,b,label\n", "has a header but no rows"),
    (b"", "is empty"),
    (b"a,label\n1,x\n2,y\n3,\xff\xfe\n", "is not UTF-8"),
    (b"a,b,label\n1,2,x\n3,4,y\n5,6", "is truncated"),
    (b'a,label\n1,"x\n2,y\n', "not a well-formed CSV"),
])
def test_bad_csv_files(tmp_path: Path, content: bytes, words: str) -> None:
    (tmp_path / "t.csv").write_bytes(content)
    with pytest.raises((DataFormatError, InvalidDataError), match=words):
        read_table(f"csv:{tmp_path / 't.csv'}")


def test_one_class_target_and_a_regression_target_are_refused() -> None:
    frame = pd.DataFrame({"x": np.arange(30.0), "y": ["a"] * 30, "z": np.linspace(0, 1, 30)})
    with pytest.raises(InvalidDataError, match="only one class"):
        split_table(frame, target="y")
    with pytest.raises(InvalidDataError, match="regression target"):
        split_table(frame, target="z")


def test_boolean_spellings_are_one_value_in_the_data_and_in_the_graph() -> None:
    from pipelines.tables.encode import Preprocessor
    from pipelines.tf_setup import tf

    state = split_table(messy_frame(), target="label").state
    member = next(c for c in state["columns"] if c["name"] == "member")
    assert member["vocabulary"] == ["[missing]", "false", "true"]
    only = {"columns": [member]}
    rows = encode(pd.DataFrame({"member": [True, "TRUE", "true", "False"]}), only)
    assert rows.tolist() == [[0, 0, 0, 1]] * 3 + [[0, 0, 1, 0]]
    graph = Preprocessor(only)({"member": tf.constant(["True", "FALSE", "NA"])}).numpy()
    assert graph.tolist() == [[0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]]


def test_a_separate_test_table_is_the_test_split(tmp_path: Path) -> None:
    frame = messy_frame(rows=120, seed=6)
    frame.iloc[:90].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[90:].to_csv(tmp_path / "test.csv", index=False)
    parts = split_table(f"csv:{tmp_path / 'train.csv'}", target="label",
                        test_data=f"csv:{tmp_path / 'test.csv'}")
    assert {k: len(v) for k, v in parts.frames.items()} == {"train": 81, "validation": 9,
                                                            "test": 30}
    assert parts.frames["test"]["id"].tolist() == list(range(90, 120))
    assert set(parts.frames["train"]["id"]) | set(parts.frames["validation"]["id"]) == set(
        range(90))
    other = frame.iloc[90:].copy()
    other.loc[other.index[0], "label"] = "yak"
    other.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(InvalidDataError, match="'yak' that are not among the classes"):
        split_table(f"csv:{tmp_path / 'train.csv'}", target="label",
                    test_data=f"csv:{tmp_path / 'other.csv'}")


def _spread(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return float(np.std(present)) if len(present) >= 2 else 0.0


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.none(), st.floats(-1e3, 1e3).map(lambda v: round(v, 2))),
                min_size=3, max_size=40).filter(lambda values: _spread(values) >= 1.0))
def test_a_numeric_column_is_imputed_by_its_median_and_standardized(values) -> None:
    """Any numbers with holes: the encoding is the float64 NumPy formula, plus the
    indicator of the holes."""
    from pipelines.tables.schema import Column

    frame = pd.DataFrame({"x": pd.array(values, dtype="Float64")})
    state = fit_preprocessing(frame, [Column("x", "numeric", "float")])
    numbers = np.array([np.nan if v is None else v for v in values], np.float64)
    filled = np.where(np.isnan(numbers), np.nanmedian(numbers), numbers)
    expected = (filled - filled.mean()) / filled.std()  # float32 inside: within 1e-3
    encoded = encode(frame, state)
    np.testing.assert_allclose(encoded[:, 0], expected, rtol=0, atol=1e-3)
    if np.isnan(numbers).any():
        np.testing.assert_array_equal(encoded[:, 1], np.isnan(numbers))
