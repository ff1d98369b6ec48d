"""Classification reports: scikit-learn computes, matplotlib draws (headless).

- :func:`classification_report` — labels and probabilities → a JSON-ready dict.
- :func:`write_report` — the same, written as ``report.json``, ``report.md``,
  ``roc.png``, ``confusion_matrix.png``, ``pr.png``, ``calibration.png`` (and
  ``history.png``, ``misclassified.png``), atomically.
- :func:`format_table` — the results table the command-line tools print.
- :func:`roc_figure`, :func:`confusion_matrix_figure`, :func:`pr_figure`,
  :func:`calibration_figure`, :func:`misclassified_figure`,
  :func:`history_figure` — the figures, for a notebook.

Example:
    >>> import numpy as np
    >>> from kerasdnn.evaluation.reports import classification_report, format_table
    >>> report = classification_report([0, 1, 2, 2], np.eye(3)[[0, 1, 2, 1]])
    >>> report["accuracy"]
    0.75
"""

from kerasdnn.evaluation.reports.gallery import misclassified_figure
from kerasdnn.evaluation.reports.markdown import format_table, summary_rows, to_markdown
from kerasdnn.evaluation.reports.metrics import (
    BINARY_THRESHOLD,
    ReportInputError,
    as_probabilities,
    classification_report,
)
from kerasdnn.evaluation.reports.plots import (
    calibration_figure,
    confusion_matrix_figure,
    history_figure,
    png_bytes,
    pr_figure,
    roc_figure,
)
from kerasdnn.evaluation.reports.writer import REPORT_FILES, write_report

__all__ = [
    "BINARY_THRESHOLD",
    "REPORT_FILES",
    "ReportInputError",
    "as_probabilities",
    "calibration_figure",
    "classification_report",
    "confusion_matrix_figure",
    "format_table",
    "history_figure",
    "misclassified_figure",
    "png_bytes",
    "pr_figure",
    "roc_figure",
    "summary_rows",
    "to_markdown",
    "write_report",
]
