"""kerasdnn.evaluation.reports against hand-made cases and scikit-learn computed here
independently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

from kerasdnn.core.errors import KerasDNNError
from kerasdnn.evaluation.reports import (
    ReportInputError,
    classification_report,
    format_table,
    write_report,
)

pytestmark = pytest.mark.backend_free  # conftest.py: runs in one env

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def ten_class() -> tuple[np.ndarray, np.ndarray]:
    """A noisy but informative 10-class classifier (float32, as a model gives)."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 10, size=400)
    logits = rng.normal(size=(400, 10))
    logits[np.arange(400), y] += 1.5
    return y, _softmax(logits).astype(np.float32)


@pytest.fixture(scope="module")
def binary_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=300)
    positive = np.clip(0.35 * y + 0.65 * rng.uniform(size=300), 0.0, 1.0)
    return y, positive


# --- hand-made cases with known values ---------------------------------------------------


@pytest.mark.parametrize("k", [2, 10])
def test_perfect_classifier_scores_one(k: int) -> None:
    y = np.tile(np.arange(k), 5)
    report = classification_report(y, np.eye(k)[y])
    assert report["accuracy"] == 1.0
    assert report["f1_macro"] == report["f1_weighted"] == 1.0
    for key in ("ovr_macro", "ovr_micro", "ovr_weighted", "ovo_macro"):
        assert report["roc_auc"][key] == 1.0, key
    assert all(value == 1.0 for value in report["roc_auc"]["per_class"].values())
    assert report["confusion_matrix"] == (5 * np.eye(k, dtype=int)).tolist()
    assert report["roc_auc_undefined"] == {}
    if k == 2:
        assert report["binary"]["auc"] == 1.0
        assert report["binary"]["f1"] == 1.0
    else:
        assert report["binary"] is None


@pytest.mark.parametrize("k", [2, 10])
def test_constant_classifier_has_auc_one_half(k: int) -> None:
    y = np.tile(np.arange(k), 4)
    constant = np.full((len(y), k), 1.0 / k)
    report = classification_report(y, constant)
    for key in ("ovr_macro", "ovr_micro", "ovr_weighted", "ovo_macro"):
        assert report["roc_auc"][key] == pytest.approx(0.5), key
    # Every row ties; argmax picks class 0 for all: accuracy 1/k.
    assert report["accuracy"] == pytest.approx(1.0 / k)
    if k == 2:
        assert report["binary"]["auc"] == pytest.approx(0.5)
        assert report["binary"]["roc_curve"]["fpr"] == [0.0, 1.0]
        assert report["binary"]["roc_curve"]["tpr"] == [0.0, 1.0]


def test_known_confusion_matrix_and_per_class_values() -> None:
    # true 0: 3 → predicted 0, 1 → predicted 1;  true 1: 2 → 1;  true 2: 1 → 0, 1 → 2.
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 1, 0, 2]
    report = classification_report(y_true, np.eye(3)[y_pred], class_names=["a", "b", "c"])
    assert report["confusion_matrix"] == [[3, 1, 0], [0, 2, 0], [1, 0, 1]]
    np.testing.assert_allclose(
        report["confusion_matrix_normalized"],
        [[0.75, 0.25, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]],
    )
    assert report["accuracy"] == pytest.approx(6 / 8)
    # Class a: precision 3/4, recall 3/4; b: 2/3, 1; c: 1, 1/2.
    expected = {"a": (3 / 4, 3 / 4, 4), "b": (2 / 3, 1.0, 2), "c": (1.0, 1 / 2, 2)}
    for name, (precision, recall, support) in expected.items():
        row = report["per_class"][name]
        assert row["precision"] == pytest.approx(precision)
        assert row["recall"] == pytest.approx(recall)
        assert row["f1-score"] == pytest.approx(2 * precision * recall / (precision + recall))
        assert row["support"] == support
    f1 = [2 * p * r / (p + r) for p, r, _ in expected.values()]
    assert report["f1_macro"] == pytest.approx(np.mean(f1))
    assert report["f1_weighted"] == pytest.approx(np.average(f1, weights=[4, 2, 2]))


# --- against scikit-learn ------------------------------------------------------------------


def test_ten_class_matches_scikit_learn(ten_class: tuple[np.ndarray, np.ndarray]) -> None:
    y, prob = ten_class
    names = [f"digit {i}" for i in range(10)]
    report = classification_report(y, prob, class_names=names)
    y_pred = prob.argmax(axis=1)
    prob64 = prob.astype(np.float64)
    prob64 /= prob64.sum(axis=1, keepdims=True)
    assert report["task"] == "multiclass"
    assert report["num_examples"] == 400 and report["num_classes"] == 10
    assert report["accuracy"] == pytest.approx(np.mean(y_pred == y))
    assert report["f1_macro"] == pytest.approx(metrics.f1_score(y, y_pred, average="macro"))
    assert report["f1_weighted"] == pytest.approx(metrics.f1_score(y, y_pred, average="weighted"))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(y, y_pred)
    for c, name in enumerate(names):
        row = report["per_class"][name]
        assert row["precision"] == pytest.approx(precision[c])
        assert row["recall"] == pytest.approx(recall[c])
        assert row["f1-score"] == pytest.approx(f1[c])
        assert row["support"] == support[c]
        assert report["roc_auc"]["per_class"][name] == pytest.approx(
            metrics.roc_auc_score(y == c, prob64[:, c])
        )
    auc = report["roc_auc"]
    for key, kwargs in {
        "ovr_macro": {"multi_class": "ovr", "average": "macro"},
        "ovr_micro": {"multi_class": "ovr", "average": "micro"},
        "ovr_weighted": {"multi_class": "ovr", "average": "weighted"},
        "ovo_macro": {"multi_class": "ovo", "average": "macro"},
    }.items():
        assert auc[key] == pytest.approx(metrics.roc_auc_score(y, prob64, **kwargs)), key
    np.testing.assert_array_equal(report["confusion_matrix"], metrics.confusion_matrix(y, y_pred))
    assert 0.5 < auc["ovr_macro"] < 1.0  # the case is neither trivial nor random


@pytest.mark.parametrize("layout", ["(n,)", "(n,1)", "(n,2)"])
def test_binary_layouts_match_scikit_learn(
    binary_case: tuple[np.ndarray, np.ndarray], layout: str
) -> None:
    y, positive = binary_case
    given = {
        "(n,)": positive,
        "(n,1)": positive[:, None],
        "(n,2)": np.stack([1 - positive, positive], axis=1),
    }[layout]
    report = classification_report(y, given, class_names=["neg", "pos"])
    y_pred = (positive > 0.5).astype(int)
    binary = report["binary"]
    assert report["task"] == "binary"
    assert binary["positive_class"] == "pos" and binary["threshold"] == 0.5
    assert binary["auc"] == pytest.approx(metrics.roc_auc_score(y, positive))
    assert binary["f1"] == pytest.approx(metrics.f1_score(y, y_pred))
    assert binary["precision"] == pytest.approx(metrics.precision_score(y, y_pred))
    assert binary["recall"] == pytest.approx(metrics.recall_score(y, y_pred))
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(y, y_pred))
    fpr, tpr, thresholds = metrics.roc_curve(y, positive)
    np.testing.assert_allclose(binary["roc_curve"]["fpr"], fpr)
    np.testing.assert_allclose(binary["roc_curve"]["tpr"], tpr)
    assert binary["roc_curve"]["thresholds"][0] is None  # +inf has no JSON form
    np.testing.assert_allclose(binary["roc_curve"]["thresholds"][1:], thresholds[1:])
    # With two classes every one-vs-rest / one-vs-one macro AUC is the binary AUC.
    for key in ("ovr_macro", "ovr_weighted", "ovo_macro"):
        assert report["roc_auc"][key] == pytest.approx(binary["auc"]), key
    assert report["roc_auc"]["ovr_micro"] == pytest.approx(
        metrics.roc_auc_score(np.eye(2)[y].ravel(), np.stack([1 - positive, positive], 1).ravel())
    )


# --- undefined AUCs and bad input --------------------------------------------------------------


def test_absent_class_gives_null_auc_with_reason_not_a_crash() -> None:
    y = np.array([0, 1, 0, 1, 0, 1])  # class 2 never occurs
    prob = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1],
                     [0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.3, 0.4, 0.3]])
    report = classification_report(y, prob, class_names=["a", "b", "c"])
    auc = report["roc_auc"]
    assert auc["per_class"]["c"] is None
    assert auc["ovr_macro"] is None
    assert auc["ovo_macro"] is None
    assert auc["per_class"]["a"] == pytest.approx(metrics.roc_auc_score(y == 0, prob[:, 0]))
    assert auc["ovr_micro"] == pytest.approx(
        metrics.roc_auc_score(np.eye(3)[y].ravel(), prob.ravel())
    )
    reasons = report["roc_auc_undefined"]
    assert {"per_class.c", "ovr_macro", "ovo_macro"} <= set(reasons)
    assert "c" in reasons["ovo_macro"] and "absent" in reasons["ovr_macro"]
    assert report["per_class"]["c"]["support"] == 0
    json.dumps(report, allow_nan=False)  # strict JSON: no NaN sneaks in
    assert "n/a" in format_table(report)


def test_single_class_binary_labels_have_no_auc() -> None:
    report = classification_report([1, 1, 1], [0.2, 0.9, 0.7])
    assert report["binary"]["auc"] is None and report["binary"]["roc_curve"] is None
    assert "binary.auc" in report["roc_auc_undefined"]
    json.dumps(report, allow_nan=False)


@pytest.mark.parametrize(
    ("y_true", "y_prob", "kwargs", "message"),
    [
        ([0, 1], [[0.5, 0.5]], {}, "rows"),
        ([[0, 1], [1, 0]], [[0.5, 0.5], [0.5, 0.5]], {}, "shape"),
        ([0, 3], [[0.5, 0.5], [0.5, 0.5]], {}, "label 3"),
        ([0, -1], [[0.5, 0.5], [0.5, 0.5]], {}, "negative"),
        ([0.5, 1], [[0.5, 0.5], [0.5, 0.5]], {}, "integer"),
        ([0, 1], [[2.0, -1.0], [0.5, 0.5]], {}, "[0, 1]"),
        ([0, 1], [[0.9, 0.9], [0.5, 0.5]], {}, "sum to 1"),
        ([0, 1], [[np.nan, 0.5], [0.5, 0.5]], {}, "NaN"),
        ([0, 1], np.zeros((2, 2, 2)), {}, "shape"),
        ([], np.zeros((0, 2)), {}, "empty"),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], {"class_names": ["x"]}, "class_names"),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], {"class_names": ["x", "x"]}, "distinct"),
        (["a", "b"], [[0.5, 0.5], [0.5, 0.5]], {}, "integer"),
    ],
)
def test_bad_input_is_a_one_line_user_error(y_true, y_prob, kwargs, message) -> None:
    with pytest.raises(ReportInputError) as caught:
        classification_report(y_true, y_prob, **kwargs)
    assert isinstance(caught.value, KerasDNNError)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# --- files ------------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    import matplotlib.image

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    image = matplotlib.image.imread(path)  # decodes the whole image: a valid PNG
    return image.shape[1], image.shape[0]


def test_write_report_writes_every_file(tmp_path: Path, ten_class) -> None:
    import matplotlib.pyplot as plt

    y, prob = ten_class
    history = {"loss": [1.2, 0.8, 0.5], "val_loss": [1.3, 0.9, 0.7],
               "accuracy": [0.6, 0.8, 0.9], "val_accuracy": [0.55, 0.75, 0.8]}
    figures_before = plt.get_fignums()
    out = tmp_path / "new" / "run"
    report = write_report(out, y, prob, history=history, title="Ten classes")
    assert plt.get_fignums() == figures_before  # no pyplot state leaks

    names = {"report.json", "report.md", "roc.png", "confusion_matrix.png", "history.png",
             "pr.png", "calibration.png"}
    assert {path.name for path in out.iterdir()} == names  # no temporary files left
    for png in ("roc.png", "confusion_matrix.png", "history.png", "pr.png", "calibration.png"):
        width, height = _png_size(out / png)
        assert width >= 400 and height >= 300
    saved = json.loads((out / "report.json").read_text(), parse_constant=_refuse_constant)
    assert saved == json.loads(json.dumps(report))
    assert saved["title"] == "Ten classes"
    assert saved["accuracy"] == pytest.approx(np.mean(prob.argmax(1) == y))

    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# Ten classes")
    for link in ("(roc.png)", "(confusion_matrix.png)", "(history.png)", "(pr.png)",
                 "(calibration.png)"):
        assert link in markdown
    assert f"| accuracy | {report['accuracy']:.4f} |" in markdown
    assert markdown.count("\n| 9 |") == 3  # per-class row and both confusion-matrix rows
    assert "| true \\ predicted |" in markdown


# --- the figures, checked by content (matplotlib's artists) ------------------------------------


def _legend(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _line(ax, label: str):
    (line,) = [line for line in ax.get_lines() if line.get_label() == label]
    return line


def test_pr_figure_has_a_curve_per_class_and_the_micro_average(ten_class) -> None:
    from kerasdnn.evaluation.reports.plots import pr_figure

    y, prob = ten_class
    names = [f"digit {c}" for c in range(10)]
    (ax,) = pr_figure(y, prob, class_names=names).axes
    onehot = np.eye(10)[y]
    expected = [f"{names[c]} vs rest (AP = "
                f"{metrics.average_precision_score(onehot[:, c], prob[:, c]):.2f})"
                for c in range(10)]
    micro = metrics.average_precision_score(onehot.ravel(), prob.ravel())
    expected.append(f"micro-average (AP = {micro:.2f})")
    assert _legend(ax) == expected
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Recall", "Precision")
    precision, recall, _ = metrics.precision_recall_curve(onehot.ravel(), prob.ravel(),
                                                          drop_intermediate=True)
    line = _line(ax, expected[-1])
    np.testing.assert_allclose(line.get_xdata(), recall)
    np.testing.assert_allclose(line.get_ydata(), precision)


def test_a_large_split_draws_thinned_curves_with_the_scores_of_every_row() -> None:
    from kerasdnn.evaluation.reports.plots import CURVE_COLUMNS, pr_figure, roc_figure

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 30_000)
    prob = rng.dirichlet(np.ones(3), size=len(y)) + 0.2 * np.eye(3)[y]
    prob /= prob.sum(axis=1, keepdims=True)
    onehot = np.eye(3)[y]
    roc_ax, = roc_figure(y, prob).axes
    pr_ax, = pr_figure(y, prob).axes
    roc_micro = metrics.roc_auc_score(onehot.ravel(), prob.ravel())
    pr_micro = metrics.average_precision_score(onehot.ravel(), prob.ravel())
    assert len(metrics.roc_curve(onehot.ravel(), prob.ravel())[0]) > 4 * CURVE_COLUMNS
    for ax, label in ((roc_ax, f"micro-average (AUC = {roc_micro:.2f})"),
                      (pr_ax, f"micro-average (AP = {pr_micro:.2f})")):
        line = _line(ax, label)
        assert 2 < len(line.get_xdata()) <= 4 * CURVE_COLUMNS


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=400),
       st.lists(st.floats(-5, 5), min_size=400, max_size=400), st.integers(1, 30),
       st.booleans())
def test_a_thinned_curve_keeps_its_ends_order_and_each_strips_extremes(
        xs: list[float], ys: list[float], columns: int, decreasing: bool) -> None:
    from kerasdnn.evaluation.reports.plots import thin_curve

    x = np.sort(np.array(xs))[::-1 if decreasing else 1]
    y = np.array(ys[:len(x)])
    thinned_x, thinned_y = thin_curve(x, y, columns=columns)
    assert len(thinned_x) <= max(len(x), 4 * (columns + 1))
    points = iter(zip(x, y, strict=True))  # the thinned points: a subsequence of the curve's
    assert all(point in points for point in zip(thinned_x, thinned_y, strict=True))
    assert (thinned_x[0], thinned_y[0], thinned_x[-1], thinned_y[-1]) == (x[0], y[0], x[-1],
                                                                         y[-1])
    strips, thinned_strips = np.floor(x * columns), np.floor(thinned_x * columns)
    for strip in np.unique(strips):
        assert y[strips == strip].min() == thinned_y[thinned_strips == strip].min()
        assert y[strips == strip].max() == thinned_y[thinned_strips == strip].max()


def test_pr_figure_binary_has_the_positive_class_and_chance(binary_case) -> None:
    from kerasdnn.evaluation.reports.plots import pr_figure

    y, positive = binary_case
    (ax,) = pr_figure(y, positive, class_names=["neg", "pos"]).axes
    ap = metrics.average_precision_score(y, positive)
    assert _legend(ax) == [f"pos (positive class) (AP = {ap:.2f})",
                           f"Chance level (AP = {y.mean():.2f})"]


def test_calibration_figure_is_scikit_learns_reliability_curve_and_histogram(ten_class) -> None:
    from sklearn.calibration import calibration_curve

    from kerasdnn.evaluation.reports.plots import calibration_figure

    y, prob = ten_class
    curve_ax, hist_ax = calibration_figure(y, prob, bins=10).axes
    correct = (prob.argmax(1) == y).astype(int)
    confidence = prob.max(1)
    frequency, mean_confidence = calibration_curve(correct, confidence, n_bins=10)
    line = _line(curve_ax, "top-class confidence")
    np.testing.assert_allclose(line.get_xdata(), mean_confidence, rtol=1e-6)
    np.testing.assert_allclose(line.get_ydata(), frequency)
    assert "Perfectly calibrated" in [ln.get_label() for ln in curve_ax.get_lines()]
    assert curve_ax.get_ylabel() == "Accuracy"
    counts, _ = np.histogram(confidence, bins=np.linspace(0.0, 1.0, 11))
    assert [patch.get_height() for patch in hist_ax.patches] == counts.tolist()
    assert hist_ax.get_ylabel() == "Examples"


def test_misclassified_figure_shows_the_most_confidently_wrong_images() -> None:
    from kerasdnn.evaluation.reports.gallery import misclassified_figure

    y = np.array([0, 1, 2, 0, 1])
    prob = np.array([[0.9, 0.05, 0.05],   # right
                     [0.7, 0.2, 0.1],     # wrong: predicted a (0.70)
                     [0.1, 0.3, 0.6],     # right
                     [0.05, 0.05, 0.9],   # wrong: predicted c (0.90), the most confident
                     [0.1, 0.6, 0.3]])    # right
    images = np.arange(5 * 4 * 4, dtype=np.float32).reshape(5, 4, 4)
    figure = misclassified_figure(images, y, prob, class_names=["a", "b", "c"])
    shown = [ax for ax in figure.axes if ax.get_images()]
    assert [ax.get_title() for ax in shown] == ["true a\npredicted c (0.90)",
                                                "true b\npredicted a (0.70)"]
    def scaled(image: np.ndarray) -> np.ndarray:  # what the colour map shows: min-max
        image = np.asarray(image, np.float64)
        return (image - image.min()) / np.ptp(image)

    for ax, index in zip(shown, [3, 1], strict=True):
        np.testing.assert_allclose(scaled(ax.get_images()[0].get_array()),
                                   scaled(images[index]), atol=1e-6)
    assert figure.get_suptitle() == "Most confidently wrong test images (2 shown)"


def test_the_written_pictures_are_those_figures(tmp_path: Path, monkeypatch, ten_class) -> None:
    """pr.png, calibration.png and misclassified.png hold the figures above: the renderer
    swapped for one that writes the figure's description."""
    from kerasdnn.evaluation.reports import plots

    def describe(figure, **kwargs) -> bytes:
        axes = [{"xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "title": ax.get_title(),
                 "legend": _legend(ax) if ax.get_legend() else [],
                 "images": len(ax.get_images())} for ax in figure.axes]
        return json.dumps({"suptitle": figure.get_suptitle(), "axes": axes}).encode()

    monkeypatch.setattr(plots, "png_bytes", describe)
    y, prob = ten_class
    images = np.random.default_rng(0).uniform(size=(len(y), 5, 5))
    write_report(tmp_path, y, prob, images=images)
    pr = json.loads((tmp_path / "pr.png").read_bytes())
    assert pr["axes"][0]["xlabel"] == "Recall" and len(pr["axes"][0]["legend"]) == 11
    calibration = json.loads((tmp_path / "calibration.png").read_bytes())
    assert [ax["ylabel"] for ax in calibration["axes"]] == ["Accuracy", "Examples"]
    assert calibration["axes"][0]["title"] == "Reliability diagram"
    gallery = json.loads((tmp_path / "misclassified.png").read_bytes())
    wrong = int(np.sum(prob.argmax(1) != y))
    assert sum(ax["images"] for ax in gallery["axes"]) == min(wrong, 25)
    assert gallery["suptitle"] == f"Most confidently wrong test images ({min(wrong, 25)} shown)"


def test_write_report_binary_without_history(tmp_path: Path, binary_case) -> None:
    y, positive = binary_case
    report = write_report(tmp_path, y, positive, class_names=["neg", "pos"])
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "calibration.png", "confusion_matrix.png", "pr.png", "report.json", "report.md",
        "roc.png"]
    assert report["binary"]["auc"] == pytest.approx(metrics.roc_auc_score(y, positive))
    assert _png_size(tmp_path / "roc.png")[0] >= 400


def test_failure_while_rendering_writes_nothing(tmp_path: Path, monkeypatch, ten_class) -> None:
    from kerasdnn.evaluation.reports import plots

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while drawing")

    monkeypatch.setattr(plots, "history_figure", broken)
    y, prob = ten_class
    with pytest.raises(RuntimeError):
        write_report(tmp_path / "out", y, prob, history={"loss": [1.0]})
    assert not (tmp_path / "out").exists()


def test_failure_mid_write_leaves_no_partial_report_json(
    tmp_path: Path, monkeypatch, ten_class
) -> None:
    import kerasdnn.core.io

    y, prob = ten_class
    (tmp_path / "report.json").write_text('{"old": true}\n')
    real_fsync = kerasdnn.core.io.os.fsync
    calls = []

    def fsync_then_crash(fd: int) -> None:
        real_fsync(fd)
        written = Path(f"/proc/self/fd/{fd}").resolve().name
        calls.append(written)
        if ".report." in written and written.endswith(".json"):
            raise OSError("simulated crash while writing report.json")

    monkeypatch.setattr(kerasdnn.core.io.os, "fsync", fsync_then_crash)
    with pytest.raises(OSError, match="simulated crash"):
        write_report(tmp_path, y, prob)
    assert any(name.endswith(".json") for name in calls)  # the crash hit report.json
    assert (tmp_path / "report.json").read_text() == '{"old": true}\n'  # old report intact
    leftovers = [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert leftovers == []


def test_format_table_lists_headline_and_per_class_numbers(ten_class) -> None:
    y, prob = ten_class
    report = classification_report(y, prob)
    table = format_table(report)
    assert f"{report['accuracy']:.4f}" in table
    assert f"{report['roc_auc']['ovo_macro']:.4f}" in table
    lines = table.splitlines()
    assert sum(line.split()[0] in {str(c) for c in range(10)} for line in lines if line) == 10
    assert "\x1b" not in table  # plain text, no terminal escapes


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"report.json holds {name}, which is not JSON")
