"""Bit packing: the sign bits of a real array, 64 to a ``uint64`` word.

Conventions (docs/conventions.md lists all of them; the bits are defined here):

* ``sign(x) = +1 if x >= 0 else -1``; in particular ``sign(0) = +1``, and
  ``sign(-0.0) = +1`` too (``-0.0 >= 0``). NaN has no sign and is refused.
* One bit per value, packed along the reduction axis (K), least significant
  bit first: value ``k`` of a row goes to word ``k // 64``, bit ``k % 64``.
* The bit is 1 for +1 and 0 for -1.
* Tail bits (positions ``>= K`` of the last word) and any padding words are 0,
  in both operands of an XNOR GEMM, so ``popcount(a XOR b)`` never counts them.

Layout: :func:`pack_bits` moves the packed axis to the **last** position. An
array of shape ``(..., K, ...)`` packed along ``axis`` becomes
``(..., ..., Kw)`` with ``Kw = ceil(K / 64)`` (or more, if padded), the other
axes keeping their order. That is the layout the XNOR kernels want: a float
``A (M, K)`` packs along ``axis=-1`` to ``(M, Kw)``, and a float ``B (K, N)``
packs along ``axis=0`` to ``(N, Kw)``. :func:`unpack_bits` puts the axis back.

Padding: the fast XNOR kernels run fastest when ``Kw`` is a multiple of 8
words (one 512-bit vector). ``pack_bits(x, pad_words_to=8)`` appends zero
words up to that multiple; the result is still exact because padding words
are zero in both operands. :func:`packed_words` says how many words a given
``K`` takes.

Two implementations of the same function, tested against each other:

* :func:`pack_bits_numpy`, the obvious one: compare, shift each bit to its
  place, OR the 64 bits of each word together;
* :func:`pack_bits`, the fast one: a Numba kernel, parallel over rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinybnn.errors import ArgumentError, NotANumberError, ShapeError

WORD_BITS = 64
"""Bits per packed word (``uint64``)."""

_BIT_SHIFTS = np.arange(WORD_BITS, dtype=np.uint64)


def packed_words(k: int, pad_words_to: int = 1) -> int:
    """Number of ``uint64`` words holding ``k`` bits, rounded up to a multiple of ``pad_words_to``.

    ``packed_words(k) == ceil(k / 64)``; ``packed_words(1600, 8) == 32``.
    """
    k = _check_positive_int(k, "k")
    pad_words_to = _check_positive_int(pad_words_to, "pad_words_to")
    words = -(-k // WORD_BITS)
    return -(-words // pad_words_to) * pad_words_to


def binary_sign(x: np.ndarray) -> np.ndarray:
    """``sign(x)`` with ``sign(0) = +1``, as ``+1.0`` / ``-1.0`` in ``x``'s float dtype.

    Integer inputs give ``float64``. This is the float twin of packing:
    ``unpack_bits(pack_bits(x, axis), x.shape[axis], axis) == binary_sign(x)``.
    """
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return np.where(x >= 0, 1.0, -1.0).astype(dtype, copy=False)


# ----------------------------------------------------------------------------
# argument checks shared by both implementations
# ----------------------------------------------------------------------------


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ArgumentError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ArgumentError(f"{name} must be >= 1, got {value}")
    return int(value)


def _refuse_nan(name: str = "x"):
    # NaN has no sign; refusing it beats silently calling it -1.
    raise NotANumberError(f"{name} contains NaN, which has no sign to pack")


def _prepare(x, axis, pad_words_to, name: str = "x"):
    """Check ``x`` and return it as a C-contiguous 2-D ``(rows, K)`` array plus the output shape."""
    x = np.asarray(x)
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ArgumentError(f"{name} must be a real float or integer array to take its signs, got dtype {x.dtype}")
    if x.ndim == 0:
        raise ShapeError(f"{name} must have at least one axis to pack, got a 0-d array")
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ArgumentError(f"axis must be an int, got {type(axis).__name__} {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ArgumentError(f"axis {axis} is out of range for {name} of shape {x.shape}")
    pad_words_to = _check_positive_int(pad_words_to, "pad_words_to")
    k = x.shape[axis]
    if k == 0:
        raise ShapeError(f"cannot pack an empty axis: {name} has shape {x.shape}, axis {axis}")
    moved = np.moveaxis(x, axis, -1)
    lead = moved.shape[:-1]
    rows = np.ascontiguousarray(moved.reshape(-1, k))
    kw = packed_words(k, pad_words_to)
    return rows, lead, k, kw


# ----------------------------------------------------------------------------
# the obvious implementation
# ----------------------------------------------------------------------------


def pack_bits_numpy(x, axis: int = -1, pad_words_to: int = 1) -> np.ndarray:
    """Pack the sign bits of ``x`` along ``axis`` (obvious NumPy version).

    ``out[..., w] = OR over b in 0..63 of (x[..., 64*w + b] >= 0) << b``,
    with positions ``>= K`` read as 0. Same contract as :func:`pack_bits`.
    """
    rows, lead, k, kw = _prepare(x, axis, pad_words_to)
    if rows.dtype.kind == "f" and np.isnan(rows).any():
        _refuse_nan()
    bits = np.zeros((rows.shape[0], kw * WORD_BITS), dtype=np.uint64)
    bits[:, :k] = rows >= 0
    bits = bits.reshape(rows.shape[0], kw, WORD_BITS) << _BIT_SHIFTS
    packed = np.bitwise_or.reduce(bits, axis=-1)
    return packed.reshape(lead + (kw,))


# ----------------------------------------------------------------------------
# the fast implementation
# ----------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def _pack_rows(rows, kw):
    """Pack each row of a C-contiguous 2-D array into ``kw`` words (Numba, parallel over rows).

    Returns the packed words and, per row, whether it held a NaN (``v != v``).
    """
    n_rows, k = rows.shape
    out = np.zeros((n_rows, kw), dtype=np.uint64)
    has_nan = np.zeros(n_rows, dtype=np.bool_)
    n_full = k // 64
    for r in prange(n_rows):
        row = rows[r]
        nan = False
        for w in range(n_full):
            word = np.uint64(0)
            base = w * 64
            for b in range(64):
                v = row[base + b]
                word |= np.uint64(v >= 0) << np.uint64(b)
                nan |= v != v
            out[r, w] = word
        if k > n_full * 64:
            word = np.uint64(0)
            base = n_full * 64
            for b in range(k - base):
                v = row[base + b]
                word |= np.uint64(v >= 0) << np.uint64(b)
                nan |= v != v
            out[r, n_full] = word
        has_nan[r] = nan
    return out, has_nan


def pack_bits(x, axis: int = -1, pad_words_to: int = 1) -> np.ndarray:
    """Pack the sign bits of ``x`` along ``axis`` into ``uint64`` words (fast Numba version).

    Parameters
    ----------
    x : array of floats or integers, any shape, any memory layout.
    axis : the reduction axis K to pack along (default: the last).
    pad_words_to : round the number of words up to a multiple of this
        (use 8 for the fast XNOR kernels); the extra words are zero.

    Returns
    -------
    ``uint64`` array: ``x``'s shape with ``axis`` removed and a last axis of
    ``Kw = packed_words(K, pad_words_to)`` words. Bit ``b`` of word ``w`` is
    1 iff ``x[..., 64*w + b] >= 0``; tail bits and padding words are 0.

    Raises ``ArgumentError`` for a non-real dtype, NaNs, or a bad ``axis``,
    and ``ShapeError`` for a 0-d array or an empty axis.

    Optimizations: one pass over C-contiguous rows (a copy only if ``x`` is
    not laid out that way), ``prange`` over rows, the NaN check fused into the
    same pass; the 64-step bit loop compiles to vector compares (mask
    registers on AVX-512).
    """
    rows, lead, _, kw = _prepare(x, axis, pad_words_to)
    if rows.dtype not in (np.float32, np.float64, np.int64, np.int32):
        rows = rows.astype(np.float64)  # keep the number of compiled variants small
    packed, has_nan = _pack_rows(rows, kw)
    if has_nan.any():
        _refuse_nan()
    return packed.reshape(lead + (kw,))


def unpack_bits(packed, k: int, axis: int = -1, dtype=np.float32) -> np.ndarray:
    """Unpack ``uint64`` words to ``+1`` / ``-1`` values: the inverse of :func:`pack_bits`.

    ``packed`` has the words on its last axis; the first ``k`` bits of each
    row become values ``+1`` (bit 1) or ``-1`` (bit 0) of ``dtype``, and the
    new axis of length ``k`` is moved to position ``axis`` of the result, so
    that ``unpack_bits(pack_bits(x, axis), x.shape[axis], axis) == binary_sign(x)``.
    Padding words beyond ``ceil(k / 64)`` are ignored.
    """
    packed = np.asarray(packed)
    if packed.dtype != np.uint64:
        raise ArgumentError(f"packed must have dtype uint64, got {packed.dtype}")
    if packed.ndim == 0:
        raise ShapeError("packed must have at least one axis (the words), got a 0-d array")
    k = _check_positive_int(k, "k")
    kw = packed.shape[-1]
    if kw < packed_words(k):
        raise ShapeError(
            f"packed has {kw} words on its last axis (shape {packed.shape}), "
            f"fewer than the {packed_words(k)} that k={k} bits need"
        )
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ArgumentError(f"axis must be an int, got {type(axis).__name__} {axis!r}")
    if not -packed.ndim <= axis < packed.ndim:
        raise ArgumentError(f"axis {axis} is out of range for a result with {packed.ndim} axes")
    bits = (packed[..., :, None] >> _BIT_SHIFTS) & np.uint64(1)
    bits = bits.reshape(packed.shape[:-1] + (kw * WORD_BITS,))[..., :k]
    values = np.where(bits == 1, 1, -1).astype(dtype)
    return np.moveaxis(values, -1, axis)
