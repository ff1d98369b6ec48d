"""Settings that the data side and the model side share, defined once.

``pipelines`` may not import ``kerasdnn``, so what both validate or default to
lives here, in a module that imports only the standard library's ``numbers``:
:class:`kerasdnn.config.TrainConfig` and :func:`pipelines.load` read it.

Example:
    >>> SCALES
    ('auto', 'unit', 'standardize')
    >>> is_validation_split(VALIDATION_SPLIT), is_validation_split(1.0)
    (True, False)
"""

from __future__ import annotations

import numbers

__all__ = ["SCALES", "VALIDATION_SPLIT", "is_validation_split"]

SCALES = ("auto", "unit", "standardize")  # input scaling: the dataset's own, [0, 1], per feature
VALIDATION_SPLIT = 0.1  # fraction of the training split held out by default


def is_validation_split(value: object) -> bool:
    """A valid held-out fraction: a real number strictly between 0 and 1 (not a bool,
    not NaN)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value < 1
