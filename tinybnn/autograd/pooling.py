"""Max and average pooling over (N, C, H, W) inputs.

For kernel (KH, KW) and stride (sh, sw), with OH = (H - KH) // sh + 1::

    max:  y[n, c, i, j] = max_{u<KH, v<KW} x[n, c, i sh + u, j sw + v]
    avg:  y[n, c, i, j] = mean_{u<KH, v<KW} x[n, c, i sh + u, j sw + v]

Backward: average pooling spreads g / (KH KW) over each window; max pooling
sends g to the position of the window's maximum (the first one, in row-major
order, when several tie, as PyTorch and MXNet do).

When the stride equals the kernel and the input divides evenly (LeNet's
2x2 / 2 pooling), windows do not overlap and a reshape gives them without
copying; otherwise ``sliding_window_view`` does.

Max pooling's forward and backward are kernels with two backends
(:mod:`.backends`): the NumPy formulas (``max_pool_reference``,
``max_pool_backward_reference``) and the Numba kernels of :mod:`.kernels`.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, ShapeError
from . import kernels
from .backends import FEW_ULPS, kernel
from .conv import output_size, pair
from .function import Context, Function
from .layout import channel_major, empty_nchw


def _check(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], where: str) -> tuple[int, int]:
    if x.ndim != 4:
        raise ShapeError(f"{where}: expected input of shape (N, C, H, W), got {x.shape}")
    if min(kernel) < 1 or min(stride) < 1:
        raise ArgumentError(f"{where}: kernel and stride must be positive, got {kernel} and {stride}")
    if kernel[0] > x.shape[2] or kernel[1] > x.shape[3]:
        raise ShapeError(f"{where}: kernel {kernel} is larger than the input {x.shape[2:]}")
    return output_size(x.shape[2], kernel[0], stride[0], 0), output_size(x.shape[3], kernel[1], stride[1], 0)


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Pooling windows of x as (N, C, OH, OW, KH, KW), a view when possible."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    n, c = x.shape[:2]
    if (kh, kw) == (sh, sw) and x.shape[2] == oh * kh and x.shape[3] == ow * kw:
        return x.reshape(n, c, oh, kh, ow, kw).transpose(0, 1, 2, 4, 3, 5)
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return windows[:, :, ::sh, ::sw][:, :, :oh, :ow]


def _scatter(per_position: np.ndarray, x_shape: tuple, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Add window gradients (N, C, OH, OW, KH, KW) back into an input-shaped array."""
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = per_position.shape[2:4]
    out = np.zeros(x_shape, dtype=per_position.dtype)
    for u in range(kh):
        for v in range(kw):
            out[:, :, u : u + sh * oh : sh, v : v + sw * ow : sw] += per_position[:, :, :, :, u, v]
    return out


def max_pool_reference(
    x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], with_argmax: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """(max of each window, flat index u * KW + v of its first maximum, or None without ``with_argmax``)."""
    out_hw = _check(x, kernel, stride, "max_pool2d")
    windows = _windows(x, kernel, stride, out_hw)
    flat = windows.reshape(*windows.shape[:4], -1)
    argmax = flat.argmax(axis=-1).astype(np.int32)
    return np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0], argmax if with_argmax else None


def max_pool_backward_reference(
    grad: np.ndarray, argmax: np.ndarray, x_shape: tuple, kernel: tuple[int, int], stride: tuple[int, int]
) -> np.ndarray:
    """Send each window's gradient to its argmax."""
    kh, kw = kernel
    one_hot = argmax[..., None] == np.arange(kh * kw)
    per_position = (grad[..., None] * one_hot).reshape(*grad.shape, kh, kw)
    return _scatter(per_position, x_shape, kernel, stride)


def max_pool_fast(
    x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], with_argmax: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`max_pool_reference` by the Numba kernels (unrolled for 2x2 windows with stride 2),
    into scratch arrays in x's layout."""
    oh, ow = _check(x, kernel, stride, "max_pool2d")
    layout = channel_major(x)
    out = empty_nchw((*x.shape[:2], oh, ow), x.dtype, like=x)
    argmax = empty_nchw(out.shape, np.int32, like=x) if with_argmax else np.empty((0, 0, 0, 0), np.int32)
    if kernel == stride == (2, 2):
        kernels.max_pool_2x2(x, out, argmax, with_argmax, layout)
    elif with_argmax:
        kernels.max_pool_forward(x, *kernel, *stride, out, argmax, layout)
    else:
        kernels.max_pool_values(x, *kernel, *stride, out, layout)
    return out, argmax if with_argmax else None


def max_pool_backward_fast(
    grad: np.ndarray, argmax: np.ndarray, x_shape: tuple, kernel: tuple[int, int], stride: tuple[int, int]
) -> np.ndarray:
    """:func:`max_pool_backward_reference` by the Numba kernels, into a scratch array in argmax's layout."""
    layout = channel_major(argmax)
    out = empty_nchw(x_shape, grad.dtype, like=argmax)
    if kernel == stride == (2, 2):
        return kernels.max_pool_backward_2x2(grad, argmax, out, layout)
    return kernels.max_pool_backward(grad, argmax, *kernel, *stride, out, layout)


max_pool = kernel("max_pool", max_pool_reference, max_pool_fast)
#: where windows overlap, a pixel's gradients are added in another order
max_pool_backward = kernel("max_pool_backward", max_pool_backward_reference, max_pool_backward_fast, FEW_ULPS)


class MaxPool2d(Function):
    """y = max over each window; the gradient goes to the (first) argmax."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel=(2, 2), stride=None) -> np.ndarray:
        kernel = pair(kernel, "kernel")
        stride = kernel if stride is None else pair(stride, "stride")
        out, argmax = max_pool(x, kernel, stride, with_argmax=ctx.needs_grad)
        ctx.save_for_backward(argmax)
        ctx.geometry = (x.shape, kernel, stride)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (argmax,) = ctx.saved_values
        x_shape, kernel, stride = ctx.geometry
        return max_pool_backward(grad, argmax, x_shape, kernel, stride)


class AvgPool2d(Function):
    """y = mean over each window; the gradient is g / (KH KW) over the window."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel=(2, 2), stride=None) -> np.ndarray:
        kernel = pair(kernel, "kernel")
        stride = kernel if stride is None else pair(stride, "stride")
        out_hw = _check(x, kernel, stride, "avg_pool2d")
        ctx.geometry = (x.shape, kernel, stride)
        return _windows(x, kernel, stride, out_hw).mean(axis=(4, 5))

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        x_shape, kernel, stride = ctx.geometry
        kh, kw = kernel
        share = (grad / (kh * kw))[..., None, None]
        per_position = np.broadcast_to(share, (*grad.shape, kh, kw))
        return _scatter(per_position, x_shape, kernel, stride)


def max_pool2d(x, kernel=2, stride=None):
    """Differentiable max pooling; ``stride`` defaults to the kernel."""
    return MaxPool2d.apply(x, kernel=kernel, stride=stride)


def avg_pool2d(x, kernel=2, stride=None):
    """Differentiable average pooling; ``stride`` defaults to the kernel."""
    return AvgPool2d.apply(x, kernel=kernel, stride=stride)
