"""Solutions of chapter 5's exercises (docs/tutorial/exercises/05_training_binary_lenet.py)."""

import numpy as np


def sgd_step_with_clipping(weight, grad, learning_rate):
    return np.clip(weight - learning_rate * grad, -1, 1).astype(weight.dtype)


def flip_ratio(before, after):
    return float(np.mean((before >= 0) != (after >= 0)))


def fold_batchnorm(gamma, beta, mean, var, eps):
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    shift = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return scale.astype(np.float32), shift.astype(np.float32)
