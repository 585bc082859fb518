"""Chapter 3's exercises (docs/tutorial/exercises/03_bit_packing_and_xnor_gemm.py), against tinybnn.gemm."""

import numpy as np

from tinybnn.gemm import pack_bits, xnor_naive
from tinybnn.gemm.xnor import popcount_table


def test_popcount64_counts_each_word(exercise):
    rng = np.random.default_rng(3)
    words = rng.integers(0, 2**63, size=(4, 5), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    words[0, :3] = [0, 2**64 - 1, 2**63]
    got = np.asarray(exercise.popcount64(words))
    want = popcount_table(words)
    assert got.shape == words.shape, f"expected one count per word, shape {words.shape}, got shape {got.shape}"
    assert np.array_equal(got.astype(np.int64), want.astype(np.int64)), f"expected {want[0]}..., got {got[0]}..."


def test_xnor_gemm_equals_the_sign_product(exercise):
    rng = np.random.default_rng(4)
    for m, n, k in ((1, 1, 1), (3, 5, 64), (4, 2, 150)):
        a, b = rng.normal(size=(m, k)), rng.normal(size=(n, k))
        want = xnor_naive(pack_bits(a), pack_bits(b), k)
        got = np.asarray(exercise.xnor_gemm(pack_bits(a), pack_bits(b), k))
        assert got.shape == want.shape and np.array_equal(got, want), (
            f"M, N, K = {m}, {n}, {k}: expected {want.ravel()[:4]}..., got {got.ravel()[:4]}..."
        )
