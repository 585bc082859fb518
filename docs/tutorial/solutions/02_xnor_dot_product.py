"""Solutions of chapter 2's exercises (docs/tutorial/exercises/02_xnor_dot_product.py)."""

import numpy as np


def pack_bits(x):
    words = np.zeros((x.size + 63) // 64, dtype=np.uint64)
    for i in np.flatnonzero(x >= 0):
        words[i // 64] |= np.uint64(1) << np.uint64(i % 64)
    return words


def popcount(words):
    return sum(bin(int(w)).count("1") for w in words.ravel())


def xnor_dot(a_words, b_words, k):
    return k - 2 * popcount(a_words ^ b_words)
