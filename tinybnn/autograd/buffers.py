"""Reusing large scratch arrays across batches instead of allocating fresh ones.

A fresh array of tens of megabytes comes from the operating system as new
pages, and touching each 4 KB page the first time costs a page fault: for
LeNet's im2col matrices and feature maps that is milliseconds per batch.
Training and inference ask for arrays of the same shapes batch after batch,
so :func:`empty` hands back an array of the requested shape and dtype that an
earlier batch used, once nothing refers to it any more.

"Nothing refers to it" is read from CPython's reference count: the pool holds
one reference; any tensor, view (``view.base``) or saved context that still
uses the array holds another, and the array is then not handed out. So the
pool can never give away memory that is in use; at worst it allocates.
Small arrays (under 64 KB) are not pooled: allocating them is cheap.
"""
from __future__ import annotations

import sys
import threading

import numpy as np

MIN_BYTES = 64 * 1024
#: arrays kept per (shape, dtype); enough for the arrays one batch holds at once
PER_KEY = 4

_free: dict[tuple, list[np.ndarray]] = {}
_lock = threading.Lock()


def empty(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An uninitialized array like ``np.empty(shape, dtype)``, reused when one is free."""
    dtype = np.dtype(dtype)
    shape = tuple(int(n) for n in shape)
    if dtype.itemsize * int(np.prod(shape)) < MIN_BYTES:
        return np.empty(shape, dtype)
    key = (shape, dtype.str)
    with _lock:
        slots = _free.setdefault(key, [])
        for array in slots:
            # references: the list, the loop variable, getrefcount's argument
            if sys.getrefcount(array) == 3:
                return array
        array = np.empty(shape, dtype)
        if len(slots) < PER_KEY:
            slots.append(array)
        return array


def channel_major(x: np.ndarray) -> bool:
    """True if a 4-D (N, C, H, W) array lies in memory as (C, N, H, W), as convolution outputs do."""
    return x.ndim == 4 and x.shape[0] > 1 and x.shape[1] > 1 and 0 < x.strides[1] == x.shape[0] * x.strides[0]


def empty_nchw(shape: tuple[int, ...], dtype=np.float32, like: np.ndarray | None = None) -> np.ndarray:
    """An (N, C, H, W) array laid out in memory like ``like``: (C, N, H, W) if ``like``
    is channel-major, else C order (always C order when ``like`` is not 4-D). Kernels
    that go through planes in memory order then read and write sequentially."""
    if like is not None and channel_major(like):
        n, c, h, w = shape
        return empty((c, n, h, w), dtype).transpose(1, 0, 2, 3)
    return empty(shape, dtype)


def empty_like(x: np.ndarray) -> np.ndarray:
    """A pooled array of ``x``'s shape and dtype, in its layout when that is C order or
    channel-major; otherwise a plain ``np.empty_like``."""
    if x.flags.c_contiguous:
        return empty(x.shape, x.dtype)
    if channel_major(x):
        return empty_nchw(x.shape, x.dtype, like=x)
    return np.empty_like(x)


def flat_in_memory_order(*arrays: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """Flat views of arrays that share one shape and one layout (C order or channel-major),
    element i of each being the same (n, c, y, x); None when they do not."""
    first = arrays[0]
    if any(a.shape != first.shape for a in arrays):
        return None
    if all(a.flags.c_contiguous for a in arrays):
        return tuple(a.reshape(-1) for a in arrays)
    if all(channel_major(a) and a.transpose(1, 0, 2, 3).flags.c_contiguous for a in arrays):
        return tuple(a.transpose(1, 0, 2, 3).reshape(-1) for a in arrays)
    return None
