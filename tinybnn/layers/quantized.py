"""Binary and k-bit layers: drop-in replacements for the float ones (BMXNet's Q-layers).

A Q-layer keeps float ("latent") weights for training and, in every forward
pass, quantizes its input to ``act_bit`` bits and its weights to
``weight_bit`` bits (:mod:`tinybnn.autograd.quantize`), then runs the float
operation on the quantized values. With ``act_bit = weight_bit = 1`` a
convolution computes, for each output element, the ±1 dot product

    y = sum_k sign(x_k) sign(w_k) = K - 2 popcount(bits(x) XOR bits(w))

(SPEC.md's XNOR convention: the same number the float path gives on ±1
values, not BMXNet's (K + dot) / 2), which is what makes the packed
inference path exact.

- **Speed**: with ``act_bit = weight_bit = 1`` the forward pass runs on packed
  bits with XNOR-popcount (:mod:`tinybnn.autograd.binary`), giving the same
  integers as the float operation on ±1 values; the backward pass uses the
  float GEMMs on ±1 values that the straight-through estimator needs.
- **Padding** of binary convolutions happens *after* binarization, with
  ``pad_value`` (±1, default +1), never 0: a 0 would be a third value that
  the packed bits cannot hold. k-bit and float inputs are padded with 0.
- **Scaling** (XNOR-Net): ``scaling_factor=True`` multiplies output channel f
  by ``alpha_f = mean |W_f|`` over its C KH KW latent weights; the gradient
  flows into alpha as well.
- **Latent weights** of ``weight_bit=1`` layers are clipped to [-1, 1] after
  every optimizer step: the weight :class:`Parameter` carries the constraint
  ``clip=(-1, 1)`` and every optimizer applies it after updating. Outside
  [-1, 1] the straight-through estimator would pass no gradient anyway, so a
  weight that wandered there could never come back.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor, conv2d
from ..autograd.binary import binary_conv2d, binary_linear
from ..autograd.quantize import check_bits, quantize_activation, quantize_weight
from ..errors import ArgumentError
from .convolution import Convolution
from .dense import FullyConnected
from .module import Module

METHODS = ("det_sign", "approx_sign")


def check_pad_value(pad_value: float) -> float:
    if pad_value not in (1, -1):
        raise ArgumentError(f"QConvolution: pad_value must be +1 or -1, got {pad_value!r}")
    return float(pad_value)


def channel_scale(weight: Tensor) -> Tensor:
    """XNOR-Net's alpha: mean |W| over every axis but the first, one per output channel."""
    return weight.abs().mean(axis=tuple(range(1, weight.ndim)))


class QActivation(Module):
    """Quantize activations to ``act_bit`` bits: sign for 1 bit (``method`` ``"det_sign"``
    with gradient where |x| <= grad_cancel, or ``"approx_sign"``), DoReFa for 2..31,
    identity for 32."""

    def __init__(self, act_bit: int = 1, grad_cancel: float = 1.0, method: str = "det_sign"):
        super().__init__()
        self.act_bit = check_bits(act_bit, "act_bit", "QActivation")
        if method not in METHODS:
            raise ArgumentError(f"QActivation: method must be one of {METHODS}, got {method!r}")
        if not grad_cancel > 0:
            raise ArgumentError(f"QActivation: grad_cancel must be positive, got {grad_cancel!r}")
        self.grad_cancel = float(grad_cancel)
        self.method = method

    def forward(self, x: Tensor) -> Tensor:
        return quantize_activation(x, self.act_bit, self.grad_cancel, self.method)

    def config(self) -> dict[str, Any]:
        return {"act_bit": self.act_bit, "grad_cancel": self.grad_cancel, "method": self.method}


class QConvolution(Convolution):
    """Convolution on quantized input and weights (see the module docstring).

    ``y = conv2d(q_a(x), q_w(W), pad with pad_value) [* alpha] [+ b]``
    """

    def __init__(self, kernel, num_filter: int, stride=1, pad=0, act_bit: int = 1, weight_bit: int = 1,
                 scaling_factor: bool = False, pad_value: float = 1.0, no_bias: bool = True,
                 weight_init: str = "kaiming", rng: np.random.Generator | None = None):
        super().__init__(kernel, num_filter, stride=stride, pad=pad, no_bias=no_bias,
                         weight_init=weight_init, rng=rng)
        self.act_bit = check_bits(act_bit, "act_bit", "QConvolution")
        self.weight_bit = check_bits(weight_bit, "weight_bit", "QConvolution")
        self.scaling_factor = bool(scaling_factor)
        self.pad_value = check_pad_value(pad_value)

    def create_parameters(self, channels: int) -> None:
        super().create_parameters(channels)
        if self.weight_bit == 1:
            self.weight.clip = (-1.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        if self.act_bit == 1 and self.weight_bit == 1:  # XNOR-popcount forward, same numbers
            y = binary_conv2d(x, self.weight, stride=self.stride, pad=self.pad, pad_value=self.pad_value)
        else:
            xq = quantize_activation(x, self.act_bit)
            wq = quantize_weight(self.weight, self.weight_bit)
            y = conv2d(xq, wq, stride=self.stride, pad=self.pad, pad_value=0.0)
        if self.scaling_factor:
            y = y * channel_scale(self.weight).reshape(1, -1, 1, 1)
        return y if self.bias is None else y + self.bias.reshape(1, -1, 1, 1)

    def config(self) -> dict[str, Any]:
        config = super().config()
        config.update(act_bit=self.act_bit, weight_bit=self.weight_bit,
                      scaling_factor=self.scaling_factor, pad_value=self.pad_value)
        return config


class QFullyConnected(FullyConnected):
    """Fully connected layer on quantized input and weights:
    ``y = q_a(x) q_w(W)^T [* alpha] [+ b]``."""

    def __init__(self, num_hidden: int, act_bit: int = 1, weight_bit: int = 1, scaling_factor: bool = False,
                 no_bias: bool = True, weight_init: str = "kaiming", rng: np.random.Generator | None = None):
        super().__init__(num_hidden, no_bias=no_bias, weight_init=weight_init, rng=rng)
        self.act_bit = check_bits(act_bit, "act_bit", "QFullyConnected")
        self.weight_bit = check_bits(weight_bit, "weight_bit", "QFullyConnected")
        self.scaling_factor = bool(scaling_factor)

    def create_parameters(self, features: int) -> None:
        super().create_parameters(features)
        if self.weight_bit == 1:
            self.weight.clip = (-1.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.flat_input(x)
        if self.act_bit == 1 and self.weight_bit == 1:  # XNOR-popcount forward, same numbers
            y = binary_linear(x, self.weight)
        else:
            y = quantize_activation(x, self.act_bit) @ quantize_weight(self.weight, self.weight_bit).T
        if self.scaling_factor:
            y = y * channel_scale(self.weight)
        return y if self.bias is None else y + self.bias

    def config(self) -> dict[str, Any]:
        config = super().config()
        config.update(act_bit=self.act_bit, weight_bit=self.weight_bit, scaling_factor=self.scaling_factor)
        return config
