"""Exercises of chapter 8: The explorer: one real digit through the network.

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_08_explorer.py
"""

import numpy as np


def first_maximum(window):
    """Which value of a max pooling window the pooling takes: ``[row, column]`` of the largest value
    of the 2-D array ``window``, the first one in row-major order when several are equal
    (as ``np.argmax`` does on the flattened window). A list of two ints.
    """
    raise NotImplementedError("exercise 8.1: the position of the first maximum of a pooling window")


def output_by_hand(patch_bits, filter_bits, scale, shift):
    """One output of a packed binary layer, from the bits the explorer shows.

    ``patch_bits`` and ``filter_bits`` are bool arrays of the same shape (True
    for +1). Return ``(popcount, dot, result)``: the number of positions where
    they differ, ``dot = K - 2 popcount`` (K their size) and the folded
    multiply-add as the packed layer computes it, ``dot * scale + shift`` in
    float64 rounded to ``np.float32``.
    """
    raise NotImplementedError("exercise 8.2: popcount, dot and the multiply-add of one output")
