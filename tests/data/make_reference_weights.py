"""Generate the NumPy-only fixtures of tests/kerasdnn (run once; outputs are committed).

    python tests/data/make_reference_weights.py

Writes, next to this script:

* ``initial_weights.npz`` — the initial weights build_model must produce for
  two small configs, written down from the *recipe* (not from kerasdnn's code):
  a Dense kernel of shape (fan_in, fan_out) is
  ``np.random.default_rng([seed, index]).uniform(-limit, limit, (fan_in, fan_out))``
  with ``limit = sqrt(6 / (fan_in + fan_out))``, ``index`` counting the Dense
  layers from 0, rounded to float32; biases are zeros.
  Keys: ``<case>/<layer>/kernel`` and ``<case>/<layer>/bias``.
* ``reference_start.npz`` — start weights of a 64-32-16 ReLU trunk with a
  10-logit head and a 1-logit (binary) head, and 10 fixed batches of 16
  scikit-learn digits (pixels / 16): ``x`` (160, 64) float32, ``y`` (160,) int32
  (digit), ``y_binary`` (160,) int32 (digit is odd).

Only NumPy and scikit-learn's bundled digits are used; no backend is imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

HERE = Path(__file__).parent

# case name -> (seed, layer sizes from input to output, layer names)
INITIAL_CASES = {
    "digits_64_32_16_10_seed1337": (1337, [64, 32, 16, 10], ["hidden_1", "hidden_2", "logits"]),
    "images_8x8_24_binary_seed7": (7, [64, 24, 1], ["hidden_1", "logits"]),
}


def glorot_uniform(seed: int, index: int, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    rng = np.random.default_rng([seed, index])
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


def initial_weights() -> dict[str, np.ndarray]:
    arrays = {}
    for case, (seed, sizes, names) in INITIAL_CASES.items():
        layers = zip(names, sizes[:-1], sizes[1:], strict=True)
        for index, (name, fan_in, fan_out) in enumerate(layers):
            arrays[f"{case}/{name}/kernel"] = glorot_uniform(seed, index, fan_in, fan_out)
            arrays[f"{case}/{name}/bias"] = np.zeros(fan_out, np.float32)
    return arrays


def reference_start() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240611)
    arrays = {}
    for name, (fan_in, fan_out) in {
        "hidden_1": (64, 32), "hidden_2": (32, 16), "logits": (16, 10), "binary_logits": (16, 1),
    }.items():
        scale = np.sqrt(2.0 / fan_in)
        arrays[f"{name}/kernel"] = (rng.normal(size=(fan_in, fan_out)) * scale).astype(np.float32)
        arrays[f"{name}/bias"] = (rng.normal(size=fan_out) * 0.05).astype(np.float32)
    digits = load_digits()
    order = rng.permutation(len(digits.target))[:160]
    arrays["x"] = (digits.data[order] / 16.0).astype(np.float32)
    arrays["y"] = digits.target[order].astype(np.int32)
    arrays["y_binary"] = (digits.target[order] % 2).astype(np.int32)
    return arrays


def main() -> None:
    np.savez_compressed(HERE / "initial_weights.npz", **initial_weights())
    np.savez_compressed(HERE / "reference_start.npz", **reference_start())


if __name__ == "__main__":
    main()
