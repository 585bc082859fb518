"""Reference networks.

``lenet`` is BMXNet's LeNet for MNIST. With ``binary=True`` the
middle layers quantize their input and weights (1 bit by default, any
``act_bit``/``weight_bit`` from 1 to 32); the first and last layers stay in
full precision, as in BMXNet::

    Convolution(5x5, 64) -> tanh -> max pool 2x2/2 -> BatchNorm
    QActivation -> QConvolution(5x5, 64) -> BatchNorm -> max pool 2x2/2
    Flatten -> QActivation -> QFullyConnected(1000) -> BatchNorm -> tanh
    FullyConnected(10)                           (softmax cross-entropy in the loss)

The float twin has Convolution and FullyConnected in place of the Q-layers
and no QActivation.

``reactnet_lenet`` keeps LeNet's float first and last layers and puts the
modern binary blocks in between: Bi-Real Net's real-valued shortcut around
every binary convolution, ReActNet's RSign before every binary layer and
RPReLU after it (see :func:`reactnet_lenet`).
"""

from __future__ import annotations

import numpy as np

from .errors import ArgumentError
from .layers import (
    Activation,
    BatchNorm,
    Convolution,
    Flatten,
    FullyConnected,
    Module,
    Pooling,
    QActivation,
    QConvolution,
    QFullyConnected,
    Residual,
    Sequential,
)
from .layers.rprelu import RPReLU
from .layers.rsign import RSign
from .layers.shortcut import BiRealConvolution

#: the input shape (C, H, W) each model expects
INPUT_SHAPES = {
    "lenet": (1, 28, 28),
    "binary-lenet": (1, 28, 28),
    "reactnet-lenet": (1, 28, 28),
    "resnet18": (3, 32, 32),
    "binary-resnet18": (3, 32, 32),
}


def lenet(
    binary: bool = False,
    act_bit: int = 1,
    weight_bit: int = 1,
    num_classes: int = 10,
    rng: np.random.Generator | None = None,
) -> Sequential:
    """BMXNet's LeNet: 64 and 64 5x5 filters, 1000 hidden units; binary middle layers if asked."""
    rng = rng if rng is not None else np.random.default_rng()
    if binary:
        middle_conv = [QActivation(act_bit), QConvolution((5, 5), 64, act_bit=act_bit, weight_bit=weight_bit, rng=rng)]
        middle_dense = [QActivation(act_bit), QFullyConnected(1000, act_bit=act_bit, weight_bit=weight_bit, rng=rng)]
    else:
        middle_conv = [Convolution((5, 5), 64, rng=rng)]
        middle_dense = [FullyConnected(1000, rng=rng)]
    return Sequential(
        Convolution(kernel=(5, 5), num_filter=64, rng=rng),
        Activation("tanh"),
        Pooling("max", kernel=(2, 2), stride=(2, 2)),
        BatchNorm(),
        *middle_conv,
        BatchNorm(),
        Pooling("max", kernel=(2, 2), stride=(2, 2)),
        Flatten(),
        *middle_dense,
        BatchNorm(),
        Activation("tanh"),
        FullyConnected(num_hidden=num_classes, rng=rng),
    )


def reactnet_lenet(num_classes: int = 10, blocks: int = 1, rng: np.random.Generator | None = None) -> Sequential:
    """LeNet with modern binary blocks: the float stem and classifier of :func:`lenet`, and between them::

        Convolution(5x5, 64) -> tanh -> max pool 2x2/2 -> BatchNorm                   (64 x 12 x 12)
        blocks x [BiRealConvolution(3x3, 64): BN(qconv(RSign(x))) + x -> RPReLU]        (64 x 12 x 12)
        max pool 2x2/2 -> Flatten -> RSign -> QFullyConnected(1000) -> BatchNorm -> RPReLU
        FullyConnected(10)                           (softmax cross-entropy in the loss)

    Every binary convolution has a real-valued identity shortcut (Bi-Real
    Net), every binary layer's input sign a learnable threshold per channel
    (ReActNet's RSign) and every binary layer's output a learnable shifted
    PReLU (RPReLU). The binary convolutions are 3x3 with "same" padding (the
    shortcut needs the input's size), BMXNet's LeNet has one 5x5 without.
    """
    rng = rng if rng is not None else np.random.default_rng()
    body: list[Module] = []
    for _ in range(blocks):
        body += [BiRealConvolution(3, 64, rng=rng), RPReLU()]
    return Sequential(
        Convolution(kernel=(5, 5), num_filter=64, rng=rng),
        Activation("tanh"),
        Pooling("max", kernel=(2, 2), stride=(2, 2)),
        BatchNorm(),
        *body,
        Pooling("max", kernel=(2, 2), stride=(2, 2)),
        Flatten(),
        RSign(),
        QFullyConnected(1000, rng=rng),
        BatchNorm(),
        RPReLU(),
        FullyConnected(num_hidden=num_classes, rng=rng),
    )


def basic_block(num_filter: int, stride: int, downsample: bool, binary: bool, rng: np.random.Generator) -> Residual:
    """ResNet's basic block: two 3x3 convolutions with BatchNorm, plus a shortcut.

    Float: relu(BN(conv(relu(BN(conv(x))))) + shortcut(x)), the usual block.
    Binary: BN(qconv(BN(qconv(x)))) + shortcut(x), with no ReLU: every
    QConvolution takes the sign of its input itself, and a ReLU before a sign
    would make every activation +1. A downsampling shortcut is a 1x1
    (Q)Convolution with stride 2 followed by BatchNorm.
    """

    def conv(kernel: int, step: int, pad: int) -> Module:
        if binary:
            return QConvolution(kernel, num_filter, stride=step, pad=pad, rng=rng)
        return Convolution(kernel, num_filter, stride=step, pad=pad, no_bias=True, rng=rng)

    if binary:
        body = Sequential(conv(3, stride, 1), BatchNorm(), conv(3, 1, 1), BatchNorm())
    else:
        body = Sequential(conv(3, stride, 1), BatchNorm(), Activation("relu"), conv(3, 1, 1), BatchNorm())
    shortcut = Sequential(conv(1, stride, 0), BatchNorm()) if downsample else Sequential()
    return Residual(body, shortcut, activation=None if binary else "relu")


def resnet18(binary: bool = False, num_classes: int = 10, rng: np.random.Generator | None = None) -> Sequential:
    """ResNet-18 for 32x32 CIFAR images: a 3x3 stem, four stages of two basic blocks
    (64, 128, 256, 512 filters, stride 2 from the second stage on), global average
    pooling and a fully connected classifier. With ``binary=True`` every
    convolution of the blocks (shortcuts included) is binary; the stem and the
    classifier stay in full precision, as in BMXNet."""
    rng = rng if rng is not None else np.random.default_rng()
    layers: list[Module] = [Convolution(3, 64, pad=1, no_bias=True, rng=rng), BatchNorm(), Activation("relu")]
    channels = 64
    for num_filter, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            step = stride if block == 0 else 1
            layers.append(basic_block(num_filter, step, step != 1 or channels != num_filter, binary, rng))
            channels = num_filter
    layers += [Pooling("avg", global_pool=True), Flatten(), FullyConnected(num_classes, rng=rng)]
    return Sequential(*layers)


def build_model(
    name: str, rng: np.random.Generator | None = None, act_bit: int = 1, weight_bit: int = 1
) -> tuple[Module, tuple[int, ...]]:
    """(model with its parameters created, input shape) for a command-line model name."""
    if name == "lenet":
        model = lenet(rng=rng)
    elif name == "binary-lenet":
        model = lenet(binary=True, act_bit=act_bit, weight_bit=weight_bit, rng=rng)
    elif name == "reactnet-lenet":
        model = reactnet_lenet(rng=rng)
    elif name == "resnet18":
        model = resnet18(rng=rng)
    elif name == "binary-resnet18":
        model = resnet18(binary=True, rng=rng)
    else:
        raise ArgumentError(f"unknown model {name!r} (known: {', '.join(sorted(INPUT_SHAPES))})")
    shape = INPUT_SHAPES[name]
    return model.build(shape), shape
