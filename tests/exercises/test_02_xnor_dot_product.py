"""Chapter 2's exercises (docs/tutorial/exercises/02_xnor_dot_product.py), against tinybnn.gemm."""

import numpy as np

from tinybnn.gemm import pack_bits
from tinybnn.gemm.xnor import popcount_table

RNG_SEED = 2


def signs(k, seed):
    x = np.random.default_rng(seed).normal(size=k)
    x[::7] = 0.0  # sign(0) = +1
    return x


def test_pack_bits_sets_one_for_plus_one_lsb_first(exercise):
    got = exercise.pack_bits(np.array([1.0, -1.0, 0.0]))
    assert got.dtype == np.uint64 and got.tolist() == [5], f"[1, -1, 0] packs as [5] (bits 101), got {got!r}"
    for k in (1, 64, 65, 130):
        x = signs(k, k)
        got, want = exercise.pack_bits(x), pack_bits(x)
        assert np.array_equal(got, want), f"K = {k}: expected words {want}, got {got}"


def test_popcount_counts_every_word(exercise):
    words = np.array([0, 1, 2**64 - 1, 0x8000000000000001, 12345678901234567], dtype=np.uint64)
    got, want = exercise.popcount(words), int(popcount_table(words).sum())
    assert got == want, f"popcount of {words.tolist()} is {want}, got {got}"


def test_xnor_dot_equals_the_plus_minus_one_product(exercise):
    for k in (8, 64, 100):
        a, b = signs(k, RNG_SEED + k), signs(k, RNG_SEED + 2 * k)
        want = int(np.where(a >= 0, 1, -1) @ np.where(b >= 0, 1, -1))
        got = exercise.xnor_dot(pack_bits(a), pack_bits(b), k)
        assert got == want, f"K = {k}: the ±1 dot product is {want}, got {got}"
