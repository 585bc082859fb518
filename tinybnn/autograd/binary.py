"""Binary convolution and dense layers for training, with XNOR-popcount forward passes.

``binary_conv2d(x, w)`` computes exactly what the obvious composition does,

    conv2d(det_sign(x, grad_cancel), det_sign(w), pad with ±1)

but its forward pass never builds a float matrix: it packs the signs of the
input and of the filters into bits (:mod:`tinybnn.gemm.bitconv`) and takes
the ±1 dot products with :func:`tinybnn.gemm.xnor_parallel`,
``K - 2 popcount(a XOR b)``, the same integers the float GEMM would give.

The backward pass needs float ±1 values after all, since gradients are
floats: with G the upstream gradient laid out as (F, N OH OW), ``cols`` the
im2col matrix of sign(x) and ``S = sign(w)``,

    dL/dw = (G @ cols) * (|w| <= 1)                 (straight-through estimator)
    dL/dx = col2im(G^T @ S) * (|x| <= grad_cancel)

through :func:`tinybnn.autograd.conv.conv_backward`, the very GEMMs the
composition's backward runs, in the same order on the same values, so
gradients agree bit for bit too; ``cols`` is built a few images at a time
and never whole. ``binary_linear`` is the dense
version: y = sign(x) sign(W)^T.
"""
from __future__ import annotations

import numpy as np

from ..gemm import pack_bits, xnor_parallel
from ..gemm.bitconv import pack_channels, pack_filters, patch_dots
from ..workspace import empty
from . import kernels
from .conv import channel_rows, check_conv_shapes, conv_backward, im2col, output_size, pair
from .function import Context, Function
from .layout import flat_in_memory_order
from .quantize import sign


def straight_through(grad: np.ndarray, x: np.ndarray, limit: float) -> np.ndarray:
    """grad where |x| <= limit, 0 elsewhere; in place, in one pass when the layouts allow."""
    flat = flat_in_memory_order(grad, x) if grad.dtype == x.dtype else None
    if flat is None:
        return grad * (np.abs(x) <= limit)
    kernels.pass_where_within(flat[0], flat[1], limit, flat[0])
    return grad


class SignPatches:
    """``patches(n0, n1)`` for :func:`~tinybnn.autograd.conv.conv_backward`: the im2col rows
    of sign(x[n0:n1]) padded with ``pad_value``.

    Each chunk's signs go in C order into one scratch array and its rows into
    one scratch matrix, both reused chunk after chunk (the first chunk is the
    largest), so that a chunk's patches stay in cache.
    """

    def __init__(self, x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int],
                 pad_value: float):
        self.x, self.kernel, self.stride, self.pad, self.pad_value = x, kernel, stride, pad, pad_value
        self.positions = output_size(x.shape[2], kernel[0], stride[0], pad[0]) * output_size(
            x.shape[3], kernel[1], stride[1], pad[1])
        self.images: np.ndarray | None = None
        self.rows: np.ndarray | None = None

    def __call__(self, n0: int, n1: int) -> np.ndarray:
        chunk = self.x[n0:n1]
        if self.images is None or self.rows is None:
            n, c = chunk.shape[:2]
            self.images = empty(chunk.shape, chunk.dtype)
            self.rows = empty((n * self.positions, c * self.kernel[0] * self.kernel[1]), chunk.dtype)
        images = self.images[:n1 - n0]
        flat = images.reshape(-1)
        if chunk.flags.c_contiguous:
            kernels.sign_into(chunk.reshape(-1), flat)
        else:
            images[...] = chunk
            kernels.sign_into(flat, flat)
        return im2col(images, self.kernel, self.stride, self.pad, self.pad_value,
                      out=self.rows[:(n1 - n0) * self.positions])


class BinaryConv2d(Function):
    """y = conv(sign(x), sign(w)) with ±1 padding, by XNOR-popcount; straight-through gradients."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, w: np.ndarray, stride=(1, 1), pad=(0, 0), pad_value: float = 1.0,
                grad_cancel: float = 1.0) -> np.ndarray:
        stride, pad = pair(stride, "stride"), pair(pad, "pad")
        oh, ow = check_conv_shapes(x.shape, w.shape, pad, stride)
        n, c = x.shape[:2]
        f = w.shape[0]
        dots, correction = patch_dots(pack_channels(x), pack_filters(w), c, w.shape[2:], stride, pad, pad_value)
        out = empty((f, n, oh, ow), x.dtype)
        np.subtract(dots.T.reshape(f, n, oh, ow), correction, out=out, casting="unsafe")
        ctx.save_for_backward(x, w)
        ctx.settings = (stride, pad, pad_value, grad_cancel)
        return out.transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        x, w = ctx.saved_values
        stride, pad, pad_value, grad_cancel = ctx.settings
        f = w.shape[0]
        needs = ctx.needs_input_grad
        grad_w, grad_x = conv_backward(channel_rows(grad), SignPatches(x, w.shape[2:], stride, pad, pad_value),
                                       sign(w).reshape(f, -1), x.shape, w.shape[2:], stride, pad, needs[1], needs[0])
        if grad_w is not None:
            grad_w = straight_through(grad_w.reshape(w.shape), w, 1.0)
        if grad_x is not None:
            grad_x = straight_through(grad_x, x, grad_cancel)
        return grad_x, grad_w


class BinaryLinear(Function):
    """y = sign(x) sign(w)^T by XNOR-popcount; straight-through gradients."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, w: np.ndarray, grad_cancel: float = 1.0) -> np.ndarray:
        dots = xnor_parallel(pack_bits(x, axis=-1, pad_words_to=8), pack_bits(w, axis=-1, pad_words_to=8), x.shape[1])
        ctx.save_for_backward(x, w)
        ctx.grad_cancel = grad_cancel
        return dots.astype(x.dtype)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        x, w = ctx.saved_values
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = straight_through(grad @ sign(w), x, ctx.grad_cancel)
        if ctx.needs_input_grad[1]:  # (sign(x)^T G)^T, as the composition's transpose computes it
            grad_w = straight_through((sign(x).T @ grad).T, w, 1.0)
        return grad_x, grad_w


def binary_conv2d(x, w, stride=1, pad=0, pad_value: float = 1.0, grad_cancel: float = 1.0):
    """conv2d(det_sign(x, grad_cancel), det_sign(w)) padded with ``pad_value``, by XNOR-popcount."""
    return BinaryConv2d.apply(x, w, stride=stride, pad=pad, pad_value=pad_value, grad_cancel=grad_cancel)


def binary_linear(x, w, grad_cancel: float = 1.0):
    """det_sign(x, grad_cancel) @ det_sign(w).T, by XNOR-popcount."""
    return BinaryLinear.apply(x, w, grad_cancel=grad_cancel)
