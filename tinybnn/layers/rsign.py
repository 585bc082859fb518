"""RSign: sign with a learnable threshold per channel (ReActNet).

Liu, Shen, Savvides, Cheng, "ReActNet: Towards Precise Binary Neural Network
with Generalized Activation Functions" (ECCV 2020).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..autograd.larq_quantizers import SIGN_FORWARD, quantize_by_name
from ..errors import ArgumentError, NotANumberError, ShapeError
from ..schema import Obj, Str
from .module import FLOAT32, Footprint, Module, Parameter, elementwise, register_layer
from .quantized import contains_nan

#: the estimators RSign may use: quantizers whose forward is sign itself
SIGN_METHODS = SIGN_FORWARD


def per_channel(values: Tensor, ndim: int) -> Tensor:
    """A (C,) tensor shaped to broadcast along axis 1 of an input of rank ``ndim``."""
    return values.reshape(1, -1, *([1] * (ndim - 2)))


@register_layer
class RSign(Module):
    """y = sign(x - alpha_c): sign with a learnable threshold alpha_c per channel (axis 1).

    Forward, for x (N, C) or (N, C, H, W)::

        y = +1 if x - alpha_c >= 0 else -1          (sign(0) = +1)

    Backward, with u = x - alpha_c and the estimator of ``method`` (default
    "det_sign", the straight-through estimator: s'(u) = 1 where |u| <= 1, 0
    elsewhere; "approx_sign", ReActNet's choice: s'(u) = max(2 - 2|u|, 0);
    or "swish_sign", see :mod:`tinybnn.autograd.larq_quantizers`)::

        dL/dx = g s'(u),        dL/dalpha_c = -sum over n (, h, w) of g s'(u)

    alpha starts at 0 (RSign is then sign). The output is ±1, so a
    following 1-bit QConvolution, whose own sign leaves ±1 unchanged, sees
    exactly sign(x - alpha); the converter keeps RSign as a float layer in
    front of the packed layer, which therefore computes the same numbers.
    """

    def __init__(self, method: str = "det_sign"):
        super().__init__()
        if method not in SIGN_METHODS:
            raise ArgumentError(f"RSign: method must be one of {SIGN_METHODS}, got {method!r}")
        self.method = method
        self.alpha: Parameter | None = None

    config_schema = Obj(optional={"method": Str(SIGN_METHODS)})

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """One threshold per channel."""
        if len(input_shape) not in (1, 3):
            raise ShapeError(f"RSign: expected input (N, C) or (N, C, H, W), got shape {(1, *input_shape)}")
        return elementwise(input_shape, FLOAT32 * input_shape[0])

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 4):
            raise ShapeError(f"{self.label()}: expected input (N, C) or (N, C, H, W), got shape {x.shape}")
        if self.alpha is None:
            self.alpha = Parameter(np.zeros(x.shape[1], dtype=np.float32))
        if x.shape[1] != self.alpha.shape[0]:
            raise ShapeError(
                f"{self.label()}: input has {x.shape[1]} channels, the layer has "
                f"{self.alpha.shape[0]} (input shape {x.shape})"
            )
        if contains_nan(x.data):
            raise NotANumberError(f"{self.label()}: input contains NaN, which has no sign")
        return quantize_by_name(x - per_channel(self.alpha, x.ndim), self.method)

    def config(self) -> dict[str, Any]:
        return {"method": self.method}
