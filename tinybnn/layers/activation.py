"""Activation, Flatten and Dropout: layers without weights.

Paper: Dropout, Srivastava, Hinton, Krizhevsky, Sutskever and Salakhutdinov, "Dropout: A Simple
Way to Prevent Neural Networks from Overfitting" (JMLR 2014).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..autograd import Tensor, dropout, hardtanh
from ..errors import ArgumentError, ShapeError
from ..schema import Float, Obj, Str
from .module import FLOAT32, Footprint, Module, elementwise, register_layer

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": Tensor.relu,
    "tanh": Tensor.tanh,
    "sigmoid": Tensor.sigmoid,
    "hardtanh": hardtanh,
}


@register_layer
class Activation(Module):
    """Elementwise ``act_type``: relu max(x, 0), tanh, sigmoid 1/(1+e^-x), hardtanh clip(x, -1, 1)."""

    def __init__(self, act_type: str):
        super().__init__()
        if act_type not in ACTIVATIONS:
            raise ArgumentError(f"Activation: act_type must be one of {sorted(ACTIVATIONS)}, got {act_type!r}")
        self.act_type = act_type

    config_schema = Obj({"act_type": Str(tuple(ACTIVATIONS))})

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        return elementwise(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        return ACTIVATIONS[self.act_type](x)

    def config(self) -> dict[str, Any]:
        return {"act_type": self.act_type}


@register_layer
class Flatten(Module):
    """(N, ...) -> (N, prod(...)), in C order: y[n] = x[n].ravel()."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2:
            raise ShapeError(f"{self.label()}: expected a batch of rank >= 2, got shape {x.shape}")
        return x.flatten()

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        if not input_shape:
            raise ShapeError(f"Flatten: expected a batch of rank >= 2, got shape {(1, *input_shape)}")
        size = math.prod(input_shape)
        return Footprint((size,), 0, FLOAT32 * size)


@register_layer
class Dropout(Module):
    """Inverted dropout while training: y = x m / (1 - p), m ~ Bernoulli(1 - p) per element
    (drawn from ``rng``); the identity in evaluation mode."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ArgumentError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p = float(p)
        self.rng = rng if rng is not None else np.random.default_rng()

    config_schema = Obj(optional={"p": Float(0.0, 1.0)})

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        return elementwise(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, p=self.p, rng=self.rng, training=self.training)

    def config(self) -> dict[str, Any]:
        return {"p": self.p}
