"""Residual: y = activation(body(x) + shortcut(x)), the building block of ResNets.

Paper: He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016,
arXiv:1512.03385); binary ResNets keep their shortcuts real-valued as in Liu et al.,
"Bi-Real Net" (ECCV 2018, arXiv:1808.00278).

``body`` and ``shortcut`` are :class:`Sequential` containers (an empty
shortcut is the identity), so a residual block is described, saved and
converted like any other stack of layers.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ..autograd import Tensor
from ..errors import ArgumentError, ShapeError
from ..schema import Either, Null, Obj, Str
from .activation import ACTIVATIONS
from .module import DESCRIPTION, FLOAT32, Footprint, Module, Sequential, describe, register_layer


@register_layer
class Residual(Module):
    """y = activation(body(x) + shortcut(x)); ``activation`` None means none."""

    def __init__(self, body: Sequential, shortcut: Sequential | None = None, activation: str | None = None):
        super().__init__()
        if activation is not None and activation not in ACTIVATIONS:
            raise ArgumentError(
                f"Residual: activation must be one of {sorted(ACTIVATIONS)} or None, got {activation!r}"
            )
        self.body = body
        self.shortcut = shortcut if shortcut is not None else Sequential()
        self.activation = activation

    def walk(self, x: Tensor, path: str, record: Callable[[str, Module, Tensor, Tensor], None]) -> Tensor:
        self.body.walk(x, f"{path}.body", record)
        self.shortcut.walk(x, f"{path}.shortcut", record)
        return self(x)

    def converted(self, convert: Callable[[Module], Module]) -> Module:
        return Residual(convert(self.body), convert(self.shortcut), self.activation)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        main, skip = self.body(x), self.shortcut(x)
        if main.shape != skip.shape:
            raise ShapeError(f"{self.label()}: body gives {main.shape} but the shortcut gives {skip.shape}")
        y = main + skip
        return y if self.activation is None else ACTIVATIONS[self.activation](y)

    config_schema = Obj(
        {"body": DESCRIPTION, "shortcut": DESCRIPTION}, {"activation": Either(Null(), Str(tuple(ACTIVATIONS)))}
    )

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """Body and shortcut on the same input, plus their sum."""
        body = footprint_of(config["body"], input_shape, "body")
        shortcut = footprint_of(config["shortcut"], input_shape, "shortcut")
        if body.output_shape != shortcut.output_shape:
            raise ShapeError(
                f"Residual: body gives {(1, *body.output_shape)} but the shortcut gives {(1, *shortcut.output_shape)}"
            )
        both = body.then(shortcut)
        return Footprint(
            body.output_shape,
            both.state,
            both.activations + FLOAT32 * math.prod(body.output_shape),
            both.scratch,
            both.heaviest,
        )

    def config(self) -> dict[str, Any]:
        return {"body": describe(self.body), "shortcut": describe(self.shortcut), "activation": self.activation}

    @classmethod
    def from_config(cls, config: dict[str, Any], construct: Callable[[dict], Module]) -> "Residual":
        body, shortcut = construct(config["body"]), construct(config["shortcut"])
        if not isinstance(body, Sequential) or not isinstance(shortcut, Sequential):
            raise ArgumentError("Residual: body and shortcut must be Sequential")
        return cls(body, shortcut, config.get("activation"))

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"
