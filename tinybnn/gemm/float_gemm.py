"""Float GEMMs: ``C = A @ B``, ``C[i, j] = sum_k A[i, k] * B[k, j]``.

Four implementations with one signature, ``fn(A, B) -> C``:

* :func:`gemm_naive`: three Python loops. For teaching and tiny sizes only.
* :func:`gemm_blocked`: Numba, one thread, cache tiling (the i-k-j loop order
  inside tiles that fit the caches).
* :func:`gemm_parallel`: Numba ``prange``, packed panels of B and 4x4
  register tiles, the same structure as the XNOR kernels.
* :func:`gemm_numpy`: ``np.dot`` (OpenBLAS), the reference.

Operands: ``A (M, K)`` and ``B (K, N)``, 2-D, non-empty, float32 or float64,
any memory layout (transposed or sliced views are copied to C order where a
kernel needs it). The result has the inputs' dtype; mixed float32/float64
inputs are computed in float64, as NumPy would.

Accuracy: the implementations add the products in different orders, so they
agree with ``np.dot`` to rounding, not bit for bit. Each computed entry obeys
the classic bound ``|C - A @ B| <= gamma_K * (|A| @ |B|)`` with
``gamma_K ~ K * eps / 2`` for its dtype, so two of them differ by at most
``K * eps * (|A| @ |B|)``; that is the tolerance the tests use.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinybnn.errors import ArgumentError, ShapeError

_FLOATS = (np.float32, np.float64)


def check_float_operands(A, B):
    """Validate ``A (M, K)`` and ``B (K, N)``; return them as arrays of one float dtype.

    Raises ``ArgumentError`` for a non-float dtype and ``ShapeError`` for
    operands that are not 2-D, are empty, or do not share K.
    """
    A = np.asarray(A)
    B = np.asarray(B)
    for name, arr in (("A", A), ("B", B)):
        if arr.dtype not in _FLOATS:
            raise ArgumentError(f"{name} must be float32 or float64, got {arr.dtype}")
        if arr.ndim != 2:
            raise ShapeError(f"{name} must be 2-D, got shape {arr.shape}")
        if 0 in arr.shape:
            raise ShapeError(f"{name} must be non-empty, got shape {arr.shape}")
    if A.shape[1] != B.shape[0]:
        raise ShapeError(f"A (M, K) and B (K, N) must share K: got A of shape {A.shape} and B of shape {B.shape}")
    dtype = np.result_type(A.dtype, B.dtype)
    return A.astype(dtype, copy=False), B.astype(dtype, copy=False)


# ----------------------------------------------------------------------------
# naive and reference
# ----------------------------------------------------------------------------


def gemm_naive(A, B) -> np.ndarray:
    """``C[i, j] = sum_k A[i, k] * B[k, j]`` with three Python loops.

    Sums in Python floats (double precision), then stores in the inputs'
    dtype. About a microsecond per multiply-add: keep it to tiny sizes.
    """
    A, B = check_float_operands(A, B)
    m, k = A.shape
    n = B.shape[1]
    a = A.tolist()
    b = B.tolist()
    C = np.empty((m, n), dtype=A.dtype)
    for i in range(m):
        for j in range(n):
            total = 0.0
            for t in range(k):
                total += a[i][t] * b[t][j]
            C[i, j] = total
    return C


def gemm_numpy(A, B) -> np.ndarray:
    """``np.dot(A, B)``: OpenBLAS's GEMM, the reference every other kernel is checked against."""
    A, B = check_float_operands(A, B)
    return np.dot(A, B)


# ----------------------------------------------------------------------------
# blocked (one thread, cache tiling)
# ----------------------------------------------------------------------------

BLOCK_M = 32
BLOCK_K = 256
BLOCK_N = 512


# Contraction lets LLVM fuse a * b + c into one FMA (one rounding instead of two).
@njit(cache=True, fastmath={"contract"})
def _gemm_blocked_kernel(A, B, C):
    m, k = A.shape
    n = B.shape[1]
    for i0 in range(0, m, BLOCK_M):
        i1 = min(i0 + BLOCK_M, m)
        for k0 in range(0, k, BLOCK_K):
            k1 = min(k0 + BLOCK_K, k)
            for j0 in range(0, n, BLOCK_N):
                j1 = min(j0 + BLOCK_N, n)
                for i in range(i0, i1):
                    c = C[i, j0:j1]
                    for t in range(k0, k1):
                        a = A[i, t]
                        b = B[t, j0:j1]
                        # A loop from 0 over slices: LLVM then knows the index is
                        # never negative (no wraparound select) and vectorizes it.
                        for j in range(c.shape[0]):
                            c[j] += a * b[j]


def gemm_blocked(A, B) -> np.ndarray:
    """``C = A @ B`` with cache tiling, one thread (Numba).

    ``C`` is computed tile by tile: a ``32 x 256`` block of A, a
    ``256 x 512`` block of B (512 KB in float32, held in L2) and a
    ``32 x 512`` block of C. Inside a tile the loops run i-k-j, so the inner
    loop ``C[i, j0:j1] += A[i, t] * B[t, j0:j1]`` reads and writes contiguous
    rows and is vectorized by LLVM.

    Optimizations: cache tiling; contiguous inner loop, vectorized by LLVM
    with fused multiply-adds (``fastmath={"contract"}``).
    """
    A, B = check_float_operands(A, B)
    A = np.ascontiguousarray(A)
    B = np.ascontiguousarray(B)
    C = np.zeros((A.shape[0], B.shape[1]), dtype=A.dtype)
    _gemm_blocked_kernel(A, B, C)
    return C


# ----------------------------------------------------------------------------
# parallel (prange, packed panels, 4x4 register tiles)
# ----------------------------------------------------------------------------

PANEL_N = 16  # columns of B per packed panel: one 64-byte cache line of float32 per row of B
PANEL_K = 512  # depth of a panel: 16 x 512 float32 = 32 KB, held in L1/L2

# Reassociation lets LLVM split each sum into vector lanes; contraction lets
# it use fused multiply-adds. Neither assumes away NaN or infinity.
_FASTMATH = {"reassoc", "contract"}


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _tile_4x4(A, P, p0, i0, k0, C, j0):
    """``C[i0:i0+4, j0:j0+4] += A[i0:i0+4, k0:k0+depth] @ P[p0:p0+4, :depth].T``, 16 sums in registers."""
    depth = min(PANEL_K, A.shape[1] - k0)
    a0 = A[i0, k0 : k0 + depth]
    a1 = A[i0 + 1, k0 : k0 + depth]
    a2 = A[i0 + 2, k0 : k0 + depth]
    a3 = A[i0 + 3, k0 : k0 + depth]
    q0 = P[p0, :depth]
    q1 = P[p0 + 1, :depth]
    q2 = P[p0 + 2, :depth]
    q3 = P[p0 + 3, :depth]
    zero = A.dtype.type(0)
    c00 = c01 = c02 = c03 = zero
    c10 = c11 = c12 = c13 = zero
    c20 = c21 = c22 = c23 = zero
    c30 = c31 = c32 = c33 = zero
    for t in range(depth):
        x0 = a0[t]
        x1 = a1[t]
        x2 = a2[t]
        x3 = a3[t]
        y0 = q0[t]
        y1 = q1[t]
        y2 = q2[t]
        y3 = q3[t]
        c00 += x0 * y0
        c01 += x0 * y1
        c02 += x0 * y2
        c03 += x0 * y3
        c10 += x1 * y0
        c11 += x1 * y1
        c12 += x1 * y2
        c13 += x1 * y3
        c20 += x2 * y0
        c21 += x2 * y1
        c22 += x2 * y2
        c23 += x2 * y3
        c30 += x3 * y0
        c31 += x3 * y1
        c32 += x3 * y2
        c33 += x3 * y3
    C[i0, j0] += c00
    C[i0, j0 + 1] += c01
    C[i0, j0 + 2] += c02
    C[i0, j0 + 3] += c03
    C[i0 + 1, j0] += c10
    C[i0 + 1, j0 + 1] += c11
    C[i0 + 1, j0 + 2] += c12
    C[i0 + 1, j0 + 3] += c13
    C[i0 + 2, j0] += c20
    C[i0 + 2, j0 + 1] += c21
    C[i0 + 2, j0 + 2] += c22
    C[i0 + 2, j0 + 3] += c23
    C[i0 + 3, j0] += c30
    C[i0 + 3, j0 + 1] += c31
    C[i0 + 3, j0 + 2] += c32
    C[i0 + 3, j0 + 3] += c33


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _gemm_parallel_kernel(A, B, C):
    m, k = A.shape
    n = B.shape[1]
    n_panels = (n + PANEL_N - 1) // PANEL_N
    for jp in prange(n_panels):
        j0 = jp * PANEL_N
        width = min(PANEL_N, n - j0)
        panel = np.empty((PANEL_N, PANEL_K), dtype=A.dtype)
        for k0 in range(0, k, PANEL_K):
            depth = min(PANEL_K, k - k0)
            # Pack B[k0:k0+depth, j0:j0+width] transposed, so that both operands
            # of a tile are contiguous along K. Each row of B gives one cache line.
            for t in range(depth):
                row = B[k0 + t, j0 : j0 + width]
                for jj in range(width):
                    panel[jj, t] = row[jj]
            for i0 in range(0, m, 4):
                for p0 in range(0, width, 4):
                    if i0 + 4 <= m and p0 + 4 <= width:
                        _tile_4x4(A, panel, p0, i0, k0, C, j0 + p0)
                    else:  # a tile cut by the edge of C: one dot product at a time
                        for i in range(i0, min(i0 + 4, m)):
                            for jj in range(p0, min(p0 + 4, width)):
                                a = A[i, k0 : k0 + depth]
                                q = panel[jj, :depth]
                                total = A.dtype.type(0)
                                for t in range(depth):
                                    total += a[t] * q[t]
                                C[i, j0 + jj] += total


def gemm_parallel(A, B) -> np.ndarray:
    """``C = A @ B`` on all threads (Numba ``prange``), with 4x4 register tiles.

    Each thread takes panels of 16 columns of B. A panel is copied,
    transposed, 512 rows of B at a time, into a ``16 x 512`` buffer (packing,
    as GotoBLAS does), so that rows of A and of the panel are both contiguous
    along K; then every 4x4 tile of C is 16 dot products kept in registers.

    Optimizations:

    * ``prange`` over panels of B's columns (N);
    * packing of B panels: contiguous along K, 32 KB in float32, and read
      from B one cache line per row;
    * register blocking: 16 accumulators, each loaded value used 4 times
      (8 loads per 16 fused multiply-adds);
    * vectorization over K with ``fastmath={"reassoc", "contract"}`` (sums
      split across SIMD lanes, FMA), which changes the order of the additions,
      within the documented tolerance, and keeps NaN/inf semantics.
    """
    A, B = check_float_operands(A, B)
    A = np.ascontiguousarray(A)
    B = np.ascontiguousarray(B)
    C = np.zeros((A.shape[0], B.shape[1]), dtype=A.dtype)
    _gemm_parallel_kernel(A, B, C)
    return C
