"""Exercises of chapter 4: A binary convolution.

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_04_binary_convolution.py
"""

import numpy as np


def output_size(size, kernel, stride, pad):
    """How many positions a kernel of width ``kernel`` takes along an axis of ``size`` values
    padded by ``pad`` on each side, moving by ``stride``: an int.

    >>> output_size(28, 5, 1, 0)
    24
    """
    raise NotImplementedError("exercise 4.1: the output size of a convolution along one axis")


def im2col(x, kernel, stride, pad, pad_value=0.0):
    """The patches of ``x`` (N, C, H, W) as a matrix of shape (N OH OW, C KH KW).

    ``kernel``, ``stride`` and ``pad`` are pairs (rows, columns). Pad x with
    ``pad_value`` first; row ``(n OH + i) OW + j`` holds the window whose top
    left corner is at (i stride[0], j stride[1]) of image n, flattened in the
    order (channel, kernel row, kernel column).
    """
    raise NotImplementedError("exercise 4.2: im2col")


def binary_conv2d(x, w, stride=(1, 1), pad=(0, 0), pad_value=1.0):
    """A binary convolution: sign(x) (N, C, H, W) convolved with sign(w) (F, C, KH, KW), sign(0) = +1.

    Binarize first, then pad with ``pad_value`` (+1 or -1, never 0: a binary
    layer sees only ±1), then one matrix product with ``im2col``. Return the
    float32 outputs (N, F, OH, OW): integers between -C KH KW and C KH KW.
    """
    raise NotImplementedError("exercise 4.3: a binary convolution padded with ±1")
