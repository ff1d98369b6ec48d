"""The reports' probability numbers (average precision, Brier score, log loss,
expected calibration error, the binary threshold chosen on validation) and their
pictures, against scikit-learn, plain NumPy and brute force computed here."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

from kerasdnn.evaluation.reports import (
    ReportInputError,
    classification_report,
    format_table,
    write_report,
)
from kerasdnn.evaluation.reports.gallery import misclassified_figure, most_confidently_wrong

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env


def _probabilities(rng: np.random.Generator, y: np.ndarray, k: int, signal: float) -> np.ndarray:
    logits = rng.normal(size=(len(y), k))
    logits[np.arange(len(y)), y] += signal
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    y = rng.integers(0, 6, size=500)
    return y, _probabilities(rng, y, 6, 1.2)


@pytest.fixture(scope="module")
def binary() -> dict[str, np.ndarray]:
    """Validation and test splits of a binary task whose best threshold is not 0.5."""
    rng = np.random.default_rng(5)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = (rng.uniform(size=n) < 0.3).astype(np.int64)
        p = np.clip(0.25 * y + 0.55 * rng.uniform(size=n), 0, 1)
        return y, p

    (y_val, p_val), (y_test, p_test) = split(300), split(400)
    return {"y_val": y_val, "p_val": p_val, "y_test": y_test, "p_test": p_test}


def _renormalized(prob: np.ndarray) -> np.ndarray:
    prob = prob.astype(np.float64)
    return prob / prob.sum(axis=1, keepdims=True)


def _numpy_ece(y: np.ndarray, prob: np.ndarray, bins: int) -> float:
    """ECE the textbook way: bins (lo, hi] of the top-class confidence."""
    confidence, predicted = prob.max(axis=1), prob.argmax(axis=1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            gap = np.mean(predicted[inside] == y[inside]) - np.mean(confidence[inside])
            total += inside.sum() / len(y) * abs(gap)
    return total


# --- average precision and calibration ----------------------------------------------------


def test_average_precision_matches_scikit_learn(multiclass) -> None:
    y, prob = multiclass
    report = classification_report(y, prob)
    prob64 = _renormalized(prob)
    ap = report["average_precision"]
    per_class = [metrics.average_precision_score(y == c, prob64[:, c]) for c in range(6)]
    for c in range(6):
        assert ap["per_class"][str(c)] == pytest.approx(per_class[c])
    assert ap["macro"] == pytest.approx(np.mean(per_class))
    assert ap["micro"] == pytest.approx(
        metrics.average_precision_score(np.eye(6)[y].ravel(), prob64.ravel()))
    assert ap["undefined"] == {}
    assert 0.3 < ap["macro"] < 1.0  # neither trivial nor random


def test_calibration_scores_match_scikit_learn_and_numpy(multiclass) -> None:
    y, prob = multiclass
    report = classification_report(y, prob)
    prob64 = _renormalized(prob)
    squared = np.sum((prob64 - np.eye(6)[y]) ** 2, axis=1).mean()
    assert report["brier"] == pytest.approx(metrics.brier_score_loss(y, prob64, labels=range(6)))
    assert report["brier"] == pytest.approx(squared)  # the probability vector's squared error
    assert report["log_loss"] == pytest.approx(metrics.log_loss(y, prob64, labels=range(6)))
    assert report["log_loss"] == pytest.approx(-np.mean(np.log(prob64[np.arange(len(y)), y])))
    assert report["calibration_bins"] == 10
    assert report["ece"] == pytest.approx(_numpy_ece(y, prob64, 10))
    assert report["ece"] > 0.01


def test_binary_brier_is_the_positive_probability_error(binary) -> None:
    y, p = binary["y_test"], binary["p_test"]
    report = classification_report(y, p)
    assert report["brier"] == pytest.approx(metrics.brier_score_loss(y, p))
    assert report["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert report["log_loss"] == pytest.approx(metrics.log_loss(y, p))
    assert report["ece"] == pytest.approx(_numpy_ece(y, np.stack([1 - p, p], axis=1), 10))


def test_perfect_and_absent_class_cases() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    perfect = classification_report(y, np.eye(3)[y])
    assert perfect["average_precision"]["macro"] == 1.0 and perfect["ece"] == 0.0
    assert perfect["brier"] == 0.0
    absent = classification_report(np.array([0, 1, 0, 1]), np.full((4, 3), 1 / 3),
                                   class_names=["a", "b", "c"])
    ap = absent["average_precision"]
    assert ap["per_class"]["c"] is None and ap["macro"] is None
    assert set(ap["undefined"]) == {"per_class.c", "macro"}
    assert "average_precision.macro is undefined" in format_table(absent)
    json.dumps(absent, allow_nan=False)


# --- binary threshold ---------------------------------------------------------------------------


def _brute_force(y: np.ndarray, p: np.ndarray, score) -> float:
    return max(score(y, p, t) for t in np.unique(p))


def _f1_at(y: np.ndarray, p: np.ndarray, t: float) -> float:
    predicted = p >= t
    true_positives = np.sum(predicted & (y == 1))
    return 2 * true_positives / (predicted.sum() + (y == 1).sum())


def _youden_at(y: np.ndarray, p: np.ndarray, t: float) -> float:
    predicted = p >= t
    return predicted[y == 1].mean() - predicted[y == 0].mean()


def test_threshold_is_the_brute_force_best_on_validation(binary) -> None:
    y_val, p_val = binary["y_val"], binary["p_val"]
    y_test, p_test = binary["y_test"], binary["p_test"]
    tuned = classification_report(y_test, p_test, validation=(y_val, p_val))["binary"]["tuned"]
    assert tuned["chosen_on"] == "validation"

    best_f1 = _brute_force(y_val, p_val, _f1_at)
    assert tuned["max_f1"]["validation_f1"] == pytest.approx(best_f1)
    assert _f1_at(y_val, p_val, tuned["max_f1"]["threshold"]) == pytest.approx(best_f1)
    best_j = _brute_force(y_val, p_val, _youden_at)
    assert tuned["youden_j"]["validation_j"] == pytest.approx(best_j)
    assert _youden_at(y_val, p_val, tuned["youden_j"]["threshold"]) == pytest.approx(best_j)
    assert tuned["max_f1"]["threshold"] < 0.5  # the case needs a threshold other than 0.5

    test = tuned["test"]
    default = (p_test > 0.5).astype(int)
    assert test["default"]["f1"] == pytest.approx(metrics.f1_score(y_test, default))
    assert test["default"]["accuracy"] == pytest.approx(metrics.accuracy_score(y_test, default))
    for rule in ("max_f1", "youden_j"):
        predicted = (p_test >= tuned[rule]["threshold"]).astype(int)
        assert test[rule]["threshold"] == tuned[rule]["threshold"]
        assert test[rule]["f1"] == pytest.approx(metrics.f1_score(y_test, predicted))
        assert test[rule]["precision"] == pytest.approx(metrics.precision_score(y_test, predicted))
        assert test[rule]["recall"] == pytest.approx(metrics.recall_score(y_test, predicted))
        assert test[rule]["accuracy"] == pytest.approx(metrics.accuracy_score(y_test, predicted))
    assert test["max_f1"]["f1"] > test["default"]["f1"]


def test_threshold_needs_validation_with_both_classes(binary) -> None:
    y, p = binary["y_test"], binary["p_test"]
    assert classification_report(y, p)["binary"]["tuned"] is None
    single = classification_report(y, p, validation=(np.zeros(5, int), np.full(5, 0.2)))
    assert single["binary"]["tuned"]["chosen_on"] is None
    assert "single class" in single["binary"]["tuned"]["reason"]
    with pytest.raises(ReportInputError):
        classification_report(y, p, validation=(np.array([0, 2]), np.eye(3)[[0, 2]]))


# --- gallery and files --------------------------------------------------------------------------


def test_most_confidently_wrong_is_sorted_by_confidence(multiclass) -> None:
    y, prob = multiclass
    chosen = most_confidently_wrong(y, prob, limit=10)
    predicted = prob.argmax(axis=1)
    wrong = [i for i in range(len(y)) if predicted[i] != y[i]]
    expected = sorted(wrong, key=lambda i: (-float(prob[i].astype(np.float64).max()
                                                    / prob[i].astype(np.float64).sum()), i))
    assert chosen.tolist() == expected[:10]


def test_gallery_refuses_images_that_do_not_match(multiclass) -> None:
    y, prob = multiclass
    with pytest.raises(ReportInputError, match="images must be"):
        misclassified_figure(np.zeros((3, 8, 8)), y, prob)
    with pytest.raises(ReportInputError, match="images must be"):
        misclassified_figure(np.zeros((len(y), 64)), y, prob)


def test_write_report_shows_every_picture(tmp_path: Path, binary) -> None:
    y, p = binary["y_test"], binary["p_test"]
    images = np.random.default_rng(0).uniform(size=(len(y), 6, 6, 3))
    report = write_report(tmp_path, y, p, class_names=["no", "yes"], images=images,
                          validation=(binary["y_val"], binary["p_val"]),
                          history={"loss": [0.7, 0.6]})
    pictures = sorted(path.name for path in tmp_path.glob("*.png"))
    assert pictures == ["calibration.png", "confusion_matrix.png", "history.png",
                        "misclassified.png", "pr.png", "roc.png"]
    markdown = (tmp_path / "report.md").read_text()
    for picture in pictures:
        assert f"({picture})" in markdown
        assert picture in report["files"]
    test = report["binary"]["tuned"]["test"]
    assert "## Decision threshold" in markdown
    assert f"| f1 | {test['default']['f1']:.4f} | {test['max_f1']['f1']:.4f} |" in markdown
    assert f"{report['average_precision']['macro']:.4f}" in markdown
    assert f"| Brier score | {report['brier']:.4f} |" in markdown
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["binary"]["tuned"] == json.loads(json.dumps(report["binary"]["tuned"]))
