"""Elementwise, reduction and shape operations with their derivatives.

Each class documents the forward formula and the gradient it returns for an
upstream gradient ``g = dL/dz``. Broadcasting is undone in one place
(:func:`tinybnn.autograd.graph.unbroadcast`), so the backward methods here
return gradients in the broadcast shape.

Tanh's forward and backward are kernels with two backends (:mod:`.backends`):
the NumPy formula, and the same values in one pass into scratch memory.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import kernels
from .backends import FEW_ULPS, kernel
from .function import Context, Function
from .layout import empty_like, flat_in_memory_order


class Add(Function):
    """z = a + b;  dz/da = 1, dz/db = 1."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        return grad, grad


class Sub(Function):
    """z = a - b;  dz/da = 1, dz/db = -1."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        return grad, -grad


class Mul(Function):
    """z = a * b;  dz/da = b, dz/db = a."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        a, b = ctx.saved_values
        return grad * b, grad * a


class Div(Function):
    """z = a / b;  dz/da = 1/b, dz/db = -a/b^2."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        a, b = ctx.saved_values
        grad_a = grad / b
        return grad_a, -grad_a * a / b


class Neg(Function):
    """z = -a;  dz/da = -1."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return -a

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        return -grad


class Pow(Function):
    """z = a^p for a constant exponent p;  dz/da = p * a^(p-1)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, exponent: float) -> np.ndarray:
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a**exponent

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (a,) = ctx.saved_values
        p = ctx.exponent
        return grad * (p * a ** (p - 1))


class MatMul(Function):
    """Z = A @ B for A (..., m, k), B (..., k, n);  dA = G @ B^T, dB = A^T @ G."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs operands of rank >= 2, got {a.shape} @ {b.shape}")
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        a, b = ctx.saved_values
        grad_a = grad @ np.swapaxes(b, -1, -2) if ctx.needs_input_grad[0] else None
        grad_b = np.swapaxes(a, -1, -2) @ grad if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


class Sum(Function):
    """z = sum of a over ``axis``;  every summed element gets g."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
        ctx.shape = a.shape
        ctx.axes = _axes(axis, a.ndim)
        ctx.keepdims = keepdims
        return np.sum(a, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        if not ctx.keepdims:
            grad = np.expand_dims(grad, ctx.axes)
        return np.broadcast_to(grad, ctx.shape)


class Mean(Function):
    """z = mean of a over ``axis`` (n elements each);  every element gets g / n."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
        ctx.shape = a.shape
        ctx.axes = _axes(axis, a.ndim)
        ctx.keepdims = keepdims
        ctx.count = int(np.prod([a.shape[i] for i in ctx.axes]))
        return np.mean(a, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        if not ctx.keepdims:
            grad = np.expand_dims(grad, ctx.axes)
        return np.broadcast_to(grad / ctx.count, ctx.shape)


class Max(Function):
    """z = max of a over ``axis``.

    The gradient goes to the maximal elements; when several elements tie for
    the maximum it is shared equally between them (a subgradient).
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis: int | None = None, keepdims: bool = False):
        axes = _axes(axis, a.ndim)
        out = np.max(a, axis=axes, keepdims=True)
        ctx.save_for_backward(a == out)
        ctx.axes = axes
        return out if keepdims else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (is_max,) = ctx.saved_values
        grad = grad.reshape([1 if i in ctx.axes else n for i, n in enumerate(is_max.shape)])
        share = is_max / is_max.sum(axis=ctx.axes, keepdims=True)
        return grad * share.astype(grad.dtype)


class Reshape(Function):
    """z = a viewed with a new shape;  the gradient is g viewed back."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(ctx.shape)


class Transpose(Function):
    """z = a with permuted axes;  the gradient is g with the inverse permutation."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axes: tuple[int, ...] | None = None) -> np.ndarray:
        ctx.axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(axes)
        return np.transpose(a, ctx.axes)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        return np.transpose(grad, np.argsort(ctx.axes))


class Exp(Function):
    """z = e^a;  dz/da = z."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_values
        return grad * out


class Log(Function):
    """z = ln a;  dz/da = 1/a."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (a,) = ctx.saved_values
        return grad / a


def tanh_backward_reference(grad: np.ndarray, out: np.ndarray) -> np.ndarray:
    """g (1 - z^2) for z = tanh a."""
    return grad * (1 - out * out)


def tanh_fast(a: np.ndarray) -> np.ndarray:
    """np.tanh into a scratch array in a's layout (the same values as ``np.tanh(a)``)."""
    return np.tanh(a, out=empty_like(a))


def tanh_backward_fast(grad: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`tanh_backward_reference` in one parallel Numba pass into a scratch array."""
    result = empty_like(out)
    flat = flat_in_memory_order(grad, out, result) if grad.dtype == out.dtype else None
    if flat is None:
        return tanh_backward_reference(grad, out)
    kernels.tanh_backward_into(*flat)
    return result


tanh = kernel("tanh", np.tanh, tanh_fast)
tanh_backward = kernel("tanh_backward", tanh_backward_reference, tanh_backward_fast, FEW_ULPS)


class Tanh(Function):
    """z = tanh a;  dz/da = 1 - z^2."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_values
        return tanh_backward(grad, out)


class ReLU(Function):
    """z = max(a, 0);  dz/da = 1 where a > 0, else 0."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        positive = a > 0
        ctx.save_for_backward(positive)
        return a * positive

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (positive,) = ctx.saved_values
        return grad * positive


class Sigmoid(Function):
    """z = 1 / (1 + e^-a);  dz/da = z (1 - z). Computed without overflow."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        e = np.exp(-np.abs(a))
        out = np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_values
        return grad * out * (1 - out)


class HardTanh(Function):
    """z = clip(a, low, high);  dz/da = 1 where low <= a <= high, else 0."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, low: float = -1.0, high: float = 1.0) -> np.ndarray:
        inside = (a >= low) & (a <= high)
        ctx.save_for_backward(inside)
        return np.clip(a, low, high)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (inside,) = ctx.saved_values
        return grad * inside


class Dropout(Function):
    """Inverted dropout: z = a * m / (1 - p), with m ~ Bernoulli(1 - p) drawn from ``rng``.

    dz/da = m / (1 - p). At evaluation time (``training=False``) z = a.
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, p: float, rng: np.random.Generator, training: bool = True) -> np.ndarray:
        if not training or p == 0.0:
            ctx.scale = None
            return a
        keep = rng.random(a.shape) >= p
        scale = (keep / (1.0 - p)).astype(a.dtype)
        ctx.scale = scale
        return a * scale

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        return grad if ctx.scale is None else grad * ctx.scale


class Abs(Function):
    """z = |a|;  dz/da = sign(a), taken as +1 at 0 (sign(0) = +1)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a >= 0)
        return np.abs(a)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (nonnegative,) = ctx.saved_values
        return np.where(nonnegative, grad, -grad)
