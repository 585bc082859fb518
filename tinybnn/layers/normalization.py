"""BatchNorm layer (formulas in :mod:`tinybnn.autograd.normalization`).

Paper: Ioffe and Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
Internal Covariate Shift" (ICML 2015, arXiv:1502.03167).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..autograd import Tensor, batch_norm
from ..errors import ArgumentError, ShapeError
from ..schema import Bool, Float, Obj
from .module import FLOAT32, Cost, Footprint, Module, Parameter, elementwise, float_cost, register_layer


@register_layer
class BatchNorm(Module):
    """Normalize each channel (axis 1), then scale by gamma and shift by beta.

    For x (N, C) or (N, C, H, W), per channel c::

        y = gamma[c] (x - mu[c]) / sqrt(var[c] + eps) + beta[c]

    Training mode: mu and var are the batch's mean and (biased) variance
    over every axis but the channel's, and the running statistics move
    towards them. Evaluation mode: mu and var are the running statistics.
    ``momentum`` follows MXNet: running = momentum * running + (1 - momentum) * batch
    (0.9 here is PyTorch's 0.1). ``fix_gamma=True`` keeps gamma at 1, as
    MXNet's default does; the default here is a learned gamma.

    After a binary layer, whose outputs are integers of order sqrt(K), it
    brings each channel back to a unit scale, and its shift decides where
    the next sign flips. In evaluation mode it is a per-channel multiply-add,
    which :func:`tinybnn.convert.convert_model` folds into the packed layer.
    """

    buffer_names = ("running_mean", "running_var")

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5, fix_gamma: bool = False):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ArgumentError(f"BatchNorm: momentum must lie in [0, 1), got {momentum}")
        if not eps > 0:
            raise ArgumentError(f"BatchNorm: eps must be positive, got {eps}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.fix_gamma = bool(fix_gamma)
        self.gamma: Parameter | Tensor | None = None
        self.beta: Parameter | None = None
        self.running_mean: np.ndarray | None = None
        self.running_var: np.ndarray | None = None

    config_schema = Obj(optional={"momentum": Float(0.0, 1.0), "eps": Float(0.0, 1.0), "fix_gamma": Bool()})

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """gamma, beta and the two running statistics: 4 C values."""
        if len(input_shape) not in (1, 3):
            raise ShapeError(f"BatchNorm: expected input (N, C) or (N, C, H, W), got shape {(1, *input_shape)}")
        return elementwise(input_shape, FLOAT32 * 4 * input_shape[0])

    def create_parameters(self, channels: int) -> None:
        ones = np.ones(channels, dtype=np.float32)
        self.gamma = Tensor(ones) if self.fix_gamma else Parameter(ones)
        self.beta = Parameter(np.zeros(channels, dtype=np.float32))
        self.running_mean = np.zeros(channels, dtype=np.float32)
        self.running_var = np.ones(channels, dtype=np.float32)

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        """After a 1-bit layer it is folded into that layer's scale and shift: nothing is stored."""
        cost = float_cost(self)
        return replace(cost, stored_bytes=0) if after_binary else cost

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 4):
            raise ShapeError(f"{self.label()}: expected input (N, C) or (N, C, H, W), got shape {x.shape}")
        if self.beta is None:
            self.create_parameters(x.shape[1])
        assert self.beta is not None and self.running_mean is not None and self.running_var is not None
        if x.shape[1] != self.beta.shape[0]:
            raise ShapeError(
                f"{self.label()}: input has {x.shape[1]} channels, the layer has "
                f"{self.beta.shape[0]} (input shape {x.shape})"
            )
        return batch_norm(
            x,
            self.gamma,
            self.beta,
            self.running_mean,
            self.running_var,
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )

    def config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "eps": self.eps, "fix_gamma": self.fix_gamma}
