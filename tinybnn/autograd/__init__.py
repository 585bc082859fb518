"""A small reverse-mode autograd over NumPy arrays.

- :mod:`.graph`: the ``Variable`` protocol, topological sort, backpropagation, broadcasting reduction
- :mod:`.function`: ``Function``/``Context``, ``no_grad``
- :mod:`.ops`: elementwise, reduction and shape operations
- :mod:`.tensor`: ``Tensor`` (data, grad, requires_grad, history), whose operators call ops
- :mod:`.quantize`, :mod:`.binary`: sign and its straight-through estimators, quantizers, binary conv/dense
- :mod:`.conv`, :mod:`.pooling`, :mod:`.normalization`, :mod:`.losses`: layers' operations
- :mod:`.backends`: the switch between the reference (NumPy) and fast kernels, ``backend("reference")``
- :mod:`.gradcheck`: numerical gradient checks in float64
"""

from .backends import active_backend, backend
from .binary import binary_conv2d, binary_linear
from .conv import Conv2d, col2im, conv2d, im2col
from .function import Context, Function, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck
from .graph import unbroadcast
from .losses import SoftmaxCrossEntropy, log_softmax, softmax, softmax_cross_entropy
from .normalization import BatchNorm, batch_norm
from .ops import Dropout, HardTanh
from .pooling import AvgPool2d, MaxPool2d, avg_pool2d, max_pool2d
from .quantize import approx_sign, det_sign
from .tensor import Tensor, tensor


def hardtanh(x, low: float = -1.0, high: float = 1.0) -> Tensor:
    """clip(x, low, high), with gradient 1 inside [low, high] and 0 outside."""
    return HardTanh.apply(x, low=low, high=high)


def dropout(x, p: float, rng, training: bool = True) -> Tensor:
    """Inverted dropout with drop probability ``p``, masks drawn from ``rng``."""
    return Dropout.apply(x, p=p, rng=rng, training=training)


__all__ = [
    "AvgPool2d",
    "BatchNorm",
    "Context",
    "Conv2d",
    "Dropout",
    "Function",
    "GradcheckError",
    "HardTanh",
    "MaxPool2d",
    "SoftmaxCrossEntropy",
    "Tensor",
    "active_backend",
    "approx_sign",
    "avg_pool2d",
    "backend",
    "batch_norm",
    "binary_conv2d",
    "binary_linear",
    "col2im",
    "det_sign",
    "conv2d",
    "dropout",
    "gradcheck",
    "hardtanh",
    "im2col",
    "is_grad_enabled",
    "log_softmax",
    "max_pool2d",
    "no_grad",
    "softmax",
    "softmax_cross_entropy",
    "tensor",
    "unbroadcast",
]
