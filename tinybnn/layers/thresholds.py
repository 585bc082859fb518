"""Exact per-channel thresholds: a monotone float decision as one integer (or float) comparison.

Paper: thresholds in place of BatchNorm and sign, Umuroglu et al., "FINN" (FPGA 2017,
arXiv:1612.07119).

A binary layer whose output only feeds a max pooling and the next layer's
sign computes, per output channel f, the decision

    bit = decide(dot) = [ round32(dot * scale[f] + shift[f]) (then any per-channel
                          float32 multiply-add, e.g. a BatchNorm) >= 0 ]

for an integer ±1 dot product ``dot`` in [-K, K]. Every step is a monotone
function of ``dot`` — a product with a fixed number, a sum with a fixed
number and each rounding to float32 keep (or, for a negative factor,
reverse) the order — so the decision is non-decreasing in ``dot`` (scale > 0),
non-increasing (scale < 0) or constant (scale = 0). Therefore one integer
``threshold[f]`` and a direction ``flip[f]`` (+1 or -1) reproduce it for
EVERY possible dot::

    decide(dot) == (flip[f] * dot >= threshold[f])

found by bisection over the integers of [-K, K] with the very function the
unfused layers compute (passed in as ``decide``, evaluated on whole arrays),
so rounding, ``sign(0) = +1`` and ``-0.0`` are all accounted for: the
threshold is not a formula such as ``-shift / scale`` with its own rounding,
it is read off the float computation itself. A constant decision is
``(+1, -K)`` (always 1) or ``(+1, K + 1)`` (always 0).

Max pooling before the sign is then exact too: for a non-decreasing decision,
OR over a window of ``dot_i >= T`` is ``max_i dot_i >= T``; for a
non-increasing one, ``min_i dot_i <= T``. Both are ``max_i (flip dot_i) >=
threshold``.

:func:`float_thresholds` does the same over the float32 numbers for the
float first stage (``z`` the convolution's output, before a monotone
activation, the pooling and a BatchNorm), bisecting over float32 values in
their order. :func:`integer_thresholds_exhaustive` is the slow, obvious twin
of :func:`integer_thresholds`: it evaluates all 2K + 1 dots.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Decide = Callable[[np.ndarray], np.ndarray]
"""``decide(values)``: values of shape (F, m) (column m for channel f's m candidates) -> bool (F, m)."""


def _bisect(decide: Decide, lo: np.ndarray, hi: np.ndarray, values: Callable[[np.ndarray], np.ndarray]):
    """Per channel, (the smallest key in [lo, hi] whose decision is True when it is True at hi, False at lo;
    the largest one when it is True at lo, False at hi), by bisection over integer keys; and the
    decisions at both ends. ``values(keys)`` turns keys (F, m) into the numbers ``decide`` takes."""
    at_lo = decide(values(lo[:, None]))[:, 0]
    at_hi = decide(values(hi[:, None]))[:, 0]
    rising = at_hi & ~at_lo
    falling = at_lo & ~at_hi
    # invariant: the decision at `low` is at_lo and at `high` is at_hi (for the changing channels)
    low, high = lo.copy(), hi.copy()
    while True:
        open_ = (high - low > 1) & (rising | falling)
        if not open_.any():
            break
        mid = low + (high - low) // 2
        at_mid = decide(values(mid[:, None]))[:, 0]
        same_as_lo = at_mid == at_lo
        low = np.where(open_ & same_as_lo, mid, low)
        high = np.where(open_ & ~same_as_lo, mid, high)
    # rising: the first True is `high`; falling: the last True is `low`
    return np.where(rising, high, low), at_lo, at_hi, rising, falling


def integer_thresholds(decide: Decide, k: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(flip, threshold)`` int32 (channels,) with ``decide(dot)[f] == (flip[f] dot >= threshold[f])``
    for every integer dot in [-k, k], assuming ``decide`` is monotone in the dot (module docstring).

    ``decide`` gets int64 dots of shape (channels, m)."""
    lo = np.full(channels, -k, np.int64)
    hi = np.full(channels, k, np.int64)
    edge, at_lo, at_hi, rising, falling = _bisect(decide, lo, hi, lambda keys: keys)
    return _encode(edge, at_lo, rising, falling, k)


def _encode(edge, at_lo, rising, falling, k):
    flip = np.where(falling, -1, 1).astype(np.int32)
    constant = np.where(at_lo, -k, k + 1)
    threshold = np.where(rising, edge, np.where(falling, -edge, constant))
    return flip, threshold.astype(np.int32)


def integer_thresholds_exhaustive(decide: Decide, k: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The obvious twin of :func:`integer_thresholds`: ``decide`` on all 2k + 1 dots at once,
    then the first True (rising) or the last True (falling) read off the table."""
    dots = np.broadcast_to(np.arange(-k, k + 1, dtype=np.int64), (channels, 2 * k + 1))
    table = decide(dots)
    at_lo, at_hi = table[:, 0], table[:, -1]
    rising, falling = at_hi & ~at_lo, at_lo & ~at_hi
    first_true = -k + np.argmax(table, axis=1)
    last_true = k - np.argmax(table[:, ::-1], axis=1)
    edge = np.where(rising, first_true, last_true)
    return _encode(edge, at_lo, rising, falling, k)


def verified_integer_thresholds(decide: Decide, k: int, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`integer_thresholds`, checked against ``decide`` on all 2k + 1 dots; None where the
    decision is not monotone after all (an overflow to infinity times a zero gives NaN, whose sign
    is False), so that the caller keeps the unfused layers. The check costs channels (2k + 1)
    evaluations of ``decide``: a few million for ResNet's widest layers."""
    flip, threshold = integer_thresholds(decide, k, channels)
    dots = np.broadcast_to(np.arange(-k, k + 1, dtype=np.int64), (channels, 2 * k + 1))
    if not np.array_equal(apply_integer_thresholds(dots.T, flip, threshold).T, decide(dots)):
        return None
    return flip, threshold


def apply_integer_thresholds(dots: np.ndarray, flip: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """The decisions ``flip dot >= threshold`` for dots (..., channels)."""
    return flip * dots.astype(np.int64) >= threshold


# --- float32 values in their order -----------------------------------------------------------------
_POSITIVE_INFINITY_KEY = 0x7F800000


def float32_keys(values: np.ndarray) -> np.ndarray:
    """Integer keys in the order of the float32 values (-0.0 just below +0.0; NaN not allowed)."""
    bits = np.asarray(values, np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF) - 1, bits)


def float32_from_keys(keys: np.ndarray) -> np.ndarray:
    """The inverse of :func:`float32_keys`."""
    keys = np.asarray(keys, np.int64)
    bits = np.where(keys < 0, (-(keys + 1)) | -0x80000000, keys)
    return bits.astype(np.int32).view(np.float32)


def float_thresholds(decide: Decide, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(flip, threshold)`` for a decision on float32 values z, monotone in z:

    - ``flip[f] = +1``: ``decide(z)[f] == (z >= threshold[f])``;
    - ``flip[f] = -1``: ``decide(z)[f] == (z <= threshold[f])``;

    for every finite float32 z (and beyond: ±inf decide as the largest finite
    numbers do), found by bisection over the float32 numbers in their order.
    Infinities are left out of the search because an activation may not be
    defined there (relu as ``x * (x > 0)`` gives NaN at -inf). A decision that never changes is
    ``(+1, -inf)`` (always 1: every z >= -inf) or ``(+1, NaN)`` (always 0: no
    comparison with NaN is true). ``decide`` gets float32 values of shape
    (channels, m).
    """
    lo = np.full(channels, -_POSITIVE_INFINITY_KEY, np.int64)  # the most negative finite float32
    hi = np.full(channels, _POSITIVE_INFINITY_KEY - 1, np.int64)  # the largest finite float32
    edge, at_lo, at_hi, rising, falling = _bisect(decide, lo, hi, float32_from_keys)
    flip = np.where(falling, -1, 1).astype(np.int32)
    constant = np.where(at_lo, -np.inf, np.nan).astype(np.float32)
    threshold = np.where(rising | falling, float32_from_keys(edge), constant).astype(np.float32)
    return flip, threshold


def apply_float_thresholds(z: np.ndarray, flip: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """The decisions of :func:`float_thresholds` for values z (..., channels)."""
    return np.where(flip > 0, z >= threshold, z <= threshold)
