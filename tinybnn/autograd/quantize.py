"""Quantizers: sign with straight-through estimators, and DoReFa k-bit quantization.

Papers: the straight-through estimator, Bengio, Léonard and Courville, "Estimating or
Propagating Gradients Through Stochastic Neurons" (2013, arXiv:1308.3432); det_sign with
its gradient cancelled where |x| > 1, Courbariaux, Hubara, Soudry, El-Yaniv and Bengio,
"Binarized Neural Networks" (BinaryNet, 2016, arXiv:1602.02830); approx_sign, Liu et al.,
"Bi-Real Net" (ECCV 2018, arXiv:1808.00278); k-bit weights and activations, Zhou et al.,
"DoReFa-Net" (2016, arXiv:1606.06160).

Conventions (also listed, with the bits, in docs/conventions.md):

- **sign(0) = +1**: ``sign(x) = +1 if x >= 0 else -1``.
- **det_sign** (BinaryNet's straight-through estimator): forward sign(x);
  backward ``g * (|x| <= grad_cancel)`` (default grad_cancel = 1). The true
  derivative of sign is 0 almost everywhere, which would stop learning; the
  estimator passes the gradient through as if sign were hardtanh.
- **approx_sign** (Bi-Real Net): forward sign(x); backward
  ``g * (2 - 2|x|)`` inside [-1, 1] and 0 outside, the derivative of a
  piecewise-quadratic approximation of sign.
- **DoReFa k-bit** (2 <= k <= 31), with n = 2^k - 1 levels above zero:
  ``quantize_k(x) = round(x * n) / n`` for x in [0, 1], gradient straight
  through the rounding (1). If every tanh(w) is 0 (or below the smallest
  normal float), all weights take the middle level.

  - activations: ``q = quantize_k(clip(x, 0, 1))``; gradient ``g * (0 <= x <= 1)``.
  - weights: ``w_q = 2 quantize_k(tanh(w) / (2 max|tanh(w)|) + 1/2) - 1``,
    a value in [-1, 1] on a grid of 2^k levels; gradient through tanh and the
    scaling, with max|tanh(w)| taken as a constant (as DoReFa implementations
    do), i.e. ``dw_q/dw = (1 - tanh(w)^2) / max|tanh(w)|``.

- 32 bits means no quantization (the identity).

The kernels ``sign``, ``sign_and_mask`` and ``straight_through`` are
declared here with both backends (:mod:`.backends`): ``*_reference`` is the
formula in NumPy, ``*_fast`` the same bits by one parallel Numba pass into
scratch memory that keeps the input's memory layout.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from ..workspace import empty
from . import kernels
from .backends import kernel
from .function import Context, Function
from .layout import empty_nchw, flat_in_memory_order
from .tensor import Tensor


def sign_reference(x: np.ndarray) -> np.ndarray:
    """+1 where x >= 0, -1 elsewhere (sign(0) = +1), in x's dtype."""
    return np.where(x >= 0, 1, -1).astype(x.dtype)


def sign_and_mask_reference(x: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """(sign(x), |x| <= limit): the forward value of det_sign and where its gradient passes."""
    return sign_reference(x), np.abs(x) <= limit


def straight_through_reference(grad: np.ndarray, x: np.ndarray, limit: float) -> np.ndarray:
    """grad where |x| <= limit, 0 elsewhere: the straight-through estimator's backward."""
    return grad * (np.abs(x) <= limit)


def _outputs_like(x: np.ndarray, *dtypes) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """(scratch arrays of x's shape in ``dtypes``, flat views of x and of them in one memory order).

    The arrays take x's layout (C order or channel-major, as batch norm's output
    is), so x is read in place; any other layout is copied to C order first.
    """
    outs = tuple(empty_nchw(x.shape, dtype, like=x) for dtype in dtypes)
    flat = flat_in_memory_order(x, *outs)
    if flat is None:
        outs = tuple(empty(x.shape, dtype) for dtype in dtypes)
        flat = (np.ascontiguousarray(x).reshape(-1), *(out.reshape(-1) for out in outs))
    return outs, flat


def sign_fast(x: np.ndarray) -> np.ndarray:
    """:func:`sign_reference` by one parallel Numba pass into a scratch array in x's layout (float inputs)."""
    if not np.issubdtype(x.dtype, np.floating):
        return sign_reference(x)
    (out,), flat = _outputs_like(x, x.dtype)
    kernels.sign_into(*flat)
    return out


def sign_and_mask_fast(x: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sign_and_mask_reference` in one parallel Numba pass, into scratch arrays in x's layout."""
    (out, passes), (flat_x, flat_out, flat_passes) = _outputs_like(x, x.dtype, np.bool_)
    kernels.sign_and_mask(flat_x, limit, flat_out, flat_passes)
    return out, passes


def straight_through_fast(grad: np.ndarray, x: np.ndarray, limit: float) -> np.ndarray:
    """:func:`straight_through_reference` in one parallel pass, written into ``grad`` (so pass a
    gradient nobody else reads): flat when both arrays share a layout, plane by plane for 4-D
    arrays in different layouts."""
    flat = flat_in_memory_order(grad, x) if grad.dtype == x.dtype else None
    if flat is None and grad.ndim == 4 and grad.shape == x.shape and grad.flags.writeable:
        return kernels.pass_where_within_planes(grad, x, grad.dtype.type(limit))
    if flat is None:
        return straight_through_reference(grad, x, limit)
    kernels.pass_where_within(flat[0], flat[1], limit, flat[0])
    return grad


sign = kernel("sign", sign_reference, sign_fast)
sign_and_mask = kernel("sign_and_mask", sign_and_mask_reference, sign_and_mask_fast)
straight_through = kernel("straight_through", straight_through_reference, straight_through_fast)


class DetSign(Function):
    """Forward sign(x); backward g where |x| <= grad_cancel, 0 elsewhere."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, grad_cancel: float = 1.0) -> np.ndarray:
        out, passes = sign_and_mask(x, grad_cancel)
        ctx.save_for_backward(passes)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (passes,) = ctx.saved_values
        return grad * passes


class ApproxSign(Function):
    """Forward sign(x); backward g (2 - 2|x|) where |x| <= 1, 0 elsewhere (Bi-Real Net)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_values
        return grad * np.maximum(2 - 2 * np.abs(x), 0).astype(grad.dtype, copy=False)


def quantize_levels(x: np.ndarray, bits: int) -> np.ndarray:
    """round(x (2^k - 1)) / (2^k - 1) for x in [0, 1]: the 2^k-level grid of DoReFa."""
    levels = (1 << bits) - 1
    return (np.round(x * levels) / levels).astype(x.dtype, copy=False)


class QuantizeActivation(Function):
    """DoReFa activations: forward quantize_k(clip(x, 0, 1)); backward g where 0 <= x <= 1."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, bits: int) -> np.ndarray:
        ctx.save_for_backward((x >= 0) & (x <= 1))
        return quantize_levels(np.clip(x, 0, 1), bits)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (inside,) = ctx.saved_values
        return grad * inside


class RoundStraightThrough(Function):
    """Forward quantize_k(x) for x in [0, 1]; backward g (straight through the rounding)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, bits: int) -> np.ndarray:
        return quantize_levels(x, bits)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        return grad


def check_bits(bits: int, name: str, where: str = "") -> int:
    """Refuse bit widths outside 1..32 with a message naming the argument."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 32:
        prefix = f"{where}: " if where else ""
        raise ArgumentError(f"{prefix}{name} must be an integer from 1 to 32, got {bits!r}")
    return int(bits)


def det_sign(x, grad_cancel: float = 1.0) -> Tensor:
    """sign(x) with the straight-through estimator (gradient where |x| <= grad_cancel).

    Forward ``+1 if x >= 0 else -1`` (sign(0) = +1); backward
    ``dL/dx = g * (|x| <= grad_cancel)``, the derivative of hardtanh:

    >>> import numpy as np
    >>> x = Tensor(np.array([-2.0, -1.0, 0.0, 0.5, 2.0], dtype=np.float32), requires_grad=True)
    >>> y = det_sign(x)
    >>> y.data
    array([-1., -1.,  1.,  1.,  1.], dtype=float32)
    >>> y.sum().backward()
    >>> x.grad
    array([0., 1., 1., 1., 0.], dtype=float32)
    """
    return DetSign.apply(x, grad_cancel=grad_cancel)


def approx_sign(x) -> Tensor:
    """sign(x) with Bi-Real Net's gradient: ``dL/dx = g * max(2 - 2|x|, 0)``.

    >>> import numpy as np
    >>> x = Tensor(np.array([-1.5, -0.5, 0.0, 0.5, 1.5], dtype=np.float32), requires_grad=True)
    >>> approx_sign(x).sum().backward()
    >>> x.grad
    array([0., 1., 2., 1., 0.], dtype=float32)
    """
    return ApproxSign.apply(x)


def quantize_activation(x, bits: int, grad_cancel: float = 1.0, method: str = "det_sign") -> Tensor:
    """Activations to ``bits`` bits: sign for 1 (``method`` det_sign or approx_sign),
    DoReFa for 2..31, the identity for 32."""
    bits = check_bits(bits, "act_bit")
    if bits == 32:
        return x
    if bits == 1:
        if method == "det_sign":
            return det_sign(x, grad_cancel)
        if method == "approx_sign":
            return approx_sign(x)
        raise ArgumentError(f"method must be 'det_sign' or 'approx_sign', got {method!r}")
    return QuantizeActivation.apply(x, bits=bits)


def quantize_weight(w: Tensor, bits: int) -> Tensor:
    """Weights to ``bits`` bits: sign for 1 (straight-through), DoReFa for 2..31, identity for 32.

    For k = ``bits`` in 2..31, ``2 round((tanh(w) / (2 max|tanh(w)|) + 1/2) (2^k - 1)) / (2^k - 1) - 1``:
    2^k levels evenly spaced in [-1, 1] (none of them 0):

    >>> import numpy as np
    >>> w = Tensor(np.array([-0.6, -0.2, 0.0, 0.2, 0.6], dtype=np.float32))
    >>> quantize_weight(w, 2).data.round(4)
    array([-1.    , -0.3333,  0.3333,  0.3333,  1.    ], dtype=float32)
    >>> quantize_weight(w, 1).data
    array([-1., -1.,  1.,  1.,  1.], dtype=float32)
    """
    bits = check_bits(bits, "weight_bit")
    if bits == 32:
        return w
    if bits == 1:
        return det_sign(w, grad_cancel=1.0)
    t = w.tanh()
    largest = float(np.abs(t.data).max())
    if largest <= np.finfo(t.dtype).tiny:  # all (near) zero: every weight sits at the middle level
        return 2.0 * RoundStraightThrough.apply(t * 0.0 + 0.5, bits=bits) - 1.0
    return 2.0 * RoundStraightThrough.apply(t / (2.0 * largest) + 0.5, bits=bits) - 1.0
