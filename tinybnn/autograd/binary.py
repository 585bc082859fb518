"""Binary convolution and dense layers for training: sign the input and the weights, then multiply.

``binary_conv2d(x, w)`` is the composition

    conv2d(det_sign(x, grad_cancel), det_sign(w), pad with ±1)

and the reference backend computes it just so: a float convolution on ±1
values (whose sums are exact integers). The backward pass, with G the
upstream gradient laid out as (F, N OH OW), ``cols`` the im2col matrix of
sign(x) and ``S = sign(w)``, is the convolution's, through the
straight-through estimator:

    dL/dw = (G @ cols) * (|w| <= 1)
    dL/dx = col2im(G^T @ S) * (|x| <= grad_cancel)

The fast backend's forward pass never builds a float matrix: it packs the
signs of the input and of the filters into bits (:mod:`tinybnn.gemm.bitconv`)
and takes the ±1 dot products with :func:`tinybnn.gemm.xnor_parallel`,
``K - 2 popcount(a XOR b)``, the same integers. Its backward runs the float
convolution's chunked GEMMs (:func:`tinybnn.autograd.conv.backward_in_chunks`)
in the same order on the same values, so gradients agree bit for bit with the
fast composition; ``cols`` is built a few images at a time and never whole.
``binary_linear`` is the dense version: y = sign(x) sign(W)^T.
"""

from __future__ import annotations

import numpy as np

from ..gemm import pack_bits, xnor_parallel
from ..gemm.bitconv import pack_channels, pack_filters, patch_dots
from ..workspace import empty
from .backends import SUMMED_IN_ANOTHER_ORDER, kernel
from .conv import (
    ChannelsLastPatches,
    ConvGeometry,
    backward_in_chunks,
    channel_rows,
    conv_backward_reference,
    conv_forward_reference,
    im2col_reference,
    weights_channels_last,
    weights_from_channels_last,
)
from .function import Context, Function
from .quantize import (
    sign,
    sign_fast,
    sign_reference,
    straight_through,
    straight_through_fast,
    straight_through_reference,
)


# ---- reference backend: the composition, in NumPy ----------------------------------------


def binary_conv_forward_reference(x: np.ndarray, w: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """conv(sign(x), sign(w)) with ±1 padding: a float GEMM on ±1 values (exact integers)."""
    y, _ = conv_forward_reference(sign_reference(x), sign_reference(w), None, geometry)
    return y


def binary_conv_backward_reference(
    grad: np.ndarray, x: np.ndarray, w: np.ndarray, geometry: ConvGeometry, grad_cancel: float, needs: tuple[bool, bool]
) -> tuple[np.ndarray | None, ...]:
    """(dx, dw): the convolution's gradients on sign(x) and sign(w), through the straight-through estimator."""
    cols = im2col_reference(sign_reference(x), geometry.kernel, geometry.stride, geometry.pad, geometry.pad_value)
    grad_x, grad_w, _ = conv_backward_reference(grad, cols, sign_reference(w), geometry, (*needs, False))
    return (
        None if grad_x is None else straight_through_reference(grad_x, x, grad_cancel),
        None if grad_w is None else straight_through_reference(grad_w, w, 1.0),
    )


def binary_dense_forward_reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sign(x) @ sign(w)^T: a float GEMM on ±1 values (exact integers)."""
    return sign_reference(x) @ sign_reference(w).T


# ---- fast backend: bits and XNOR-popcount forward, a backward in chunks ---------------------


def binary_conv_forward_fast(x: np.ndarray, w: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """:func:`binary_conv_forward_reference` by packing the signs into bits and XNOR-popcount."""
    (n, c), f, (oh, ow) = x.shape[:2], w.shape[0], geometry.out_hw
    dots, correction = patch_dots(
        pack_channels(x), pack_filters(w), c, geometry.kernel, geometry.stride, geometry.pad, geometry.pad_value
    )
    out = empty((f, n, oh, ow), x.dtype)
    np.subtract(dots.T.reshape(f, n, oh, ow), correction, out=out, casting="unsafe")
    return out.transpose(1, 0, 2, 3)


def binary_conv_backward_fast(
    grad: np.ndarray, x: np.ndarray, w: np.ndarray, geometry: ConvGeometry, grad_cancel: float, needs: tuple[bool, bool]
) -> tuple[np.ndarray | None, ...]:
    """:func:`binary_conv_backward_reference` by the float convolution's chunked backward, with
    the patches of sign(x) built a few images at a time and never whole."""
    need_x, need_w = needs
    patches = ChannelsLastPatches(x, geometry, signs=True)
    grad_x, grad_w = backward_in_chunks(
        channel_rows(grad), patches, weights_channels_last(sign_fast(w)), geometry, need_x, need_w
    )
    return (
        None if grad_x is None else straight_through_fast(grad_x, x, grad_cancel),
        None if grad_w is None else straight_through_fast(weights_from_channels_last(grad_w, w.shape), w, 1.0),
    )


def binary_dense_forward_fast(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`binary_dense_forward_reference` by packing the signs into bits and XNOR-popcount."""
    dots = xnor_parallel(pack_bits(x, axis=-1, pad_words_to=8), pack_bits(w, axis=-1, pad_words_to=8), x.shape[1])
    return dots.astype(x.dtype)


binary_conv_forward = kernel("binary_conv_forward", binary_conv_forward_reference, binary_conv_forward_fast)
binary_conv_backward = kernel(
    "binary_conv_backward", binary_conv_backward_reference, binary_conv_backward_fast, SUMMED_IN_ANOTHER_ORDER
)
binary_dense_forward = kernel("binary_dense_forward", binary_dense_forward_reference, binary_dense_forward_fast)


class BinaryConv2d(Function):
    """y = conv(sign(x), sign(w)) with ±1 padding; straight-through gradients."""

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        w: np.ndarray,
        stride=(1, 1),
        pad=(0, 0),
        pad_value: float = 1.0,
        grad_cancel: float = 1.0,
    ) -> np.ndarray:
        ctx.geometry = ConvGeometry.of(x.shape, w.shape, stride, pad, pad_value)
        ctx.grad_cancel = grad_cancel
        ctx.save_for_backward(x, w)
        return binary_conv_forward(x, w, ctx.geometry)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        x, w = ctx.saved_values
        return binary_conv_backward(grad, x, w, ctx.geometry, ctx.grad_cancel, ctx.needs_input_grad)


class BinaryLinear(Function):
    """y = sign(x) sign(w)^T; straight-through gradients."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, w: np.ndarray, grad_cancel: float = 1.0) -> np.ndarray:
        ctx.save_for_backward(x, w)
        ctx.grad_cancel = grad_cancel
        return binary_dense_forward(x, w)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        x, w = ctx.saved_values
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = straight_through(grad @ sign(w), x, ctx.grad_cancel)
        if ctx.needs_input_grad[1]:  # G^T sign(x) in w's layout, so that the mask is applied in place
            grad_w = straight_through(grad.T @ sign(x), w, 1.0)
        return grad_x, grad_w


def binary_conv2d(x, w, stride=1, pad=0, pad_value: float = 1.0, grad_cancel: float = 1.0):
    """conv2d(det_sign(x, grad_cancel), det_sign(w)) padded with ``pad_value``, by XNOR-popcount."""
    return BinaryConv2d.apply(x, w, stride=stride, pad=pad, pad_value=pad_value, grad_cancel=grad_cancel)


def binary_linear(x, w, grad_cancel: float = 1.0):
    """det_sign(x, grad_cancel) @ det_sign(w).T, by XNOR-popcount."""
    return BinaryLinear.apply(x, w, grad_cancel=grad_cancel)
