"""Regenerate examples/quickstart.ipynb from the cells below (outputs stripped).

Run: python examples/make_quickstart.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat

CELLS = [
    ("markdown", """# kerasdnn quickstart

Build the classic dense network with `kerasdnn.build_model`, train it for a few epochs
on scikit-learn's bundled handwritten digits (no download needed) through `pipelines.load`,
and judge it with scikit-learn: the report table, the ROC curves and the confusion matrix.

The backend is whatever `KERAS_BACKEND` says (TensorFlow, JAX or PyTorch): the numbers are
the same on all three."""),
    ("code", """%matplotlib inline
import keras

import kerasdnn
import pipelines
from kerasdnn.evaluation.reports import (
    classification_report,
    confusion_matrix_figure,
    format_table,
    roc_figure,
)

print("Keras backend:", keras.backend.backend())"""),
    ("markdown", """## Data

`pipelines.load` returns shuffled, scaled, batched `tf.data` datasets for train, validation
and test, and a record of what was loaded."""),
    ("code", """splits = pipelines.load("digits", batch_size=64, seed=1337)
info = splits.info
print(info.source, info.input_shape, info.num_classes, "classes", info.num_examples)"""),
    ("markdown", """## Model

The seed network is 784-500-250-10; here the input is the 64 pixels of an 8x8 digit.
`build_model` returns a compiled `kerasdnn.DNN` (SGD, learning rate 0.01, momentum 0.9)."""),
    ("code", """model = kerasdnn.build_model(
    input_shape=info.input_shape, num_classes=info.num_classes
)
model.summary()"""),
    ("markdown", "## Training"),
    ("code", """history = model.fit(
    splits.train, validation_data=splits.validation, epochs=5, verbose=2
)"""),
    ("markdown", """## Report

`kerasdnn.evaluation.predict.collect` predicts the test split (probabilities, softmax applied) and
returns the labels in the same order; scikit-learn computes the metrics."""),
    ("code", """from kerasdnn.evaluation.predict import collect

y_true, y_prob = collect(model, splits.test)
report = classification_report(y_true, y_prob, class_names=info.class_names)
print(format_table(report))"""),
    ("code", """roc_figure(y_true, y_prob, class_names=info.class_names)"""),
    ("code", """confusion_matrix_figure(report)"""),
]


def build() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }
    for kind, source in CELLS:
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(make(source))
    return notebook


if __name__ == "__main__":
    path = Path(__file__).with_name("quickstart.ipynb")
    nbformat.write(build(), path)
    print(f"wrote {path}")
