"""Write a report's files into a folder, all of them atomically
(:func:`write_report`, whose example writes them)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kerasdnn.core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from kerasdnn.core.rundir import (
    CALIBRATION_PNG,
    CONFUSION_PNG,
    HISTORY_PNG,
    MISCLASSIFIED_PNG,
    PR_PNG,
    REPORT_FILES,
    REPORT_JSON,
    REPORT_MD,
    ROC_PNG,
)
from kerasdnn.evaluation.reports import gallery, plots
from kerasdnn.evaluation.reports.markdown import to_markdown
from kerasdnn.evaluation.reports.metrics import classification_report

__all__ = ["REPORT_FILES", "write_report"]


def write_report(
    out_dir: str | os.PathLike[str],
    y_true: Any,
    y_prob: Any,
    *,
    class_names: Sequence[str] | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
    title: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    validation: tuple[Any, Any] | None = None,
    images: Any = None,
    scored_from: int | None = None,
) -> dict[str, Any]:
    """Score ``y_prob`` against ``y_true`` and write the report files into ``out_dir``.

    Writes ``report.json`` (the :func:`classification_report` dict, plus
    ``title``, ``metadata`` and the ``files`` written), ``report.md``,
    ``roc.png``, ``confusion_matrix.png``, ``pr.png``, ``calibration.png``;
    ``history.png`` when ``history`` (a Keras ``History.history`` dict) is
    given; ``misclassified.png`` when ``images`` (the test images in the order
    of ``y_true``, ``(n, h, w[, c])``) are.  ``validation`` (``(y_true,
    y_prob)`` of the validation split) chooses a binary task's threshold.  ``scored_from``:
    the rows of the split when ``y_true`` is a uniform sample of them (the report says
    so; :func:`kerasdnn.evaluation.predict.collect`'s ``max_rows``).  Everything is computed
    and rendered in memory first; then each file is written atomically,
    ``report.json`` last.  A failure therefore writes nothing, and a crash never
    leaves a partial file.  ``out_dir`` is created if needed.

    Returns:
        The report dict, as written to ``report.json``.

    Example:
        >>> import tempfile, numpy as np
        >>> report = write_report(tempfile.mkdtemp(), [0, 1, 2], np.eye(3))
        >>> report["accuracy"], report["files"][:2]
        (1.0, ['report.md', 'roc.png'])
    """
    report = classification_report(y_true, y_prob, class_names=class_names,
                                   validation=validation)
    names = report["class_names"]
    rendered: dict[str, bytes] = {
        ROC_PNG: plots.png_bytes(plots.roc_figure(y_true, y_prob, class_names=names)),
        CONFUSION_PNG: plots.png_bytes(plots.confusion_matrix_figure(report)),
        PR_PNG: plots.png_bytes(plots.pr_figure(y_true, y_prob, class_names=names)),
        CALIBRATION_PNG: plots.png_bytes(plots.calibration_figure(
            y_true, y_prob, bins=report["calibration_bins"])),
    }
    figures = {"ROC curves": ROC_PNG, "Confusion matrix": CONFUSION_PNG,
               "Precision-recall curves": PR_PNG, "Calibration (reliability diagram)":
               CALIBRATION_PNG}
    if images is not None:
        rendered[MISCLASSIFIED_PNG] = plots.png_bytes(gallery.misclassified_figure(
            images, y_true, y_prob, class_names=names))
        figures["Most confidently wrong test images"] = MISCLASSIFIED_PNG
    if history is not None:
        rendered[HISTORY_PNG] = plots.png_bytes(plots.history_figure(history))
        figures["Training history"] = HISTORY_PNG
    report = {
        "title": title,
        **report,
        "scored_from": scored_from,
        "metadata": dict(metadata or {}),
        "files": [REPORT_MD, *rendered, REPORT_JSON],
    }
    markdown = to_markdown(report, title=title, images=figures, history=history)

    out = Path(out_dir)
    for name, data in rendered.items():
        atomic_write_bytes(out / name, data)
    atomic_write_text(out / REPORT_MD, markdown)
    atomic_write_json(out / REPORT_JSON, report)
    return report
