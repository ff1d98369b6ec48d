"""Backend-independent seeded initializers.

Keras's seeded initializers draw from each backend's own random generator, so
the same seed gives different weights on TensorFlow, JAX and PyTorch.  The
initializers here draw with NumPy instead: the same seed gives bit-identical
initial weights on every backend.

The recipe (the contract checked by ``tests/data/make_reference_weights.py``):
a dense kernel of shape ``(fan_in, fan_out)`` seeded with ``(seed, index)`` is
``np.random.default_rng([seed, index]).uniform(-limit, limit, (fan_in, fan_out))``
with ``limit = sqrt(6 / (fan_in + fan_out))`` (Glorot uniform), drawn in
float64 and rounded to the variable's dtype.

Example:
    >>> from kerasdnn.network.initializers import NumpyGlorotUniform
    >>> kernel = NumpyGlorotUniform(seed=(1337, 0)).draw((784, 500))
    >>> kernel.shape, float(abs(kernel).max()) <= (6 / 1284) ** 0.5
    ((784, 500), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

__all__ = ["NumpyGlorotUniform"]


@keras.saving.register_keras_serializable(package="kerasdnn")
class NumpyGlorotUniform(keras.initializers.Initializer):
    """Glorot-uniform kernels drawn by NumPy from ``seed`` (same on every backend).

    Args:
        seed: an integer or a sequence of integers (e.g. ``(model_seed,
            layer_index)``), passed to ``np.random.default_rng``.

    Example:
        >>> layer = keras.layers.Dense(4, kernel_initializer=NumpyGlorotUniform((7, 0)))
    """

    def __init__(self, seed: int | Sequence[int]) -> None:
        self.seed = [int(s) for s in seed] if isinstance(seed, Sequence) else int(seed)

    def draw(self, shape: Sequence[int]) -> np.ndarray:
        """The float64 kernel of ``shape`` (fans as Keras computes them for Dense)."""
        shape = tuple(int(d) for d in shape)
        fan_in, fan_out = _fans(shape)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return np.random.default_rng(self.seed).uniform(-limit, limit, size=shape)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        dtype = keras.backend.standardize_dtype(dtype or keras.backend.floatx())
        return keras.ops.convert_to_tensor(self.draw(shape).astype(dtype), dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive_field, shape[-1] * receptive_field
