"""Reference networks.

``lenet`` is BMXNet's LeNet for MNIST (SPEC.md). With ``binary=True`` the
middle layers quantize their input and weights (1 bit by default, any
``act_bit``/``weight_bit`` from 1 to 32); the first and last layers stay in
full precision, as in BMXNet::

    Convolution(5x5, 64) -> tanh -> max pool 2x2/2 -> BatchNorm
    QActivation -> QConvolution(5x5, 64) -> BatchNorm -> max pool 2x2/2
    Flatten -> QActivation -> QFullyConnected(1000) -> BatchNorm -> tanh
    FullyConnected(10)                           (softmax cross-entropy in the loss)

The float twin has Convolution and FullyConnected in place of the Q-layers
and no QActivation.
"""
from __future__ import annotations

import numpy as np

from .errors import ArgumentError
from .layers import (Activation, BatchNorm, Convolution, Flatten, FullyConnected, Module, Pooling,
                     QActivation, QConvolution, QFullyConnected, Sequential)

#: the input shape (C, H, W) each model expects
INPUT_SHAPES = {"lenet": (1, 28, 28), "binary-lenet": (1, 28, 28)}


def lenet(binary: bool = False, act_bit: int = 1, weight_bit: int = 1, num_classes: int = 10,
          rng: np.random.Generator | None = None) -> Sequential:
    """BMXNet's LeNet: 64 and 64 5x5 filters, 1000 hidden units; binary middle layers if asked."""
    rng = rng if rng is not None else np.random.default_rng()
    if binary:
        middle_conv = [QActivation(act_bit),
                       QConvolution((5, 5), 64, act_bit=act_bit, weight_bit=weight_bit, rng=rng)]
        middle_dense = [QActivation(act_bit), QFullyConnected(1000, act_bit=act_bit, weight_bit=weight_bit, rng=rng)]
    else:
        middle_conv = [Convolution((5, 5), 64, rng=rng)]
        middle_dense = [FullyConnected(1000, rng=rng)]
    return Sequential(
        Convolution(kernel=(5, 5), num_filter=64, rng=rng), Activation("tanh"),
        Pooling("max", kernel=(2, 2), stride=(2, 2)), BatchNorm(),
        *middle_conv, BatchNorm(), Pooling("max", kernel=(2, 2), stride=(2, 2)),
        Flatten(), *middle_dense, BatchNorm(), Activation("tanh"),
        FullyConnected(num_hidden=num_classes, rng=rng),
    )


def build_model(name: str, rng: np.random.Generator | None = None, act_bit: int = 1,
                weight_bit: int = 1) -> tuple[Module, tuple[int, ...]]:
    """(model with its parameters created, input shape) for a command-line model name."""
    if name == "lenet":
        model = lenet(rng=rng)
    elif name == "binary-lenet":
        model = lenet(binary=True, act_bit=act_bit, weight_bit=weight_bit, rng=rng)
    else:
        raise ArgumentError(f"unknown model {name!r} (known: {', '.join(sorted(INPUT_SHAPES))})")
    shape = INPUT_SHAPES[name]
    return model.build(shape), shape
