"""Weight initialization, drawn from one ``numpy.random.Generator``.

Papers: He, Zhang, Ren and Sun, "Delving Deep into Rectifiers" (ICCV 2015, arXiv:1502.01852);
Glorot and Bengio, "Understanding the difficulty of training deep feedforward neural networks"
(AISTATS 2010).

- ``kaiming_uniform``: U(-b, b) with b = gain * sqrt(3 / fan_in) and
  gain = sqrt(2 / (1 + a^2)). With a = sqrt(5) (the default, PyTorch's for
  Conv2d and Linear) this is b = 1 / sqrt(fan_in).
- ``xavier_uniform`` (Glorot): U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
- ``bias_uniform``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's bias default.

``fan_in`` of a convolution is C KH KW and ``fan_out`` is F KH KW.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ArgumentError


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def kaiming_uniform(shape: tuple[int, ...], rng: np.random.Generator, a: float = math.sqrt(5)) -> np.ndarray:
    fan_in, _ = fans(shape)
    bound = math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def xavier_uniform(shape: tuple[int, ...], rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def bias_uniform(size: int, fan_in: int, rng: np.random.Generator) -> np.ndarray:
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=size).astype(np.float32)


INITIALIZERS = {"kaiming": kaiming_uniform, "xavier": xavier_uniform}


def check_initializer(name: str) -> str:
    if name not in INITIALIZERS:
        raise ArgumentError(f"weight_init must be one of {sorted(INITIALIZERS)}, got {name!r}")
    return name


def initialize(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Weights of ``shape`` from the initializer called ``name`` ("kaiming" or "xavier")."""
    return INITIALIZERS[check_initializer(name)](shape, rng)
