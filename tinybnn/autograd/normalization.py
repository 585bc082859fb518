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
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .function import Context, Function


def _broadcast_shape(ndim: int, channels: int) -> tuple[int, ...]:
    return (1, channels) + (1,) * (ndim - 2)


class BatchNorm(Function):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta (see the module docstring)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                running_mean: np.ndarray, running_var: np.ndarray, training: bool = True,
                momentum: float = 0.9, eps: float = 1e-5) -> np.ndarray:
        if x.ndim not in (2, 4):
            raise ShapeError(f"batch_norm: expected (N, C) or (N, C, H, W), got {x.shape}")
        channels = x.shape[1]
        if gamma.shape != (channels,) or running_mean.shape != (channels,):
            raise ShapeError(
                f"batch_norm: input has {channels} channels, parameters have shape {gamma.shape}"
            )
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = _broadcast_shape(x.ndim, channels)
        if training and x.size == 0:
            raise ShapeError(f"batch_norm: training needs at least one value per channel, got shape {x.shape}")
        if training:
            mean = x.mean(axis=axes)
            centered = x - mean.reshape(shape)
            var = np.mean(centered * centered, axis=axes)
            running_mean *= momentum
            running_mean += (1 - momentum) * mean
            running_var *= momentum
            running_var += (1 - momentum) * var
        else:
            centered = x - running_mean.reshape(shape).astype(x.dtype)
            var = running_var
        inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        xhat = centered * inv_std.reshape(shape)
        ctx.save_for_backward(xhat, gamma, inv_std)
        ctx.training = training
        ctx.axes = axes
        return xhat * gamma.reshape(shape) + beta.reshape(shape)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        xhat, gamma, inv_std = ctx.saved_values
        axes = ctx.axes
        shape = _broadcast_shape(grad.ndim, grad.shape[1])
        grad_beta = grad.sum(axis=axes)
        grad_gamma = (grad * xhat).sum(axis=axes)
        gx = grad * gamma.reshape(shape)
        if ctx.training:
            count = grad.size // grad.shape[1]
            mean_gx = gx.sum(axis=axes) / count
            mean_gx_xhat = (gx * xhat).sum(axis=axes) / count
            grad_x = (gx - mean_gx.reshape(shape) - xhat * mean_gx_xhat.reshape(shape)) * inv_std.reshape(shape)
        else:
            grad_x = gx * inv_std.reshape(shape)
        return grad_x, grad_gamma, grad_beta


def batch_norm(x, gamma, beta, running_mean: np.ndarray, running_var: np.ndarray,
               training: bool = True, momentum: float = 0.9, eps: float = 1e-5):
    """Differentiable batch normalization; updates the running arrays in place when training."""
    return BatchNorm.apply(x, gamma, beta, running_mean=running_mean, running_var=running_var,
                           training=training, momentum=momentum, eps=eps)
