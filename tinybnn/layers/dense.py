"""FullyConnected: MXNet's dense layer, y = x W^T + b.

Paper: LeCun et al., "Gradient-Based Learning Applied to Document Recognition" (Proc. IEEE
1998), whose LeNet ends in such layers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..errors import ShapeError
from ..schema import POSITIVE, Bool, Obj, Str
from .convolution import positive
from .init import INITIALIZERS, bias_uniform, check_initializer, initialize
from .module import FLOAT32, Cost, Footprint, Module, Parameter, float_cost, register_layer


@register_layer
class FullyConnected(Module):
    """MXNet's dense layer: ``y[n, h] = b[h] + sum_d x[n, d] W[h, d]``, i.e. y = x W^T + b.

    W has shape (num_hidden, D). As in MXNet (``flatten=True``), an input of
    rank > 2 is flattened to (N, D) first. D is taken from the first input
    (deferred initialization); weights and bias are initialized as in
    :class:`Convolution`.

    >>> import numpy as np
    >>> from tinybnn.autograd import Tensor
    >>> layer = FullyConnected(10, rng=np.random.default_rng(0))
    >>> layer(Tensor(np.zeros((3, 64, 4, 4), np.float32))).shape, layer.weight.shape
    ((3, 10), (10, 1024))
    """

    def __init__(
        self,
        num_hidden: int,
        no_bias: bool = False,
        weight_init: str = "kaiming",
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        self.num_hidden = positive(num_hidden, "num_hidden", type(self).__name__)
        self.no_bias = bool(no_bias)
        self.weight_init = check_initializer(weight_init)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.weight: Parameter | None = None
        self.bias: Parameter | None = None

    config_schema = Obj({"num_hidden": POSITIVE}, {"no_bias": Bool(), "weight_init": Str(tuple(INITIALIZERS))})

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """Weights num_hidden D (+ num_hidden biases); scratch: the flattened input."""
        if not input_shape:
            raise ShapeError(f"{cls.__name__}: expected input (N, D), got shape {(1, *input_shape)}")
        features, hidden = math.prod(input_shape), config["num_hidden"]
        state = hidden * features + (0 if config["no_bias"] else hidden)
        return Footprint((hidden,), FLOAT32 * state, FLOAT32 * hidden, FLOAT32 * features)

    def create_parameters(self, features: int) -> None:
        self.weight = Parameter(initialize(self.weight_init, (self.num_hidden, features), self.rng))
        if not self.no_bias:
            self.bias = Parameter(bias_uniform(self.num_hidden, features, self.rng))

    def flat_input(self, x: Tensor) -> Tensor:
        """x as (N, D), creating the weights at the first call and checking D."""
        if x.ndim < 2:
            raise ShapeError(f"{self.label()}: expected input (N, D), got shape {x.shape}")
        if x.ndim > 2:
            x = x.flatten()
        if self.weight is None:
            self.create_parameters(x.shape[1])
        assert self.weight is not None
        if x.shape[1] != self.weight.shape[1]:
            raise ShapeError(
                f"{self.label()}: input has {x.shape[1]} features, weights expect "
                f"{self.weight.shape[1]} (input {x.shape}, weights {self.weight.shape})"
            )
        return x

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        """Float multiply-accumulates: one per weight."""
        assert self.weight is not None
        return float_cost(self, self.weight.size)

    def forward(self, x: Tensor) -> Tensor:
        x = self.flat_input(x)
        assert self.weight is not None
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias

    def config(self) -> dict[str, Any]:
        return {"num_hidden": self.num_hidden, "no_bias": self.no_bias, "weight_init": self.weight_init}
