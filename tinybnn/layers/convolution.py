"""Convolution: MXNet's 2-D convolution layer (NCHW), float weights.

Paper: convolutional networks trained by back-propagation, LeCun, Bottou, Bengio and Haffner,
"Gradient-Based Learning Applied to Document Recognition" (Proc. IEEE 1998; LeNet).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd import Tensor, conv2d
from ..autograd.conv import check_conv_shapes, pair
from ..errors import ArgumentError, ShapeError
from ..schema import PAIR, POSITIVE, Bool, Obj, Str
from .init import INITIALIZERS, bias_uniform, check_initializer, fans, initialize
from .module import FLOAT32, Cost, Filters, Footprint, Module, Parameter, float_cost, register_layer


def positive(value: int, name: str, where: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ArgumentError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def conv_geometry(
    config: dict[str, Any], input_shape: tuple[int, ...], where: str
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int, int]:
    """(kernel, stride, pad, OH, OW) of a convolution ``config`` on a (C, H, W) sample, checked."""
    kernel, stride, pad = check_geometry(config["kernel"], config["stride"], config["pad"], where)
    if len(input_shape) != 3:
        raise ShapeError(f"{where}: expected input (N, C, H, W), got shape {(1, *input_shape)}")
    oh, ow = check_conv_shapes((1, *input_shape), (1, input_shape[0], *kernel), pad, stride, where=where)
    return kernel, stride, pad, oh, ow


def check_geometry(kernel: Any, stride: Any, pad: Any, where: str) -> tuple:
    """Validate kernel (>= 1), stride (>= 1) and pad (>= 0) pairs at construction."""
    kernel, stride, pad = pair(kernel, "kernel"), pair(stride, "stride"), pair(pad, "pad")
    if min(kernel) < 1:
        raise ArgumentError(f"{where}: kernel must be positive, got {kernel}")
    if min(stride) < 1:
        raise ArgumentError(f"{where}: stride must be positive, got {stride}")
    if min(pad) < 0:
        raise ArgumentError(f"{where}: pad must be >= 0, got {pad}")
    return kernel, stride, pad


def check_pad_value(pad_value: float, where: str = "QConvolution") -> float:
    """``pad_value`` as a float, refused unless it is +1 or -1."""
    if pad_value not in (1, -1):
        raise ArgumentError(f"{where}: pad_value must be +1 or -1, got {pad_value!r}")
    return float(pad_value)


@register_layer
class Convolution(Module):
    """MXNet's 2-D convolution (NCHW) with float weights W (num_filter, C, KH, KW) and bias b.

    For input x (N, C, H, W), stride (sh, sw) and zero padding (ph, pw)::

        OH = (H + 2 ph - KH) // sh + 1,   OW = (W + 2 pw - KW) // sw + 1
        y[n, f, i, j] = b[f] + sum_{c, u, v} W[f, c, u, v] * xp[n, c, i sh + u, j sw + v]

    computed as im2col + one GEMM (:mod:`tinybnn.autograd.conv`). C is taken
    from the first input (deferred initialization). Weights are
    Kaiming-uniform (``weight_init="kaiming"``, PyTorch's default) or
    Xavier-uniform (``"xavier"``); the bias is U(+-1/sqrt(fan_in)).

    >>> import numpy as np
    >>> from tinybnn.autograd import Tensor
    >>> layer = Convolution(kernel=(5, 5), num_filter=64, rng=np.random.default_rng(0))
    >>> layer(Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape, layer.weight.shape
    ((2, 64, 24, 24), (64, 1, 5, 5))
    """

    def __init__(
        self,
        kernel,
        num_filter: int,
        stride=1,
        pad=0,
        no_bias: bool = False,
        weight_init: str = "kaiming",
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        where = type(self).__name__
        self.kernel, self.stride, self.pad = check_geometry(kernel, stride, pad, where)
        self.num_filter = positive(num_filter, "num_filter", where)
        self.no_bias = bool(no_bias)
        self.weight_init = check_initializer(weight_init)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.weight: Parameter | None = None
        self.bias: Parameter | None = None

    config_schema = Obj(
        {"kernel": PAIR, "num_filter": POSITIVE},
        {"stride": PAIR, "pad": PAIR, "no_bias": Bool(), "weight_init": Str(tuple(INITIALIZERS))},
    )

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """Weights F C KH KW (+ F biases); scratch: the padded input and its im2col patches."""
        (kh, kw), _, (ph, pw), oh, ow = conv_geometry(config, input_shape, cls.__name__)
        channels, height, width = input_shape
        filters = config["num_filter"]
        state = filters * channels * kh * kw + (0 if config["no_bias"] else filters)
        scratch = channels * (height + 2 * ph) * (width + 2 * pw) + oh * ow * channels * kh * kw
        return Footprint((filters, oh, ow), FLOAT32 * state, FLOAT32 * filters * oh * ow, FLOAT32 * scratch)

    def create_parameters(self, channels: int) -> None:
        shape = (self.num_filter, channels, *self.kernel)
        self.weight = Parameter(initialize(self.weight_init, shape, self.rng))
        if not self.no_bias:
            self.bias = Parameter(bias_uniform(self.num_filter, fans(shape)[0], self.rng))

    def check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ShapeError(f"{self.label()}: expected input (N, C, H, W), got shape {x.shape}")
        if self.weight is None:
            self.create_parameters(x.shape[1])
        assert self.weight is not None
        check_conv_shapes(x.shape, self.weight.shape, self.pad, self.stride, where=self.label())

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        """Float multiply-accumulates: every weight at every output position."""
        assert self.weight is not None
        return float_cost(self, self.weight.size * math.prod(y.shape[2:]))

    def drawn_filters(self) -> Filters | None:
        return None if self.weight is None else Filters("float", self.weight.data.copy(), 32)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return conv2d(x, self.weight, self.bias, stride=self.stride, pad=self.pad)

    def config(self) -> dict[str, Any]:
        return {
            "kernel": list(self.kernel),
            "num_filter": self.num_filter,
            "stride": list(self.stride),
            "pad": list(self.pad),
            "no_bias": self.no_bias,
            "weight_init": self.weight_init,
        }
