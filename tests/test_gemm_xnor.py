"""XNOR GEMMs: every registered kernel equals the integer sign(A) @ sign(B).T exactly."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit
from .strategies import gemm_operands, layouts, pad_multiples, with_layout

from tinybnn.errors import ArgumentError, ShapeError
from tinybnn.gemm import (
    REGISTRY,
    impl_names,
    pack_bits,
    pad_words,
    popcount64,
    xnor_gemm_float,
)
from tinybnn.gemm.xnor import popcount_table, popcount_words

XNOR_KERNELS = [REGISTRY[name].function for name in impl_names("xnor")]
XNOR_IDS = impl_names("xnor")


def sign_int(x):
    """sign(x) with sign(0) = +1, as int64 (the exact reference)."""
    return np.where(np.asarray(x) >= 0, 1, -1).astype(np.int64)


def reference(A, B):
    """sign(A) @ sign(B) in exact integer arithmetic; A is (M, K), B is (K, N)."""
    return sign_int(A) @ sign_int(B)


@pytest.mark.parametrize("kernel", XNOR_KERNELS, ids=XNOR_IDS)
@given(gemm_operands(max_m=11, max_k=300, max_n=11), pad_multiples())
def test_xnor_kernel_equals_integer_sign_gemm(kernel, operands, pad):
    A, B = operands
    k = A.shape[1]
    a = pack_bits(A, axis=1, pad_words_to=pad)
    b = pack_bits(B, axis=0, pad_words_to=pad)
    out = kernel(a, b, k)
    assert out.dtype == np.int32
    assert out.shape == (A.shape[0], B.shape[1])
    np.testing.assert_array_equal(out, reference(A, B))


@pytest.mark.parametrize("kernel", XNOR_KERNELS, ids=XNOR_IDS)
@given(gemm_operands(max_m=9, max_k=200, max_n=9), layouts(), layouts())
def test_xnor_kernel_accepts_any_layout_of_packed_operands(kernel, operands, layout_a, layout_b):
    A, B = operands
    a = with_layout(pack_bits(A, axis=1, pad_words_to=8), layout_a)
    b = with_layout(pack_bits(B, axis=0, pad_words_to=8), layout_b)
    np.testing.assert_array_equal(kernel(a, b, A.shape[1]), reference(A, B))


@pytest.mark.parametrize("kernel", XNOR_KERNELS, ids=XNOR_IDS)
@given(gemm_operands(max_m=9, max_k=200, max_n=9))
def test_xnor_gemm_float_packs_and_matches(kernel, operands):
    A, B = operands
    np.testing.assert_array_equal(xnor_gemm_float(A, B, kernel=kernel), reference(A, B))


@pytest.mark.parametrize("kernel", XNOR_KERNELS, ids=XNOR_IDS)
@pytest.mark.parametrize("m, k, n", [(37, 1000, 41), (64, 1600, 13), (4, 6400, 4), (1, 1, 1), (5, 64, 130)])
def test_xnor_kernel_on_larger_fixed_shapes(kernel, m, k, n):
    # Whole 4x4 tiles, edge tiles in both directions, several vector lengths of words.
    rng = np.random.default_rng(m * 7 + k + n)
    A = rng.standard_normal((m, k))
    B = rng.standard_normal((k, n))
    A[rng.random(A.shape) < 0.2] = 0.0
    for pad in (1, 8):
        a = pack_bits(A, axis=1, pad_words_to=pad)
        b = pack_bits(B, axis=0, pad_words_to=pad)
        np.testing.assert_array_equal(kernel(a, b, k), reference(A, B))


@pytest.mark.parametrize("kernel", XNOR_KERNELS, ids=XNOR_IDS)
def test_extremes_all_agree_and_all_differ(kernel):
    k = 130
    ones = np.ones((3, k))
    a = pack_bits(ones, axis=1)
    b_same = pack_bits(ones.T, axis=0)
    b_opposite = pack_bits(-ones.T, axis=0)
    np.testing.assert_array_equal(kernel(a, b_same, k), np.full((3, 3), k))
    np.testing.assert_array_equal(kernel(a, b_opposite, k), np.full((3, 3), -k))


@njit
def _popcount_scalar(x):
    return popcount64(x)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_popcount64_counts_bits(value):
    assert _popcount_scalar(np.uint64(value)) == bin(value).count("1")


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=1, max_size=24), st.integers(1, 3))
def test_both_word_popcounts_count_bits(values, rows):
    words = np.array(values * rows, dtype=np.uint64).reshape(rows, len(values))
    expected = np.array([[bin(v).count("1") for v in values]] * rows)
    assert np.array_equal(popcount_table(words), expected)
    assert np.array_equal(popcount_words(words), expected)  # np.bitwise_count on NumPy 2.0+


def test_pad_words():
    packed = np.arange(1, 7, dtype=np.uint64).reshape(2, 3)
    padded = pad_words(packed, 8)
    assert padded.shape == (2, 8)
    np.testing.assert_array_equal(padded[:, :3], packed)
    assert not padded[:, 3:].any()
    assert pad_words(padded, 8) is padded
    with pytest.raises(ArgumentError, match="uint64"):
        pad_words(np.zeros((2, 3)), 8)


# ----------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------

GOOD_A = np.zeros((3, 2), dtype=np.uint64)
GOOD_B = np.zeros((5, 2), dtype=np.uint64)


@pytest.mark.parametrize("kernel", XNOR_KERNELS, ids=XNOR_IDS)
@pytest.mark.parametrize(
    "a, b, k, error, words",
    [
        (GOOD_A.astype(np.int64), GOOD_B, 100, ArgumentError, "a_packed must have dtype uint64"),
        (GOOD_A, GOOD_B.astype(np.float32), 100, ArgumentError, "b_packed must have dtype uint64"),
        (GOOD_A.tolist(), GOOD_B, 100, ArgumentError, "a_packed must be a numpy array"),
        (GOOD_A[0], GOOD_B, 100, ShapeError, r"a_packed must be 2-D .*\(2,\)"),
        (GOOD_A, GOOD_B[None], 100, ShapeError, r"b_packed must be 2-D .*\(1, 5, 2\)"),
        (GOOD_A, np.zeros((5, 3), np.uint64), 100, ShapeError, r"same number of words.*\(3, 2\) and \(5, 3\)"),
        (GOOD_A[:0], GOOD_B, 100, ShapeError, "non-empty"),
        (GOOD_A, GOOD_B, 129, ArgumentError, "k=129 bits does not fit operands of 2 words"),
        (GOOD_A, GOOD_B, 0, ArgumentError, "need 1 <= k"),
        (GOOD_A, GOOD_B, 100.0, ArgumentError, "k must be an int"),
        (GOOD_A, GOOD_B, True, ArgumentError, "k must be an int"),
    ],
)
def test_bad_operands_are_refused(kernel, a, b, k, error, words):
    with pytest.raises(error, match=words):
        kernel(a, b, k)


@pytest.mark.parametrize("kernel", XNOR_KERNELS, ids=XNOR_IDS)
def test_set_tail_bits_are_refused(kernel):
    k = 70  # word 1 holds bits 64..69; bits 70..127 must be 0
    a = GOOD_A.copy()
    b = GOOD_B.copy()
    b[4, 1] = np.uint64(1) << np.uint64(6)  # bit 70
    with pytest.raises(ArgumentError, match="b_packed row 4 has bits set at positions >= k=70"):
        kernel(a, b, k)
    a[2, 1] = np.uint64(1) << np.uint64(5)  # bit 69: inside k, fine
    b[4, 1] = 0
    kernel(a, b, k)
    a8 = pad_words(a, 8)
    a8[1, 7] = 1  # a padding word
    with pytest.raises(ArgumentError, match="a_packed row 1"):
        kernel(a8, pad_words(b, 8), k)


def test_xnor_gemm_float_refuses_bad_shapes():
    with pytest.raises(ShapeError, match=r"share K.*\(2, 3\) and \(4, 5\)"):
        xnor_gemm_float(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ShapeError, match="2-D"):
        xnor_gemm_float(np.ones(3), np.ones((3, 5)))
