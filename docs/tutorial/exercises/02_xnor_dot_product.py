"""Exercises of chapter 2: The XNOR dot product.

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_02_xnor_dot_product.py
"""

import numpy as np


def pack_bits(x):
    """Pack the signs of a 1-D float array ``x`` (length K) into ceil(K / 64) ``np.uint64`` words.

    Bit i of the result (bit i % 64 of word i // 64) is 1 where sign(x[i]) = +1
    (x[i] >= 0, so 0 packs as 1) and 0 where x[i] < 0: least significant bit
    first. The tail bits of the last word, past K, are 0.

    >>> pack_bits(np.array([1.0, -1.0, 0.0]))
    array([5], dtype=uint64)
    """
    raise NotImplementedError("exercise 2.1: pack the sign bits of x into uint64 words")


def popcount(words):
    """The number of 1 bits in all the ``np.uint64`` words of the array ``words`` together, as an int.

    (NumPy 2 has ``np.bitwise_count``; write it without: for example with
    ``bin(int(w)).count("1")`` per word, or by shifting and masking.)
    """
    raise NotImplementedError("exercise 2.2: count the 1 bits of the words")


def xnor_dot(a_words, b_words, k):
    """The dot product of two ±1 vectors of length ``k`` from their packed words (as ``pack_bits`` makes them).

    ``dot = k - 2 * popcount(a XOR b)``: each position where the bits differ
    contributes -1 instead of +1. Return an int.
    """
    raise NotImplementedError("exercise 2.3: the XNOR dot product K - 2 popcount(a XOR b)")
