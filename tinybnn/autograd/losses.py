"""Softmax cross-entropy, the loss of classification.

For logits z (N, K) and integer labels y (N,)::

    log p[n, k] = z[n, k] - max_k z[n] - log sum_j exp(z[n, j] - max_k z[n])
    L = -(1/N) sum_n log p[n, y_n]
    dL/dz = (softmax(z) - onehot(y)) / N

Subtracting the row maximum keeps exp() from overflowing.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .function import Context, Function


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log softmax over the last axis."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    return np.exp(log_softmax(logits))


class SoftmaxCrossEntropy(Function):
    """Mean cross-entropy of softmax(logits) against integer ``labels``."""

    @staticmethod
    def forward(ctx: Context, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels)
        if logits.ndim != 2 or labels.shape != (logits.shape[0],):
            raise ShapeError(
                f"softmax_cross_entropy: logits (N, K) and labels (N,) expected, got {logits.shape} and {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
            raise ShapeError(
                f"softmax_cross_entropy: labels must lie in 0..{logits.shape[1] - 1}, "
                f"got {labels.min()}..{labels.max()}"
            )
        logp = log_softmax(logits)
        rows = np.arange(len(labels))
        ctx.save_for_backward(logp, labels)
        return np.asarray(-logp[rows, labels].mean(), dtype=logits.dtype)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        logp, labels = ctx.saved_values
        n = len(labels)
        d = np.exp(logp)
        d[np.arange(n), labels] -= 1
        return d * (grad / n)


def softmax_cross_entropy(logits, labels: np.ndarray):
    """Differentiable mean softmax cross-entropy; ``labels`` is an int array."""
    return SoftmaxCrossEntropy.apply(logits, labels=labels)
