"""Solutions of chapter 3's exercises (docs/tutorial/exercises/03_bit_packing_and_xnor_gemm.py)."""

import numpy as np


def popcount64(words):
    x = np.asarray(words, dtype=np.uint64)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


def xnor_gemm(a_packed, b_packed, k):
    differ = popcount64(a_packed[:, None, :] ^ b_packed[None, :, :]).sum(axis=2, dtype=np.int64)
    return (k - 2 * differ).astype(np.int32)
