"""Batch normalization over the channel axis (axis 1) of (N, C) or (N, C, H, W).

Training mode, with the batch statistics over every axis but the channel's
(m values per channel)::

    mu = mean(x),  var = mean((x - mu)^2),  xhat = (x - mu) / sqrt(var + eps)
    y = gamma * xhat + beta
    running_mean <- momentum * running_mean + (1 - momentum) * mu     (MXNet's convention)
    running_var  <- momentum * running_var  + (1 - momentum) * var

Evaluation mode uses the running statistics in place of mu and var.

Backward (training), with gx = g * gamma::

    dbeta = sum g,  dgamma = sum g * xhat
    dx = (1 / sqrt(var + eps)) * (gx - mean(gx) - xhat * mean(gx * xhat))

In evaluation mode the statistics are constants, so dx = g * gamma / sqrt(var + eps).

Forward and backward are kernels with two backends (:mod:`.backends`):
:func:`forward_reference` and :func:`backward_reference` are these formulas
in NumPy; :func:`forward_fast` and :func:`backward_fast` run one Numba kernel
each (:mod:`.kernels`), a parallel loop over channels with float64 sums.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from . import kernels
from .backends import SUMMED_IN_ANOTHER_ORDER, kernel
from .function import Context, Function
from .layout import empty_like, empty_nchw


def _broadcast_shape(ndim: int, channels: int) -> tuple[int, ...]:
    return (1, channels) + (1,) * (ndim - 2)


def forward_reference(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray | None, var: np.ndarray | None, eps: float
) -> tuple[np.ndarray, ...]:
    """(y, xhat, inv_std, mean, var) with NumPy; batch statistics when ``mean`` is None."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = _broadcast_shape(x.ndim, x.shape[1])
    if mean is None:
        mean = x.mean(axis=axes)
        centered = x - mean.reshape(shape)
        var = np.mean(centered * centered, axis=axes)
    else:
        centered = x - mean.reshape(shape).astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    xhat = centered * inv_std.reshape(shape)
    return xhat * gamma.reshape(shape) + beta.reshape(shape), xhat, inv_std, mean, var


def backward_reference(
    grad: np.ndarray, xhat: np.ndarray, gamma: np.ndarray, inv_std: np.ndarray, training: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) with NumPy."""
    axes = (0,) if grad.ndim == 2 else (0, 2, 3)
    shape = _broadcast_shape(grad.ndim, grad.shape[1])
    grad_beta = grad.sum(axis=axes)
    grad_gamma = (grad * xhat).sum(axis=axes)
    gx = grad * gamma.reshape(shape)
    if training:
        count = grad.size // grad.shape[1]
        mean_gx = gx.sum(axis=axes) / count
        mean_gx_xhat = (gx * xhat).sum(axis=axes) / count
        grad_x = (gx - mean_gx.reshape(shape) - xhat * mean_gx_xhat.reshape(shape)) * inv_std.reshape(shape)
    else:
        grad_x = gx * inv_std.reshape(shape)
    return grad_x, grad_gamma, grad_beta


def _as_4d(a: np.ndarray) -> np.ndarray:
    return a.reshape(*a.shape, 1, 1) if a.ndim == 2 else a


def forward_fast(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray | None, var: np.ndarray | None, eps: float
) -> tuple[np.ndarray, ...]:
    """:func:`forward_reference` by one Numba kernel, ``prange`` over channels, statistics
    summed in float64 (returned in float64), outputs in scratch arrays in x's layout."""
    training = mean is None
    channels = x.shape[1]
    out = empty_nchw(x.shape, x.dtype, like=x)
    xhat = empty_like(out)
    mean = np.empty(channels) if mean is None else mean.astype(np.float64)
    var = np.empty(channels) if var is None else var.astype(np.float64)
    inv_std = np.empty(channels, x.dtype)
    kernels.batch_norm_forward(
        _as_4d(x),
        gamma.astype(x.dtype, copy=False),
        beta.astype(x.dtype, copy=False),
        eps,
        training,
        mean,
        var,
        inv_std,
        _as_4d(out),
        _as_4d(xhat),
    )
    return out, xhat, inv_std, mean, var


def backward_fast(
    grad: np.ndarray, xhat: np.ndarray, gamma: np.ndarray, inv_std: np.ndarray, training: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`backward_reference` by one Numba kernel, ``prange`` over channels, sums in float64."""
    channels = grad.shape[1]
    grad_x = empty_like(xhat)
    grad_gamma, grad_beta = np.empty(channels, grad.dtype), np.empty(channels, grad.dtype)
    kernels.batch_norm_backward(
        _as_4d(grad),
        _as_4d(xhat),
        gamma.astype(grad.dtype, copy=False),
        inv_std,
        training,
        _as_4d(grad_x),
        grad_gamma,
        grad_beta,
    )
    return grad_x, grad_gamma, grad_beta


batch_norm_forward = kernel("batch_norm_forward", forward_reference, forward_fast, SUMMED_IN_ANOTHER_ORDER)
batch_norm_backward = kernel("batch_norm_backward", backward_reference, backward_fast, SUMMED_IN_ANOTHER_ORDER)


class BatchNorm(Function):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta (see the module docstring)."""

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        gamma: np.ndarray,
        beta: np.ndarray,
        running_mean: np.ndarray,
        running_var: np.ndarray,
        training: bool = True,
        momentum: float = 0.9,
        eps: float = 1e-5,
    ) -> np.ndarray:
        if x.ndim not in (2, 4):
            raise ShapeError(f"batch_norm: expected (N, C) or (N, C, H, W), got {x.shape}")
        channels = x.shape[1]
        if gamma.shape != (channels,) or running_mean.shape != (channels,):
            raise ShapeError(f"batch_norm: input has {channels} channels, parameters have shape {gamma.shape}")
        if training and x.size == 0:
            raise ShapeError(f"batch_norm: training needs at least one value per channel, got shape {x.shape}")
        if training:
            out, xhat, inv_std, mean, var = batch_norm_forward(x, gamma, beta, None, None, eps)
            running_mean *= momentum
            running_mean += (1 - momentum) * mean
            running_var *= momentum
            running_var += (1 - momentum) * var
        else:
            out, xhat, inv_std, _, _ = batch_norm_forward(x, gamma, beta, running_mean, running_var, eps)
        ctx.save_for_backward(xhat, gamma, inv_std)
        ctx.training = training
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        xhat, gamma, inv_std = ctx.saved_values
        return batch_norm_backward(grad, xhat, gamma, inv_std, ctx.training)


def batch_norm(
    x,
    gamma,
    beta,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    training: bool = True,
    momentum: float = 0.9,
    eps: float = 1e-5,
):
    """Differentiable batch normalization; updates the running arrays in place when training."""
    return BatchNorm.apply(
        x,
        gamma,
        beta,
        running_mean=running_mean,
        running_var=running_var,
        training=training,
        momentum=momentum,
        eps=eps,
    )
