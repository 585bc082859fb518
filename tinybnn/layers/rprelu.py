"""RPReLU: PReLU with learnable shifts before and after, per channel (ReActNet).

Liu, Shen, Savvides, Cheng, "ReActNet: Towards Precise Binary Neural Network
with Generalized Activation Functions" (ECCV 2020).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..errors import ArgumentError, ShapeError
from ..schema import Float, Obj
from .module import FLOAT32, Footprint, Module, Parameter, elementwise, register_layer
from .rsign import per_channel


@register_layer
class RPReLU(Module):
    """y = PReLU_beta(x - gamma_c) + zeta_c, per channel c (axis 1).

    Forward, for x (N, C) or (N, C, H, W), with u = x - gamma_c::

        y = u + zeta_c          if u >= 0
        y = beta_c u + zeta_c   if u < 0

    Backward (g = dL/dy; s = 1 where u >= 0, beta_c where u < 0)::

        dL/dx = g s,   dL/dgamma_c = -sum g s,   dL/dzeta_c = sum g,
        dL/dbeta_c = sum over u < 0 of g u

    (sums over n and, for images, h and w). gamma and zeta start at 0 and
    beta at ``slope`` (0.25, PReLU's usual start), so a fresh RPReLU is a PReLU.
    All three are float parameters: RPReLU stays a float layer after
    conversion (the converter keeps it as it is).
    """

    def __init__(self, slope: float = 0.25):
        super().__init__()
        if not np.isfinite(slope):
            raise ArgumentError(f"RPReLU: slope must be a finite number, got {slope!r}")
        self.slope = float(slope)
        self.gamma: Parameter | None = None
        self.beta: Parameter | None = None
        self.zeta: Parameter | None = None

    config_schema = Obj(optional={"slope": Float(-1e6, 1e6)})

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """Three values per channel: gamma, beta, zeta."""
        if len(input_shape) not in (1, 3):
            raise ShapeError(f"RPReLU: expected input (N, C) or (N, C, H, W), got shape {(1, *input_shape)}")
        return elementwise(input_shape, FLOAT32 * 3 * input_shape[0])

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 4):
            raise ShapeError(f"{self.label()}: expected input (N, C) or (N, C, H, W), got shape {x.shape}")
        if self.gamma is None:
            channels = x.shape[1]
            self.gamma = Parameter(np.zeros(channels, dtype=np.float32))
            self.beta = Parameter(np.full(channels, self.slope, dtype=np.float32))
            self.zeta = Parameter(np.zeros(channels, dtype=np.float32))
        if x.shape[1] != self.gamma.shape[0]:
            raise ShapeError(
                f"{self.label()}: input has {x.shape[1]} channels, the layer has "
                f"{self.gamma.shape[0]} (input shape {x.shape})"
            )
        assert self.beta is not None and self.zeta is not None  # built together with gamma
        u = x - per_channel(self.gamma, x.ndim)
        return u.relu() - per_channel(self.beta, x.ndim) * (-u).relu() + per_channel(self.zeta, x.ndim)

    def config(self) -> dict[str, Any]:
        return {"slope": self.slope}
