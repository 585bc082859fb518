"""XNOR GEMMs on bit-packed operands.

For ±1 vectors ``x, y`` of length K packed into words ``a, b`` (see
:mod:`tinybnn.gemm.bitpack`), bit 1 means +1 and bit 0 means -1, so
``x_t * y_t = +1`` where the bits agree and ``-1`` where they differ::

    dot(x, y) = (#agree) - (#differ) = K - 2 * #differ = K - 2 * popcount(a XOR b)

(tail and padding bits are 0 in both operands, so they never differ.) An
XNOR GEMM applies this to every pair of rows:

    out[i, j] = k - 2 * sum_w popcount(a_packed[i, w] XOR b_packed[j, w])

which equals ``sign(A) @ sign(B).T`` exactly, as ``int32``, when
``a_packed = pack_bits(A, axis=-1)`` (A is ``(M, K)``) and
``b_packed = pack_bits(B, axis=-1)`` (B is ``(N, K)``). Every kernel here has
the signature ``kernel(a_packed, b_packed, k) -> int32 (M, N)``:

* ``a_packed``: ``uint64 (M, Kw)``; ``b_packed``: ``uint64 (N, Kw)``, same Kw;
* ``k``: the true number of bits, ``1 <= k <= 64 * Kw``;
* ``Kw`` is either ``ceil(k / 64)`` or more (padding), as long as every bit at
  a position ``>= k`` is 0 in both operands, which is checked. Pad with
  ``pack_bits(x, pad_words_to=8)`` (or :func:`pad_words`) for the fast kernels.

Three kernels, the same numbers:

* :func:`xnor_naive`: a Python loop over the rows of A, NumPy's
  ``bitwise_count`` doing the popcounts (a byte table on NumPy < 2.0, see
  :data:`popcount_words`). Obvious; the reference twin.
* :func:`xnor_blocked`: Numba, one thread, 4x4 register tiles.
* :func:`xnor_parallel`: the same tiles spread over threads with ``prange``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from tinybnn.errors import ArgumentError, ShapeError
from tinybnn.gemm.bitpack import WORD_BITS, pack_bits, packed_words

# ----------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------


def _check_packed_operands(a_packed, b_packed, k):
    """Validate the operands of an XNOR kernel; return C-contiguous copies if needed, and k."""
    for name, arr in (("a_packed", a_packed), ("b_packed", b_packed)):
        if not isinstance(arr, np.ndarray):
            raise ArgumentError(f"{name} must be a numpy array of uint64, got {type(arr).__name__}")
        if arr.dtype != np.uint64:
            raise ArgumentError(f"{name} must have dtype uint64 (from pack_bits), got {arr.dtype}")
        if arr.ndim != 2:
            raise ShapeError(f"{name} must be 2-D (rows, words), got shape {arr.shape}")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ShapeError(f"{name} must be non-empty, got shape {arr.shape}")
    if a_packed.shape[1] != b_packed.shape[1]:
        raise ShapeError(
            f"a_packed and b_packed must have the same number of words, got shapes "
            f"{a_packed.shape} and {b_packed.shape}"
        )
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise ArgumentError(f"k must be an int (the number of bits), got {type(k).__name__} {k!r}")
    k = int(k)
    kw = a_packed.shape[1]
    if not 1 <= k <= WORD_BITS * kw:
        raise ArgumentError(
            f"k={k} bits does not fit operands of {kw} words (shapes {a_packed.shape} and "
            f"{b_packed.shape}): need 1 <= k <= {WORD_BITS * kw}"
        )
    if k >= 2**31:
        raise ArgumentError(f"k={k} is too large for an int32 result")
    a_packed = np.ascontiguousarray(a_packed)
    b_packed = np.ascontiguousarray(b_packed)
    dirty_a, dirty_b = _rows_with_bits_past_k(a_packed, b_packed, k)
    for name, dirty in (("a_packed", dirty_a), ("b_packed", dirty_b)):
        if dirty.any():
            raise ArgumentError(
                f"{name} row {int(np.argmax(dirty))} has bits set at positions >= k={k}: "
                f"tail and padding bits must be 0 (pack with pack_bits)"
            )
    return a_packed, b_packed, k


@njit(parallel=True, cache=True)
def _rows_with_bits_past_k(a, b, k):
    """Per row of ``a`` and of ``b``: is any bit at a position ``>= k`` set?

    Reads only the tail words, without branches, in one parallel pass over the
    rows of both operands (about 5% of the kernel time at LeNet's shape).
    """
    n_a = a.shape[0]
    kw = a.shape[1]
    full = k // 64
    rem = k % 64
    first_zero_word = full + (rem > 0)
    dirty = np.empty(n_a + b.shape[0], dtype=np.bool_)
    for r in prange(n_a + b.shape[0]):
        row = a[r] if r < n_a else b[r - n_a]
        tail = np.uint64(0)
        if rem:
            tail = row[full] >> np.uint64(rem)
        for w in range(first_zero_word, kw):
            tail |= row[w]
        dirty[r] = tail != 0
    return dirty[:n_a], dirty[n_a:]


def pad_words(packed, multiple: int = 8) -> np.ndarray:
    """Append zero words to the last axis of ``packed`` up to a multiple of ``multiple``.

    For operands packed without padding; ``pack_bits(x, pad_words_to=8)`` does
    the same in one step. Returns ``packed`` itself when nothing is to add.
    """
    packed = np.asarray(packed)
    if packed.dtype != np.uint64 or packed.ndim == 0:
        raise ArgumentError(
            f"packed must be a uint64 array with a words axis, got {packed.dtype} of shape {packed.shape}"
        )
    kw = packed.shape[-1]
    target = packed_words(kw * WORD_BITS, multiple)
    if target == kw:
        return packed
    out = np.zeros(packed.shape[:-1] + (target,), dtype=np.uint64)
    out[..., :kw] = packed
    return out


# ----------------------------------------------------------------------------
# the obvious kernel
# ----------------------------------------------------------------------------

_BYTE_POPCOUNT = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.uint8)


def popcount_table(words: np.ndarray) -> np.ndarray:
    """The number of 1 bits of each ``uint64`` in ``words``, as ``uint8``, by a 256-entry byte table.

    Each word is viewed as its 8 bytes, each byte looked up, the 8 counts
    added (byte order does not change a count). Works on every NumPy.
    """
    words = np.ascontiguousarray(words, dtype=np.uint64)
    per_byte = _BYTE_POPCOUNT[words.view(np.uint8)].reshape(words.shape + (8,))
    return per_byte.sum(axis=-1, dtype=np.uint8)


# The popcount of every word of an array: NumPy's own ufunc where it exists
# (NumPy 2.0+, several times faster), else the byte table; the two agree exactly.
popcount_words = np.bitwise_count if hasattr(np, "bitwise_count") else popcount_table


def xnor_naive(a_packed, b_packed, k) -> np.ndarray:
    """XNOR GEMM, obvious version: ``out[i, :] = k - 2 * popcount(a[i] XOR b).sum(words)``.

    One Python iteration per row of ``a_packed``; NumPy XORs that row with all
    rows of ``b_packed`` at once and :data:`popcount_words` counts the bits.
    """
    a_packed, b_packed, k = _check_packed_operands(a_packed, b_packed, k)
    m, n = a_packed.shape[0], b_packed.shape[0]
    out = np.empty((m, n), dtype=np.int32)
    for i in range(m):
        differ = popcount_words(a_packed[i] ^ b_packed).sum(axis=1, dtype=np.int64)
        out[i] = k - 2 * differ
    return out


# ----------------------------------------------------------------------------
# the Numba kernels
# ----------------------------------------------------------------------------


@intrinsic
def popcount64(typingctx, x):
    """Population count of a 64-bit integer: LLVM's ``ctpop`` intrinsic.

    LLVM lowers it to ``popcnt`` on scalars and, once the loop is
    vectorized, to ``vpopcntq`` on CPUs with AVX-512 VPOPCNTDQ.
    """
    if not (isinstance(x, types.Integer) and x.bitwidth == 64):
        return None
    sig = types.uint64(x)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, inline="always")
def _tile_4x4(a, b, i0, j0, k, out):
    """``out[i0:i0+4, j0:j0+4]`` for a full 4x4 tile, 16 counts kept in registers.

    Each loaded word of A is used 4 times and each word of B 4 times, so the
    loop does 8 loads per 16 XOR-popcount-adds; LLVM vectorizes it over the
    words (8 per 512-bit register) with ``vpxorq``, ``vpopcntq``, ``vpaddq``.
    """
    a0 = a[i0]
    a1 = a[i0 + 1]
    a2 = a[i0 + 2]
    a3 = a[i0 + 3]
    b0 = b[j0]
    b1 = b[j0 + 1]
    b2 = b[j0 + 2]
    b3 = b[j0 + 3]
    c00 = c01 = c02 = c03 = np.uint64(0)
    c10 = c11 = c12 = c13 = np.uint64(0)
    c20 = c21 = c22 = c23 = np.uint64(0)
    c30 = c31 = c32 = c33 = np.uint64(0)
    for w in range(a.shape[1]):
        x0 = a0[w]
        x1 = a1[w]
        x2 = a2[w]
        x3 = a3[w]
        y0 = b0[w]
        y1 = b1[w]
        y2 = b2[w]
        y3 = b3[w]
        c00 += popcount64(x0 ^ y0)
        c01 += popcount64(x0 ^ y1)
        c02 += popcount64(x0 ^ y2)
        c03 += popcount64(x0 ^ y3)
        c10 += popcount64(x1 ^ y0)
        c11 += popcount64(x1 ^ y1)
        c12 += popcount64(x1 ^ y2)
        c13 += popcount64(x1 ^ y3)
        c20 += popcount64(x2 ^ y0)
        c21 += popcount64(x2 ^ y1)
        c22 += popcount64(x2 ^ y2)
        c23 += popcount64(x2 ^ y3)
        c30 += popcount64(x3 ^ y0)
        c31 += popcount64(x3 ^ y1)
        c32 += popcount64(x3 ^ y2)
        c33 += popcount64(x3 ^ y3)
    k = np.int64(k)
    out[i0, j0] = k - 2 * np.int64(c00)
    out[i0, j0 + 1] = k - 2 * np.int64(c01)
    out[i0, j0 + 2] = k - 2 * np.int64(c02)
    out[i0, j0 + 3] = k - 2 * np.int64(c03)
    out[i0 + 1, j0] = k - 2 * np.int64(c10)
    out[i0 + 1, j0 + 1] = k - 2 * np.int64(c11)
    out[i0 + 1, j0 + 2] = k - 2 * np.int64(c12)
    out[i0 + 1, j0 + 3] = k - 2 * np.int64(c13)
    out[i0 + 2, j0] = k - 2 * np.int64(c20)
    out[i0 + 2, j0 + 1] = k - 2 * np.int64(c21)
    out[i0 + 2, j0 + 2] = k - 2 * np.int64(c22)
    out[i0 + 2, j0 + 3] = k - 2 * np.int64(c23)
    out[i0 + 3, j0] = k - 2 * np.int64(c30)
    out[i0 + 3, j0 + 1] = k - 2 * np.int64(c31)
    out[i0 + 3, j0 + 2] = k - 2 * np.int64(c32)
    out[i0 + 3, j0 + 3] = k - 2 * np.int64(c33)


@njit(cache=True, inline="always")
def _tile_edge(a, b, i0, j0, k, out):
    """A tile cut by the edge of ``out`` (fewer than 4 rows or columns): one count at a time."""
    i1 = min(i0 + 4, a.shape[0])
    j1 = min(j0 + 4, b.shape[0])
    for i in range(i0, i1):
        ai = a[i]
        for j in range(j0, j1):
            bj = b[j]
            c = np.uint64(0)
            for w in range(a.shape[1]):
                c += popcount64(ai[w] ^ bj[w])
            out[i, j] = np.int64(k) - 2 * np.int64(c)


@njit(cache=True, inline="always")
def _tile(a, b, i0, j0, k, out):
    """Compute the tile of ``out`` whose top-left corner is ``(i0, j0)``."""
    if i0 + 4 <= a.shape[0] and j0 + 4 <= b.shape[0]:
        _tile_4x4(a, b, i0, j0, k, out)
    else:
        _tile_edge(a, b, i0, j0, k, out)


@njit(cache=True)
def _xnor_blocked_kernel(a, b, k, out):
    for j0 in range(0, b.shape[0], 4):
        for i0 in range(0, a.shape[0], 4):
            _tile(a, b, i0, j0, k, out)


@njit(parallel=True, cache=True)
def _xnor_parallel_kernel(a, b, k, out):
    n_i_tiles = (a.shape[0] + 3) // 4
    n_j_tiles = (b.shape[0] + 3) // 4
    if n_j_tiles >= 16 or n_j_tiles >= n_i_tiles:
        # The usual case (N = batch x positions is large): bands of B's rows.
        for jt in prange(n_j_tiles):
            for it in range(n_i_tiles):
                _tile(a, b, it * 4, jt * 4, k, out)
    else:
        # Few rows of B (e.g. a batch of one): bands of A's rows instead.
        for it in prange(n_i_tiles):
            for jt in range(n_j_tiles):
                _tile(a, b, it * 4, jt * 4, k, out)


def xnor_blocked(a_packed, b_packed, k) -> np.ndarray:
    """XNOR GEMM, one thread, 4x4 register tiles: ``k - 2 * popcount(a XOR b)`` summed over words.

    Optimizations:

    * register blocking: a 4x4 tile of counts lives in 16 registers while the
      loop runs over the words of 4 rows of A and 4 rows of B, so each loaded
      word is used 4 times (8 loads per 16 XOR-popcount-adds);
    * popcount vectorization: the word loop is vectorized by LLVM, 8 words per
      512-bit register; ``scripts/check_popcount_asm.py`` confirms that the
      compiled kernel uses ``vpopcntq`` (AVX-512 VPOPCNTDQ) on this machine's CPU;
    * K padding: with Kw a multiple of 8 words (``pack_bits(..., pad_words_to=8)``)
      the word loop has no scalar remainder; padding words are 0, so still exact;
    * tile order: consecutive tiles walk down A with the same 4 rows of B, so
      the B rows stay in L1 while A (the weights, usually the smaller operand)
      streams from L2.
    """
    a_packed, b_packed, k = _check_packed_operands(a_packed, b_packed, k)
    out = np.empty((a_packed.shape[0], b_packed.shape[0]), dtype=np.int32)
    _xnor_blocked_kernel(a_packed, b_packed, k, out)
    return out


def xnor_parallel(a_packed, b_packed, k) -> np.ndarray:
    """XNOR GEMM over all threads: :func:`xnor_blocked`'s tiles shared out with ``prange``.

    Optimizations: everything :func:`xnor_blocked` does (4x4 register tiles,
    ``vpopcntq`` vectorization confirmed with ``inspect_asm``, Kw padded to a
    multiple of 8 words) plus ``prange`` over bands of 4 rows of B (N, the
    batch x positions side), each band meeting all of A; when B has few rows
    (a batch of one), over bands of A's rows instead. Set the thread count with
    ``numba.set_num_threads``.
    """
    a_packed, b_packed, k = _check_packed_operands(a_packed, b_packed, k)
    out = np.empty((a_packed.shape[0], b_packed.shape[0]), dtype=np.int32)
    _xnor_parallel_kernel(a_packed, b_packed, k, out)
    return out


def xnor_gemm_float(A, B, kernel=xnor_parallel, pad_words_to: int = 8) -> np.ndarray:
    """``sign(A) @ sign(B)`` as ``int32``, by packing and an XNOR kernel.

    ``A`` is ``(M, K)`` and ``B`` is ``(K, N)``, real arrays, as for a float
    GEMM; ``A`` is packed along its last axis and ``B`` along its first, then
    ``kernel(a_packed, b_packed, K)`` computes the ``(M, N)`` result.
    """
    A = np.asarray(A)
    B = np.asarray(B)
    if A.ndim != 2 or B.ndim != 2:
        raise ShapeError(f"A and B must be 2-D, got shapes {A.shape} and {B.shape}")
    if A.shape[1] != B.shape[0]:
        raise ShapeError(f"A (M, K) and B (K, N) must share K, got shapes {A.shape} and {B.shape}")
    a_packed = pack_bits(A, axis=1, pad_words_to=pad_words_to)
    b_packed = pack_bits(B, axis=0, pad_words_to=pad_words_to)
    return kernel(a_packed, b_packed, A.shape[1])
