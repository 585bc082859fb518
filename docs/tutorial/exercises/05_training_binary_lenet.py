"""Exercises of chapter 5: Training the binary LeNet on MNIST.

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_05_training_binary_lenet.py
"""

import numpy as np


def sgd_step_with_clipping(weight, grad, learning_rate):
    """One SGD step on the latent weights of a binary layer: ``w - learning_rate * grad``, clipped to [-1, 1].

    Return a new array (leave ``weight`` as it is). Clipping keeps a latent
    weight within reach of a sign flip (BinaryConnect, Courbariaux et al., 2015).
    """
    raise NotImplementedError("exercise 5.1: an SGD step with clipping to [-1, 1]")


def flip_ratio(before, after):
    """The share of binary weights that changed sign between two copies of the latent weights.

    sign(0) = +1, so a weight going from 0.0 to -0.1 flips, from -0.1 to 0.0
    too, and from 0.0 to 0.3 does not. Return a float in [0, 1].
    """
    raise NotImplementedError("exercise 5.2: the share of weights whose sign changed")


def fold_batchnorm(gamma, beta, mean, var, eps):
    """Fold an evaluation-mode BatchNorm into a per-channel scale and shift.

    BatchNorm computes ``y = gamma (x - mean) / sqrt(var + eps) + beta`` per
    channel; return the float32 arrays ``(scale, shift)`` with
    ``y = scale * x + shift`` (compute in float64, then round once).
    """
    raise NotImplementedError("exercise 5.3: fold a BatchNorm into a scale and a shift")
