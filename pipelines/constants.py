"""Settings that the data side and the model side share, defined once.

``pipelines`` may not import ``kerasdnn``, so what both validate or default to
lives here, in a module that imports only the standard library's ``numbers``:
:class:`kerasdnn.core.config.TrainConfig`, :class:`kerasdnn.core.config.ModelConfig`,
:func:`pipelines.load` and the search (:mod:`tuning.options`) read it.

Example:
    >>> SCALES
    ('auto', 'unit', 'standardize')
    >>> is_validation_split(VALIDATION_SPLIT), is_validation_split(1.0)
    (True, False)
    >>> is_seed(SEED), is_seed(SEED_MAX + 1), is_seed(-1)
    (True, False, False)
"""

from __future__ import annotations

import numbers

__all__ = [
    "BATCH_SIZE",
    "COUNT_MAX",
    "SCALES",
    "SEED",
    "SEED_MAX",
    "VALIDATION_SPLIT",
    "is_seed",
    "is_validation_split",
]

SCALES = ("auto", "unit", "standardize")  # input scaling: the dataset's own, [0, 1], per feature
VALIDATION_SPLIT = 0.1  # fraction of the training split held out by default
BATCH_SIZE = 100  # examples per training step by default (the classic MNIST network's)
SEED = 1337  # the default seed of the weights, the shuffling and the split
SHUFFLE_BUFFER = 65_536  # rows a streamed table's shuffle permutes together by default
# The largest seed: NumPy's and scikit-learn's random states take 0 .. 2**32 - 1 (the
# validation split and KerasTuner's Bayesian oracle), so every seed is checked against it.
SEED_MAX = 2**32 - 1
# The largest count a setting takes (epochs, batch size, units, devices, ...): tf.data and
# the backends index with 32-bit integers in places, and a larger one fails deep inside them.
COUNT_MAX = 2**31 - 1


def is_validation_split(value: object) -> bool:
    """A valid held-out fraction: a real number strictly between 0 and 1 (not a bool,
    not NaN)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value < 1


def is_seed(value: object) -> bool:
    """The one seed rule: an integer 0 .. :data:`SEED_MAX` (not a bool)."""
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and 0 <= value <= SEED_MAX)


ENDLESS_EPOCHS = 2**62  # the epochs of an endless stream (tf.data.Dataset.range's end)
