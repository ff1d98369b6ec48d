"""Reports as text: the terminal results table and ``report.md``.

Example:
    >>> from kerasdnn.evaluation.reports.metrics import classification_report
    >>> print(format_table(classification_report([0, 1], [0.2, 0.7])).splitlines()[2])
    accuracy                              1.0000
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_table", "summary_rows", "threshold_rows", "to_markdown"]

_MISSING = "n/a"


def summary_rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(metric, formatted value), ...]``: the headline numbers of a report.

    Example:
        >>> from kerasdnn.evaluation.reports.metrics import classification_report
        >>> summary_rows(classification_report([0, 1], [0.2, 0.7]))[0]
        ('accuracy', '1.0000')
    """
    auc = report["roc_auc"]
    rows = [
        ("accuracy", _number(report["accuracy"])),
        ("F1 macro", _number(report["f1_macro"])),
        ("F1 weighted", _number(report["f1_weighted"])),
    ]
    binary = report.get("binary")
    if binary:
        rows += [
            ("ROC AUC", _number(binary["auc"])),
            (f"F1 at {binary['threshold']:g} ({binary['positive_class']})", _number(binary["f1"])),
            ("ROC AUC micro (one-vs-rest)", _number(auc["ovr_micro"])),
        ]
    else:
        rows += [
            ("ROC AUC macro (one-vs-rest)", _number(auc["ovr_macro"])),
            ("ROC AUC micro (one-vs-rest)", _number(auc["ovr_micro"])),
            ("ROC AUC weighted (one-vs-rest)", _number(auc["ovr_weighted"])),
            ("ROC AUC macro (one-vs-one)", _number(auc["ovo_macro"])),
        ]
    ap = report["average_precision"]
    rows += [
        ("average precision macro", _number(ap["macro"])),
        ("average precision micro", _number(ap["micro"])),
        ("Brier score", _number(report["brier"])),
        ("log loss", _number(report["log_loss"])),
        (f"expected calibration error ({report['calibration_bins']} bins)",
         _number(report["ece"])),
    ]
    rows.append(("examples", str(report["num_examples"])))
    return rows


def threshold_rows(report: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, ...]]] | None:
    """``(header, rows)`` of the binary threshold table: the test scores at 0.5
    and at the thresholds chosen on the validation split; None when there are none.

    Example:
        >>> threshold_rows({"binary": None}) is None
        True
    """
    tuned = (report.get("binary") or {}).get("tuned")
    if not tuned or tuned.get("chosen_on") is None:
        return None
    test = tuned["test"]
    header = [
        "test metric",
        f"at {test['default']['threshold']:g}",
        f"max F1 on validation (t = {test['max_f1']['threshold']:.4f})",
        f"Youden's J on validation (t = {test['youden_j']['threshold']:.4f})",
    ]
    rows = [
        (metric, *(_number(test[rule][metric]) for rule in ("default", "max_f1", "youden_j")))
        for metric in ("accuracy", "precision", "recall", "f1")
    ]
    return header, rows


def format_table(report: Mapping[str, Any]) -> str:
    """A plain-text results table for the terminal: the headline metrics, then
    precision, recall, F1, support and AUC per class.

    Example:
        >>> from kerasdnn.evaluation.reports.metrics import classification_report
        >>> "precision" in format_table(classification_report([0, 1], [0.2, 0.7]))
        True
    """
    summary = _text_table(("metric", "value"), summary_rows(report))
    per_class = _text_table(
        ("class", "precision", "recall", "F1", "support", "ROC AUC", "AP"),
        _class_rows(report),
    )
    lines = [summary, "", per_class]
    thresholds = threshold_rows(report)
    if thresholds:
        lines += ["", _text_table(*thresholds)]
    for key, reason in _undefined(report).items():
        lines.append(f"note: {key} is undefined: {reason}")
    return "\n".join(lines)


def to_markdown(
    report: Mapping[str, Any],
    *,
    title: str | None = None,
    images: Mapping[str, str] | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
) -> str:
    """``report.md``: summary, per-class table, confusion matrix, figure links.

    ``images`` maps a caption to a file name beside the Markdown file.

    Example:
        >>> from kerasdnn.evaluation.reports.metrics import classification_report
        >>> text = to_markdown(classification_report([0, 1], [0.2, 0.7]), title="Demo")
        >>> text.splitlines()[0]
        '# Demo'
    """
    names = list(report["class_names"])
    out = [f"# {title or 'Classification report'}", ""]
    sampled = report.get("scored_from")
    of_split = (f" (a uniform random sample of the split's {sampled:,} rows)"
                if sampled else "")
    out += [
        f"{report['num_examples']} examples{of_split}, {report['num_classes']} classes "
        f"({report['task']}). Predicted class: the most probable one.",
        "",
        "## Summary",
        "",
        _markdown_table(("metric", "value"), summary_rows(report)),
        "",
        "## Per class",
        "",
        _markdown_table(
            ("class", "precision", "recall", "F1", "support", "ROC AUC (one-vs-rest)",
             "average precision"),
            _class_rows(report),
        ),
        "",
    ]
    thresholds = threshold_rows(report)
    if thresholds:
        out += ["## Decision threshold", "",
                "Chosen on the validation split; the positive class is predicted when "
                "P(positive) >= t (at 0.5: P(positive) > 0.5).", "",
                _markdown_table(*thresholds), ""]
    tuned = (report.get("binary") or {}).get("tuned")
    if tuned and tuned.get("chosen_on") is None:
        out += [f"No decision threshold chosen: {tuned['reason']}.", ""]
    undefined = _undefined(report)
    if undefined:
        out += [f"- `{key}` is undefined: {reason}" for key, reason in undefined.items()]
        out.append("")
    out += [
        "## Confusion matrix",
        "",
        "Rows: true class; columns: predicted class. Counts, then each row as a fraction "
        "of its true class.",
        "",
        _markdown_table(
            ("true \\ predicted", *names),
            [(name, *map(str, row)) for name, row in zip(names, report["confusion_matrix"],
                                                        strict=True)],
        ),
        "",
        _markdown_table(
            ("true \\ predicted", *names),
            [(name, *(f"{value:.3f}" for value in row))
             for name, row in zip(names, report["confusion_matrix_normalized"], strict=True)],
        ),
        "",
    ]
    if history:
        out += ["## Training history", "", _history_table(history), ""]
    if images:
        out += ["## Figures", ""]
        for caption, file_name in images.items():
            out += [f"### {caption}", "", f"[![{caption}]({file_name})]({file_name})", ""]
    return "\n".join(out).rstrip() + "\n"


def _undefined(report: Mapping[str, Any]) -> dict[str, str]:
    ap = {f"average_precision.{key}": reason
          for key, reason in report["average_precision"]["undefined"].items()}
    return {**(report.get("roc_auc_undefined") or {}), **ap}


def _class_rows(report: Mapping[str, Any]) -> list[tuple[str, ...]]:
    auc = report["roc_auc"]["per_class"]
    ap = report["average_precision"]["per_class"]
    rows = [
        (
            name,
            _number(row["precision"]),
            _number(row["recall"]),
            _number(row["f1-score"]),
            str(row["support"]),
            _number(auc.get(name)),
            _number(ap.get(name)),
        )
        for name, row in report["per_class"].items()
    ]
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        row = report[key]
        rows.append((label, _number(row["precision"]), _number(row["recall"]),
                     _number(row["f1-score"]), str(row["support"]), "", ""))
    return rows


def _history_table(history: Mapping[str, Sequence[float]]) -> str:
    keys = list(history)
    epochs = max(len(history[key]) for key in keys)
    rows = []
    for epoch in range(epochs):
        rows.append((
            str(epoch + 1),
            *(_number(history[key][epoch]) if epoch < len(history[key]) else ""
              for key in keys),
        ))
    return _markdown_table(("epoch", *keys), rows)


def _number(value: Any) -> str:
    return _MISSING if value is None else f"{float(value):.4f}"


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for index, row in enumerate([header, *rows]):
        cells = [
            str(cell).ljust(width) if column == 0 else str(cell).rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join([line(header), "| " + " | ".join(align) + " |", *map(line, rows)])
