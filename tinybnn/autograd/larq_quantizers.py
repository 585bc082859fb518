"""Larq's other quantizers: swish_sign, magnitude_aware_sign, ste_tern and ste_heaviside.

Each is a :class:`Function` whose forward is a hard step and whose backward
is a chosen pseudo-gradient, as Larq (larq.quantizers) defines them; g is
dL/dy and ``clip`` the straight-through window (Larq's ``clip_value``, 1 by
default; here the Q-layers' ``grad_cancel``).

- **swish_sign** (BNN+, Darabi et al., "Regularized binary network training",
  2018): forward sign(x) (sign(0) = +1); backward the derivative of the
  SignSwish SS_b(x) = 2 sigmoid(b x) (1 + b x (1 - sigmoid(b x))) - 1,
  b = beta (default 5)::

      dL/dx = g b (2 - b x tanh(b x / 2)) / (1 + cosh(b x))

  computed as ``g b (1 - (b x / 2) t) (1 - t^2)`` with t = tanh(b x / 2)
  (the same number, since 1 + cosh(b x) = 2 cosh^2(b x / 2)), which cannot
  overflow for large |x|.
- **magnitude_aware_sign** (Bi-Real Net, Liu et al., ECCV 2018): forward
  ``alpha * sign(x)`` with alpha = mean |x| per channel (every axis but
  ``axis`` averaged: axis 0, the output channel, for weights; axis 1 for
  activations), alpha held constant; backward ``g alpha (|x| <= clip)``.
- **ste_tern** (ternary weight networks, Li, Zhang and Liu, 2016): forward
  ``+1 if x >= d, -1 if x <= -d, 0 otherwise`` for a threshold d > 0
  (Larq's sign(sign(x + d) + sign(x - d)) with the three-valued sign; with
  d = 0 it is that sign, 0 at 0); d = ``threshold`` (default 0.05), or with
  ``ternary_weight_networks=True`` TWN's d = 0.7 mean|x| over the whole
  tensor; backward ``g (|x| <= clip)``.
- **ste_heaviside**: forward ``1 if x > 0 else 0`` (Larq's: 0 at 0);
  backward ``g (|x| <= clip)``.

:data:`ACTIVATION_QUANTIZERS` names every 1-bit activation quantizer a
QActivation accepts (``method=``), with the two of :mod:`.quantize`, and
:data:`WEIGHT_QUANTIZERS` the same for the weights of QConvolution and
QFullyConnected (``weight_method=``; magnitude_aware_sign per output channel);
:data:`SIGN_FORWARD` lists those whose forward is sign(x) itself, so that a
converter may replace them by the packed layer's own sign.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .function import Context, Function
from .quantize import approx_sign, det_sign, sign
from .tensor import Tensor

SWISH_BETA = 5.0
TERN_THRESHOLD = 0.05
TWN_FACTOR = 0.7


def inside(x: np.ndarray, clip: float, dtype) -> np.ndarray:
    """1 where |x| <= clip, 0 elsewhere, in ``dtype``: the straight-through window."""
    return (np.abs(x) <= clip).astype(dtype)


def swish_sign_slope(x: np.ndarray, beta: float = SWISH_BETA) -> np.ndarray:
    """d/dx of SignSwish: b (2 - b x tanh(b x / 2)) / (1 + cosh(b x)), overflow-free."""
    half = beta * x / 2
    t = np.tanh(half)
    return (beta * (1 - half * t) * (1 - t * t)).astype(x.dtype, copy=False)


class SwishSign(Function):
    """Forward sign(x); backward g b (2 - b x tanh(b x / 2)) / (1 + cosh(b x)) (BNN+'s SignSwish)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, beta: float = SWISH_BETA) -> np.ndarray:
        ctx.save_for_backward(x)
        ctx.beta = beta
        return sign(x)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_values
        return grad * swish_sign_slope(x, ctx.beta).astype(grad.dtype, copy=False)


def channel_magnitude(x: np.ndarray, axis: int) -> np.ndarray:
    """mean |x| over every axis but ``axis``, shaped to broadcast against x."""
    others = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    return np.abs(x).mean(axis=others, keepdims=True).astype(x.dtype, copy=False)


class MagnitudeAwareSign(Function):
    """Forward alpha sign(x), alpha = mean |x| per channel (constant); backward g alpha (|x| <= clip)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: int = 0, clip: float = 1.0) -> np.ndarray:
        alpha = channel_magnitude(x, axis)
        ctx.save_for_backward(alpha * inside(x, clip, x.dtype))
        return alpha * sign(x)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (slope,) = ctx.saved_values
        return grad * slope


def tern_threshold(x: np.ndarray, threshold: float = TERN_THRESHOLD, ternary_weight_networks: bool = False) -> float:
    """The ternary threshold d: ``threshold``, or TWN's 0.7 mean|x| over the whole tensor."""
    return float(TWN_FACTOR * np.abs(x).mean()) if ternary_weight_networks and x.size else float(threshold)


class StraightThroughStep(Function):
    """A step function whose forward saves the window (|x| <= clip); backward g inside it, 0 outside."""

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (passes,) = ctx.saved_values
        return grad * passes


class SteTern(StraightThroughStep):
    """Forward +1 if x >= d, -1 if x <= -d, else 0 (d > 0); backward g (|x| <= clip)."""

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        threshold: float = TERN_THRESHOLD,
        ternary_weight_networks: bool = False,
        clip: float = 1.0,
    ) -> np.ndarray:
        d = tern_threshold(x, threshold, ternary_weight_networks)
        ctx.save_for_backward(inside(x, clip, x.dtype))
        return np.sign(np.sign(x + d) + np.sign(x - d)).astype(x.dtype, copy=False)


class SteHeaviside(StraightThroughStep):
    """Forward 1 if x > 0 else 0; backward g (|x| <= clip)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, clip: float = 1.0) -> np.ndarray:
        ctx.save_for_backward(inside(x, clip, x.dtype))
        return (x > 0).astype(x.dtype)


def swish_sign(x, beta: float = SWISH_BETA) -> Tensor:
    """sign(x) with the SignSwish gradient ``g b (2 - b x tanh(b x / 2)) / (1 + cosh(b x))``, b = ``beta``.

    >>> x = Tensor(np.array([-1.0, 0.0, 0.2, 1.0]), requires_grad=True)
    >>> y = swish_sign(x)
    >>> y.data
    array([-1.,  1.,  1.,  1.])
    >>> y.sum().backward()
    >>> x.grad.round(4)                      # b = 5 at x = 0, negative beyond |x| ~ 0.48
    array([-0.195 ,  5.    ,  3.0237, -0.195 ])
    """
    return SwishSign.apply(x, beta=float(beta))


def magnitude_aware_sign(x, axis: int = 0, clip: float = 1.0) -> Tensor:
    """alpha sign(x), alpha = mean |x| per channel along ``axis``; gradient ``g alpha (|x| <= clip)``.

    >>> x = Tensor(np.array([[0.5, -1.5], [0.0, -0.2]]), requires_grad=True)
    >>> y = magnitude_aware_sign(x)          # rows are channels: alpha = 1.0 and 0.1
    >>> y.data
    array([[ 1. , -1. ],
           [ 0.1, -0.1]])
    >>> y.sum().backward()
    >>> x.grad
    array([[1. , 0. ],
           [0.1, 0.1]])
    """
    return MagnitudeAwareSign.apply(x, axis=int(axis), clip=float(clip))


def ste_tern(x, threshold: float = TERN_THRESHOLD, ternary_weight_networks: bool = False, clip: float = 1.0) -> Tensor:
    """-1, 0 or +1 around the threshold d (``threshold``, or 0.7 mean|x|); gradient ``g (|x| <= clip)``.

    >>> x = Tensor(np.array([-2.0, -0.05, 0.0, 0.04, 0.5]), requires_grad=True)
    >>> ste_tern(x).data
    array([-1., -1.,  0.,  0.,  1.])
    >>> ste_tern(x, ternary_weight_networks=True).data   # d = 0.7 * 0.518 = 0.3626
    array([-1.,  0.,  0.,  0.,  1.])
    >>> ste_tern(x).sum().backward()
    >>> x.grad
    array([0., 1., 1., 1., 1.])
    """
    return SteTern.apply(
        x, threshold=float(threshold), ternary_weight_networks=bool(ternary_weight_networks), clip=float(clip)
    )


def ste_heaviside(x, clip: float = 1.0) -> Tensor:
    """1 where x > 0, 0 elsewhere (0 at 0); gradient ``g (|x| <= clip)``.

    >>> x = Tensor(np.array([-2.0, 0.0, 0.5, 3.0]), requires_grad=True)
    >>> ste_heaviside(x).data
    array([0., 0., 1., 1.])
    >>> ste_heaviside(x).sum().backward()
    >>> x.grad
    array([0., 1., 1., 0.])
    """
    return SteHeaviside.apply(x, clip=float(clip))


#: 1-bit activation quantizers by name: (x, clip) -> Tensor; activations have their channels on axis 1
ACTIVATION_QUANTIZERS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "det_sign": lambda x, clip: det_sign(x, clip),
    "approx_sign": lambda x, clip: approx_sign(x),
    "swish_sign": lambda x, clip: swish_sign(x),
    "magnitude_aware_sign": lambda x, clip: magnitude_aware_sign(x, axis=1, clip=clip),
    "ste_tern": lambda x, clip: ste_tern(x, clip=clip),
    "ste_tern_twn": lambda x, clip: ste_tern(x, ternary_weight_networks=True, clip=clip),
    "ste_heaviside": lambda x, clip: ste_heaviside(x, clip=clip),
}

#: 1-bit weight quantizers by name: (w, clip) -> Tensor; the output channel is axis 0 of a weight
WEIGHT_QUANTIZERS: dict[str, Callable[[Tensor, float], Tensor]] = {
    **ACTIVATION_QUANTIZERS,
    "magnitude_aware_sign": lambda w, clip: magnitude_aware_sign(w, axis=0, clip=clip),
}

#: quantizers whose forward is sign(x) itself (sign(0) = +1); they differ only in their backward
SIGN_FORWARD = ("det_sign", "approx_sign", "swish_sign")


def quantize_by_name(x: Tensor, method: str, clip: float = 1.0) -> Tensor:
    """The 1-bit activation quantizer ``method`` of :data:`ACTIVATION_QUANTIZERS` applied to x."""
    return ACTIVATION_QUANTIZERS[method](x, clip)


def quantize_weight_by_name(w: Tensor, method: str, clip: float = 1.0) -> Tensor:
    """The 1-bit weight quantizer ``method`` of :data:`WEIGHT_QUANTIZERS` applied to w."""
    return WEIGHT_QUANTIZERS[method](w, clip)
