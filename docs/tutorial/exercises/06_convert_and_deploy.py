"""Exercises of chapter 6: Converting and deploying.

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_06_convert_and_deploy.py
"""

import numpy as np


def folded_scale_shift(alpha, bias, gamma, beta, mean, var, eps):
    """The multiply-add a packed layer applies to its XNOR dot products, per output channel.

    The trained layer computes ``z = alpha * dot + bias`` (alpha: XNOR-Net's
    scale, 1 without it) and the BatchNorm after it, in evaluation mode,
    ``y = gamma (z - mean) / sqrt(var + eps) + beta``. Return the float32
    arrays ``(scale, shift)`` with ``y = scale * dot + shift`` (float64 inside).
    """
    raise NotImplementedError("exercise 6.1: fold alpha, the bias and a BatchNorm into one multiply-add")


def dot_threshold(scale, shift):
    """The integer threshold that replaces ``sign(scale * dot + shift)`` for a channel with ``scale > 0``.

    Return the smallest integer t such that ``scale * t + shift >= 0``, so that
    for every integer dot, ``sign(scale * dot + shift) = +1`` exactly when
    ``dot >= t`` (a Python int; work in float64).
    """
    raise NotImplementedError("exercise 6.2: the integer threshold of a sign after a multiply-add")


def packed_weight_bytes(filters, k):
    """The bytes of a binary layer's packed weights: ``filters`` rows of ``k`` bits, each row in
    whole uint64 words (ceil(k / 64) words of 8 bytes). An int.

    >>> packed_weight_bytes(64, 1600)
    12800
    """
    raise NotImplementedError("exercise 6.3: the size of packed weights")
