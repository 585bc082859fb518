"""BiRealConvolution: a binary convolution with a real-valued shortcut around it (Bi-Real Net).

Liu, Wu, Luo, Yang, Liu, Cheng, "Bi-Real Net: Enhancing the Performance of
1-bit CNNs with Improved Representational Capability and Advanced Training
Algorithm" (ECCV 2018).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import ArgumentError
from ..schema import Bool, Int, Obj, Str
from .module import Module, Sequential, describe, register_layer
from .normalization import BatchNorm
from .quantized import BITS, QActivation, QConvolution, check_bits
from .residual import Residual
from .rsign import SIGN_METHODS, RSign


def body_layers(
    kernel: int,
    num_filter: int,
    act_bit: int,
    weight_bit: int,
    method: str,
    learn_threshold: bool,
    rng: np.random.Generator | None,
) -> list[Module]:
    """[RSign or QActivation (1-bit input only)], QConvolution ("same" padding, stride 1), BatchNorm."""
    signs: list[Module] = []
    if act_bit == 1:
        signs = [RSign(method)] if learn_threshold else [QActivation(1, method=method)]
    conv = QConvolution(kernel, num_filter, pad=kernel // 2, act_bit=act_bit, weight_bit=weight_bit, rng=rng)
    return [*signs, conv, BatchNorm()]


@register_layer
class BiRealConvolution(Residual):
    """y = BN(qconv(s(x))) + x: a binary convolution whose real-valued input is added to its output.

    For x (N, C, H, W) with C = ``num_filter``::

        y = BatchNorm(QConvolution_k(s(x))) + x

    - ``s``: with ``learn_threshold`` (default), ReActNet's :class:`RSign`
      sign(x - alpha_c) with a learnable threshold per channel; otherwise the
      QActivation sign (``method`` picks the estimator in both cases); none
      when ``act_bit`` > 1 (the QConvolution quantizes its input itself);
    - ``QConvolution_k``: k x k (``kernel``, odd), stride 1, padding k // 2
      with +1 (so H and W are kept), ``act_bit``/``weight_bit`` bits
      (default 1: binary), no bias;
    - the shortcut is the identity, in full precision: the real values of x
      reach the output (and their gradient, dL/dx gets g besides the path
      through the convolution), which a stack of signs would throw away.

    Backward: ``dL/dx = g + d(BN(qconv(s(x))))/dx`` applied to g, the second
    term with the straight-through estimators of the body. A Residual with an
    empty shortcut underneath: the converter packs the body's QConvolution
    and BatchNorm (RSign stays a float layer before it, so the packed layer
    sees the same ±1 values) and keeps the float shortcut and the addition.
    """

    def __init__(
        self,
        kernel: int,
        num_filter: int,
        act_bit: int = 1,
        weight_bit: int = 1,
        method: str = "det_sign",
        learn_threshold: bool = True,
        rng: np.random.Generator | None = None,
    ):
        if isinstance(kernel, bool) or not isinstance(kernel, (int, np.integer)) or kernel < 1 or kernel % 2 == 0:
            raise ArgumentError(
                f"BiRealConvolution: kernel must be an odd positive integer (the output keeps "
                f"the input's size), got {kernel!r}"
            )
        if method not in SIGN_METHODS:
            raise ArgumentError(f"BiRealConvolution: method must be one of {SIGN_METHODS}, got {method!r}")
        act_bit = check_bits(act_bit, "act_bit", "BiRealConvolution")
        weight_bit = check_bits(weight_bit, "weight_bit", "BiRealConvolution")
        super().__init__(
            Sequential(*body_layers(int(kernel), num_filter, act_bit, weight_bit, method, bool(learn_threshold), rng))
        )
        self.kernel, self.num_filter = int(kernel), int(num_filter)
        self.act_bit, self.weight_bit = act_bit, weight_bit
        self.method, self.learn_threshold = method, bool(learn_threshold)

    config_schema = Obj(
        {"kernel": Int(1, 1 << 20, odd=True), "num_filter": Int(1, 1 << 20)},
        {"act_bit": BITS, "weight_bit": BITS, "method": Str(SIGN_METHODS), "learn_threshold": Bool()},
    )

    @classmethod
    def footprint(cls, config, input_shape, footprint_of):
        """The body's layers and the sum, as the Residual underneath declares them."""
        body = body_layers(
            config["kernel"],
            config["num_filter"],
            config["act_bit"],
            config["weight_bit"],
            config["method"],
            config["learn_threshold"],
            np.random.default_rng(0),
        )
        residual = {"body": describe(Sequential(*body)), "shortcut": describe(Sequential()), "activation": None}
        return Residual.footprint(residual, input_shape, footprint_of)

    def config(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "num_filter": self.num_filter,
            "act_bit": self.act_bit,
            "weight_bit": self.weight_bit,
            "method": self.method,
            "learn_threshold": self.learn_threshold,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], construct: Callable[[dict], Module]) -> "BiRealConvolution":
        return cls(**config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())
