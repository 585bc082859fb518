"""Pooling layer: max or average over windows, or over the whole image.

Paper: LeCun et al., "Gradient-Based Learning Applied to Document Recognition" (Proc. IEEE
1998) subsamples between convolutions; global average pooling, Lin, Chen and Yan, "Network in
Network" (ICLR 2014, arXiv:1312.4400).
"""

from __future__ import annotations

import math
from typing import Any

from ..autograd import Tensor, avg_pool2d, max_pool2d
from ..errors import ArgumentError, ShapeError
from ..schema import PAIR, Bool, Null, Either, Obj, Str
from .convolution import check_geometry
from .module import FLOAT32, Footprint, Module, register_layer


@register_layer
class Pooling(Module):
    """MXNet's Pooling: ``pool_type`` "max" or "avg" over ``kernel`` windows.

    For kernel (KH, KW) and stride (sh, sw), with OH = (H - KH) // sh + 1::

        max: y[n, c, i, j] = max over u < KH, v < KW of x[n, c, i sh + u, j sw + v]
        avg: y[n, c, i, j] = the mean of the same KH KW values

    ``stride`` defaults to the kernel (non-overlapping windows, as Gluon's
    MaxPool2D). ``global_pool=True`` pools each channel's whole image to 1x1.
    """

    def __init__(self, pool_type: str = "max", kernel=(2, 2), stride=None, global_pool: bool = False):
        super().__init__()
        if pool_type not in ("max", "avg"):
            raise ArgumentError(f"Pooling: pool_type must be 'max' or 'avg', got {pool_type!r}")
        self.pool_type = pool_type
        self.kernel, self.stride, _ = check_geometry(kernel, kernel if stride is None else stride, 0, "Pooling")
        self.global_pool = bool(global_pool)

    config_schema = Obj(
        optional={
            "pool_type": Str(("max", "avg")),
            "kernel": PAIR,
            "stride": Either(Null(), PAIR),
            "global_pool": Bool(),
        }
    )

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        if len(input_shape) != 3:
            raise ShapeError(f"Pooling: expected input (N, C, H, W), got shape {(1, *input_shape)}")
        channels, height, width = input_shape
        if config["global_pool"]:
            return Footprint((channels, 1, 1), 0, FLOAT32 * channels)
        stride = config["kernel"] if config["stride"] is None else config["stride"]
        (kh, kw), (sh, sw), _ = check_geometry(config["kernel"], stride, 0, "Pooling")
        if kh > height or kw > width:
            raise ShapeError(f"Pooling: kernel {(kh, kw)} is larger than the input {(1, *input_shape)}")
        shape = (channels, (height - kh) // sh + 1, (width - kw) // sw + 1)
        return Footprint(shape, 0, FLOAT32 * math.prod(shape))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ShapeError(f"{self.label()}: expected input (N, C, H, W), got shape {x.shape}")
        kernel, stride = (x.shape[2:], x.shape[2:]) if self.global_pool else (self.kernel, self.stride)
        if not self.global_pool and (kernel[0] > x.shape[2] or kernel[1] > x.shape[3]):
            raise ShapeError(f"{self.label()}: kernel {kernel} is larger than the input {x.shape}")
        pool = max_pool2d if self.pool_type == "max" else avg_pool2d
        return pool(x, kernel=kernel, stride=stride)

    def config(self) -> dict[str, Any]:
        return {
            "pool_type": self.pool_type,
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "global_pool": self.global_pool,
        }
