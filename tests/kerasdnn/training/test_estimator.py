"""``kerasdnn.DNNClassifier`` against scikit-learn's own estimator checks and tools,
on the active backend (tox runs this file once per backend)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from kerasdnn.training.estimator import EXPECTED_FAILED_CHECKS, DNNClassifier


@parametrize_with_checks(
    [DNNClassifier()], expected_failed_checks=lambda _: EXPECTED_FAILED_CHECKS
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_at_most_two_expected_failures_each_with_its_reason():
    assert len(EXPECTED_FAILED_CHECKS) <= 2
    assert all(len(reason) > 40 for reason in EXPECTED_FAILED_CHECKS.values())


# Enough steps for iris's 100 training examples (the defaults suit quick fits).
IRIS_SETTINGS = dict(epochs=10, batch_size=16, learning_rate=0.05)


@pytest.fixture(scope="module")
def iris_strings():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    return X, names[y]


def test_grid_search_over_hidden_units_in_a_pipeline_with_string_labels(iris_strings):
    X, y = iris_strings
    search = GridSearchCV(
        make_pipeline(StandardScaler(), DNNClassifier(**IRIS_SETTINGS, random_state=0)),
        {"dnnclassifier__hidden_units": [(4,), (16, 8)]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    ).fit(X, y)
    assert search.best_params_["dnnclassifier__hidden_units"] in [(4,), (16, 8)]
    assert search.best_estimator_.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert set(search.predict(X)) <= set(y)
    # An independent reference: a linear model does about as well on iris.
    reference = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression()), X, y,
                                cv=StratifiedKFold(2, shuffle=True, random_state=0)).mean()
    assert search.best_score_ > reference - 0.1


def test_cross_val_score_with_labels_not_starting_at_zero(iris_strings):
    X, _ = iris_strings
    y = load_iris().target + 7
    scores = cross_val_score(
        make_pipeline(StandardScaler(), DNNClassifier(**IRIS_SETTINGS, random_state=1)), X, y,
        cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and scores.min() > 0.8


def test_two_classes_give_a_one_unit_head_and_two_probability_columns(iris_strings):
    X, y = iris_strings
    binary = y != "setosa"
    clf = DNNClassifier(epochs=5, random_state=0).fit(X[binary], y[binary])
    assert clf.model_.output_shape == (None, 1)
    proba = clf.predict_proba(X[binary])
    assert proba.shape == (binary.sum(), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    expected = clf.classes_[(proba[:, 1] > 0.5).astype(int)]
    np.testing.assert_array_equal(clf.predict(X[binary]), expected)


def test_same_random_state_same_predictions_other_state_other_model(iris_strings):
    X, y = iris_strings
    X = StandardScaler().fit_transform(X)
    settings = dict(hidden_units=(8,), epochs=3, batch_size=16, dropout=0.2,
                    validation_split=0.2, early_stopping=2)
    first = DNNClassifier(**settings, random_state=5).fit(X, y).predict_proba(X)
    again = DNNClassifier(**settings, random_state=5).fit(X, y).predict_proba(X)
    other = DNNClassifier(**settings, random_state=6).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_pickle_round_trips_the_keras_model_and_clone_keeps_the_settings(iris_strings):
    X, y = iris_strings
    clf = DNNClassifier(hidden_units=(8,), epochs=2, random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.history_ == clf.history_ and len(clf.history_["loss"]) == 2
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "model_")


def test_dataframe_columns_become_feature_names(iris_strings):
    pandas = pytest.importorskip("pandas")
    X, y = iris_strings
    frame = pandas.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = DNNClassifier(hidden_units=(4,), epochs=1, random_state=0).fit(frame, y)
    assert clf.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    assert clf.n_features_in_ == 4


def test_an_invalid_setting_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="activation must be one of"):
        DNNClassifier(activation="nope").fit([[0.0], [1.0]], [0, 1])


@pytest.mark.slow
def test_the_sklearn_pipeline_example_runs():
    from examples.sklearn_pipeline import main

    result = main(epochs=1, cv=2)
    assert result["test_accuracy"] > 0.7


_FIT_AND_PREDICT = """
import sys
import numpy as np
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from kerasdnn import DNNClassifier
X, y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)
clf = DNNClassifier(hidden_units=(8,), epochs=3, batch_size=16, random_state=3)
np.save(sys.argv[1], clf.fit(X, y).predict_proba(X))
"""


@pytest.mark.cross_backend
@pytest.mark.slow
def test_same_random_state_same_predictions_on_every_backend(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    probabilities = {}
    for backend in ("tensorflow", "jax", "torch"):
        out = tmp_path / f"{backend}.npy"
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO_ROOT)}
        done = subprocess.run([sys.executable, "-c", _FIT_AND_PREDICT, str(out)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        probabilities[backend] = np.load(out)
    # Same batches in the same order, same initial weights: float32 rounding apart, the
    # same model (a batch order that depended on the backend differs by ~1e-2 here).
    # No dropout: Keras draws its masks from each backend's own generator.
    for backend in ("jax", "torch"):
        np.testing.assert_allclose(probabilities[backend], probabilities["tensorflow"],
                                   rtol=0, atol=1e-5)
