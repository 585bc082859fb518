"""Exercises of chapter 3: Bit packing and the XNOR GEMM.

Write each function below in place of its ``raise NotImplementedError``,
then check them (how to work on a copy: docs/tutorial/exercises/README.md):

    python -m pytest -q -m exercises tests/exercises/test_03_bit_packing_and_xnor_gemm.py
"""

import numpy as np


def popcount64(words):
    """The number of 1 bits of each ``np.uint64`` in the array ``words``, as an array of the same shape.

    Without a loop over the words and without ``np.bitwise_count`` (NumPy 2
    only): the SWAR way, in whole-array operations on uint64 -- count bits in
    pairs (``x - ((x >> 1) & 0x5555...)``), then in nibbles, bytes, and sum the
    eight byte counts with one multiplication by ``0x0101010101010101`` and a
    shift by 56 (Warren, "Hacker's Delight", section 5-1). Return any integer dtype.
    """
    raise NotImplementedError("exercise 3.1: a vectorised popcount of uint64 words")


def xnor_gemm(a_packed, b_packed, k):
    """The XNOR GEMM: ``out[i, j] = k - 2 popcount(a_packed[i] XOR b_packed[j])``, summed over the words.

    ``a_packed`` (M, W) and ``b_packed`` (N, W) hold the sign bits of the rows
    of A (M, K) and B (N, K), 64 to a uint64 word, least significant bit first
    (``tinybnn.gemm.pack_bits``), so the result is sign(A) @ sign(B).T.
    Return an (M, N) int32 array. Use ``popcount64`` (or ``tinybnn.gemm``'s
    ``popcount_table`` until yours works).
    """
    raise NotImplementedError("exercise 3.2: the XNOR GEMM on packed rows")
