"""An independent float64 NumPy reference of a dense ReLU classifier's training.

Forward pass, softmax / sigmoid cross-entropy (mean over the batch), backward
pass, Keras's SGD with momentum (``m = momentum * m - lr * g; w = w + m``) and
global-norm clipping (``g * clipnorm / max(norm, clipnorm)``), written from the
formulas, not from Keras or kerasdnn.

Weights are a list of ``(kernel, bias)`` pairs, from the first hidden layer to
the output layer.

Example:
    >>> import numpy as np
    >>> weights = [(np.ones((2, 1)), np.zeros(1))]
    >>> loss, grads = loss_and_grads(weights, np.ones((1, 2)), np.array([1]), binary=True)
    >>> round(loss, 4)
    0.1269
"""

from __future__ import annotations

import numpy as np

Weights = list[tuple[np.ndarray, np.ndarray]]


def as_float64(weights: Weights) -> Weights:
    return [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in weights]


def forward(weights: Weights, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits and the inputs of every layer (for the backward pass)."""
    activations = [np.asarray(x, np.float64)]
    for w, b in weights[:-1]:
        activations.append(np.maximum(activations[-1] @ w + b, 0.0))
    w, b = weights[-1]
    return activations[-1] @ w + b, activations


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer labels, and its gradient w.r.t. the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -log_probs[np.arange(n), labels].mean()
    grad = np.exp(log_probs)
    grad[np.arange(n), labels] -= 1.0
    return float(loss), grad / n


def sigmoid_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of 0/1 labels for one logit per row, and its gradient."""
    z = logits[:, 0]
    t = np.asarray(labels, np.float64)
    # log(1 + exp(-|z|)) + max(z, 0) - z * t, the stable form of -t log s - (1-t) log(1-s)
    loss = np.mean(np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0) - z * t)
    grad = (1.0 / (1.0 + np.exp(-z)) - t) / len(t)
    return float(loss), grad[:, None]


def loss_and_grads(weights: Weights, x: np.ndarray, labels: np.ndarray,
                   binary: bool = False) -> tuple[float, Weights]:
    """Loss and the gradient of every (kernel, bias) by backpropagation."""
    weights = as_float64(weights)
    logits, activations = forward(weights, x)
    criterion = sigmoid_cross_entropy if binary else softmax_cross_entropy
    loss, delta = criterion(logits, labels)
    grads: Weights = []
    for layer in range(len(weights) - 1, -1, -1):
        inputs = activations[layer]
        grads.append((inputs.T @ delta, delta.sum(axis=0)))
        if layer > 0:
            delta = (delta @ weights[layer][0].T) * (inputs > 0.0)
    return loss, grads[::-1]


def global_norm(grads: Weights) -> float:
    return float(np.sqrt(sum(np.sum(gw**2) + np.sum(gb**2) for gw, gb in grads)))


def clip_by_global_norm(grads: Weights, clipnorm: float) -> Weights:
    factor = clipnorm / max(global_norm(grads), clipnorm)
    return [(gw * factor, gb * factor) for gw, gb in grads]


class SGDMomentum:
    """Keras's SGD: ``m = momentum * m - lr * g``; ``w = w + m`` (no Nesterov)."""

    def __init__(self, learning_rate: float, momentum: float) -> None:
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.velocities: Weights | None = None

    def apply(self, weights: Weights, grads: Weights) -> Weights:
        if self.velocities is None:
            self.velocities = [(np.zeros_like(w), np.zeros_like(b)) for w, b in grads]
        updated, velocities = [], []
        for (w, b), (gw, gb), (mw, mb) in zip(weights, grads, self.velocities, strict=True):
            mw = self.momentum * mw - self.learning_rate * gw
            mb = self.momentum * mb - self.learning_rate * gb
            velocities.append((mw, mb))
            updated.append((w + mw, b + mb))
        self.velocities = velocities
        return updated


def train(weights: Weights, batches: list[tuple[np.ndarray, np.ndarray]], *,
          learning_rate: float, momentum: float, clipnorm: float | None = None,
          binary: bool = False) -> tuple[list[float], list[float], Weights]:
    """Run SGD over ``batches``: per-step losses (before each update), per-step
    gradient norms (before clipping), final weights."""
    weights = as_float64(weights)
    optimizer = SGDMomentum(learning_rate, momentum)
    losses, norms = [], []
    for x, y in batches:
        loss, grads = loss_and_grads(weights, x, y, binary=binary)
        losses.append(loss)
        norms.append(global_norm(grads))
        if clipnorm is not None:
            grads = clip_by_global_norm(grads, clipnorm)
        weights = optimizer.apply(weights, grads)
    return losses, norms, weights
