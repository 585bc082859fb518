"""Reference networks.

``lenet`` is BMXNet's LeNet for MNIST (SPEC.md); with ``binary=True`` its
middle layers are binary (first and last layers stay full precision)::

    Convolution(5x5, 64) -> tanh -> max pool 2x2/2 -> BatchNorm
    [QActivation] -> Convolution(5x5, 64) -> BatchNorm -> max pool 2x2/2
    Flatten -> [QActivation] -> FullyConnected(1000) -> BatchNorm -> tanh
    FullyConnected(10)                           (softmax cross-entropy in the loss)
"""
from __future__ import annotations

import numpy as np

from .layers import (Activation, BatchNorm, Convolution, Flatten, FullyConnected, Module, Pooling,
                     Sequential)

#: the input shape (C, H, W) each model expects
INPUT_SHAPES = {"lenet": (1, 28, 28)}


def lenet(rng: np.random.Generator | None = None, num_classes: int = 10) -> Sequential:
    """BMXNet's float LeNet: 64 and 64 5x5 filters, 1000 hidden units."""
    rng = rng if rng is not None else np.random.default_rng()
    return Sequential(
        Convolution(kernel=(5, 5), num_filter=64, rng=rng), Activation("tanh"),
        Pooling("max", kernel=(2, 2), stride=(2, 2)), BatchNorm(),
        Convolution(kernel=(5, 5), num_filter=64, rng=rng), BatchNorm(),
        Pooling("max", kernel=(2, 2), stride=(2, 2)),
        Flatten(), FullyConnected(num_hidden=1000, rng=rng), BatchNorm(), Activation("tanh"),
        FullyConnected(num_hidden=num_classes, rng=rng),
    )


def build_model(name: str, rng: np.random.Generator | None = None) -> Module:
    """A model by its command-line name, with its parameters created."""
    from .errors import ArgumentError

    if name == "lenet":
        return lenet(rng).build(INPUT_SHAPES["lenet"])
    raise ArgumentError(f"unknown model {name!r} (known: {', '.join(sorted(INPUT_SHAPES))})")
