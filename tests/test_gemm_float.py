"""Float GEMMs: every registered implementation agrees with np.dot within a stated tolerance.

Tolerance: each implementation's entry ``C[i, j]`` is within
``gamma_K * (|A| @ |B|)[i, j]`` of the exact product (``gamma_K ~ K * eps / 2``
whatever the order of the additions), so two implementations differ by at
most about ``K * eps * (|A| @ |B|)``. The test allows
``RELATIVE_SLACK * K * eps(dtype) * (|A| @ |B|) + tiny``; ``RELATIVE_SLACK``
below covers the ``1 / (1 - K * eps)`` factor of the exact bound.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from .strategies import float_arrays, gemm_operands, layouts, with_layout

from tinybnn.errors import ArgumentError, ShapeError
from tinybnn.gemm import REGISTRY, gemm_naive, impl_names

RELATIVE_SLACK = 1.01
FAST_FLOAT = [name for name in impl_names("float") if name != "naive"]


def assert_close_to_dot(C, A, B):
    """``|C - A @ B| <= 1.01 * K * eps * (|A| @ |B|) + tiny``, computed in float64."""
    dtype = C.dtype
    eps = np.finfo(dtype).eps
    k = A.shape[1]
    exact = A.astype(np.float64) @ B.astype(np.float64)
    scale = np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64)
    bound = RELATIVE_SLACK * k * eps * scale + np.finfo(dtype).tiny
    error = np.abs(C.astype(np.float64) - exact)
    assert np.all(error <= bound), f"max error/bound {np.max(error / bound):.3g}"


@given(gemm_operands(max_m=5, max_k=20, max_n=5))
def test_naive_agrees_with_dot_on_tiny_sizes(operands):
    A, B = operands
    C = gemm_naive(A, B)
    assert C.dtype == A.dtype and C.shape == (A.shape[0], B.shape[1])
    assert_close_to_dot(C, A, B)
    assert_close_to_dot(np.dot(A, B), A, B)  # the reference obeys the same bound


@pytest.mark.parametrize("name", FAST_FLOAT)
@given(gemm_operands(max_m=13, max_k=300, max_n=13))
def test_fast_float_gemm_agrees_with_dot(name, operands):
    A, B = operands
    C = REGISTRY[name].function(A, B)
    assert C.dtype == A.dtype and C.shape == (A.shape[0], B.shape[1])
    assert_close_to_dot(C, A, B)


@pytest.mark.parametrize("name", FAST_FLOAT)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(37, 1100, 41), (64, 2049, 8), (5, 257, 530), (1, 1, 1), (6, 513, 35)])
def test_fast_float_gemm_on_larger_fixed_shapes(name, dtype, m, k, n):
    # Crosses the blocked kernel's tiles (32 x 256 x 512) and the parallel one's 16 x 512 panels.
    rng = np.random.default_rng(m + k + n)
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    assert_close_to_dot(REGISTRY[name].function(A, B), A, B)


@pytest.mark.parametrize("name", impl_names("float"))
@given(st.data())
def test_any_layout_is_accepted(name, data):
    m, k, n = (3, 70, 4) if name == "naive" else (9, 150, 7)
    A = data.draw(float_arrays((m, k), np.float64, layout="C"))
    B = data.draw(float_arrays((k, n), np.float64, layout="C"))
    expected = REGISTRY[name].function(A, B)
    A_view = with_layout(A, data.draw(layouts()))
    B_view = with_layout(B, data.draw(layouts()))
    np.testing.assert_allclose(REGISTRY[name].function(A_view, B_view), expected, rtol=1e-12, atol=1e-12)
    # A transposed view: (B.T @ A.T).T == A @ B
    np.testing.assert_allclose(REGISTRY[name].function(B.T, A.T).T, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", impl_names("float"))
def test_mixed_precision_computes_in_float64(name):
    A = np.ones((2, 3), np.float32)
    B = np.ones((3, 2), np.float64)
    C = REGISTRY[name].function(A, B)
    assert C.dtype == np.float64
    np.testing.assert_array_equal(C, np.full((2, 2), 3.0))


@pytest.mark.parametrize("name", impl_names("float"))
def test_nan_and_inf_propagate(name):
    A = np.ones((5, 6))
    B = np.ones((6, 5))
    A[1, 2] = np.nan
    A[3, 0] = np.inf
    C = REGISTRY[name].function(A, B)
    assert np.isnan(C[1]).all()
    assert np.isposinf(C[3]).all()
    assert np.isfinite(np.delete(C, [1, 3], axis=0)).all()


@pytest.mark.parametrize("name", impl_names("float"))
@pytest.mark.parametrize(
    "A, B, error, words",
    [
        (np.ones((2, 3), np.int64), np.ones((3, 2)), ArgumentError, "A must be float32 or float64, got int64"),
        (np.ones((2, 3)), np.ones((3, 2), np.float16), ArgumentError, "B must be float32 or float64"),
        (np.ones(3), np.ones((3, 2)), ShapeError, r"A must be 2-D, got shape \(3,\)"),
        (np.ones((2, 3)), np.ones((3, 2, 1)), ShapeError, "B must be 2-D"),
        (np.ones((2, 3)), np.ones((4, 2)), ShapeError, r"must share K.*\(2, 3\).*\(4, 2\)"),
        (np.ones((0, 3)), np.ones((3, 2)), ShapeError, "non-empty"),
    ],
)
def test_bad_operands_are_refused(name, A, B, error, words):
    with pytest.raises(error, match=words):
        REGISTRY[name].function(A, B)
