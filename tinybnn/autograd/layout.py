"""Memory layouts of (N, C, H, W) arrays: C order, or channel-major as convolution outputs are.

A convolution computes its output as the GEMM ``W @ cols^T`` of shape
(F, N OH OW) and hands it on as a transposed view (N, F, OH, OW): in memory
the array is (C, N, H, W), "channel-major". The elementwise kernels that
follow (sign, tanh's backward, the straight-through estimator, batch norm,
pooling) go through planes in memory order, so they give their outputs the
layout of their inputs and read and write sequentially either way.

The arrays come from :func:`tinybnn.workspace.empty`: taken from the current
workspace inside a training step, fresh otherwise.
"""

from __future__ import annotations

import numpy as np

from ..workspace import empty


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
    """An array of ``x``'s shape and dtype, in its layout when that is C order or
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
