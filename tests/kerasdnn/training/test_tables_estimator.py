"""DNNClassifier on a DataFrame with text and missing values: the table cleaning is
fitted in ``fit`` (on the rows given there only) and reused by ``predict``."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from tests.pipelines.test_tables import messy_frame


@pytest.fixture(scope="module")
def fitted():
    from kerasdnn import DNNClassifier

    frame = messy_frame(rows=120, seed=4)
    X, y = frame.drop(columns=["label", "id", "when"]), frame["label"]
    clf = DNNClassifier(hidden_units=(8,), epochs=3, batch_size=32, random_state=0)
    return clf.fit(X.iloc[:90], y.iloc[:90]), X, y


def test_fit_cleans_a_dataframe_with_text_and_missing_values(fitted) -> None:
    clf, X, _ = fitted
    assert clf.classes_.tolist() == ["cat", "dog", "emu"]
    kinds = {c["name"]: c["kind"] for c in clf.preprocessing_["schema"]}
    assert kinds == {"age": "numeric", "color": "categorical", "member": "categorical",
                     "stars": "categorical", "income": "numeric"}
    ages = X["age"].iloc[:90].replace({"": None, "NA": None, "?": None, "NaN": None})
    ages = ages.astype(float)
    column = clf.preprocessing_["columns"][0]
    assert column["median"] == pytest.approx(ages.median())  # the fit rows only


def test_predict_reuses_the_fitted_cleaning_on_unseen_values(fitted) -> None:
    from pipelines.tables.encode import encode

    clf, X, _ = fitted
    before = copy.deepcopy(clf.preprocessing_)
    rest = X.iloc[90:].copy()
    rest.iloc[0, rest.columns.get_loc("color")] = "violet"
    proba = clf.predict_proba(rest)
    assert clf.preprocessing_ == before
    logits = np.asarray(clf.model_.predict_on_batch(encode(rest, before)), np.float64)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    assert set(clf.predict(rest)) <= {"cat", "dog", "emu"}


def test_pickled_estimator_keeps_its_cleaning(fitted) -> None:
    clf, X, _ = fitted
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(again.predict_proba(X.iloc[90:]), clf.predict_proba(X.iloc[90:]),
                               atol=1e-6)
