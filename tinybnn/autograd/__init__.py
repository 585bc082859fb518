"""A small reverse-mode autograd over NumPy arrays.

- :mod:`.graph`: the ``Variable`` protocol, topological sort, backpropagation, broadcasting reduction
- :mod:`.function`: ``Function``/``Context``, ``no_grad``
- :mod:`.ops`: elementwise, reduction and shape operations
- :mod:`.tensor`: ``Tensor`` (data, grad, requires_grad, history), whose operators call ops
- :mod:`.conv`, :mod:`.pooling`, :mod:`.normalization`, :mod:`.losses`: layers' operations
- :mod:`.gradcheck`: numerical gradient checks in float64
"""
from .conv import Conv2d, col2im, conv2d, im2col
from .function import Context, Function, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck
from .graph import unbroadcast
from .losses import SoftmaxCrossEntropy, log_softmax, softmax, softmax_cross_entropy
from .normalization import BatchNorm, batch_norm
from .ops import Dropout, HardTanh
from .pooling import AvgPool2d, MaxPool2d, avg_pool2d, max_pool2d
from .tensor import Tensor, tensor


def hardtanh(x, low: float = -1.0, high: float = 1.0) -> Tensor:
    """clip(x, low, high), with gradient 1 inside [low, high] and 0 outside."""
    return HardTanh.apply(x, low=low, high=high)


def dropout(x, p: float, rng, training: bool = True) -> Tensor:
    """Inverted dropout with drop probability ``p``, masks drawn from ``rng``."""
    return Dropout.apply(x, p=p, rng=rng, training=training)


__all__ = [
    "AvgPool2d", "BatchNorm", "Context", "Conv2d", "Dropout", "Function", "GradcheckError",
    "HardTanh", "MaxPool2d", "SoftmaxCrossEntropy", "Tensor", "avg_pool2d", "batch_norm",
    "col2im", "conv2d", "dropout", "gradcheck", "hardtanh", "im2col",
    "is_grad_enabled", "log_softmax", "max_pool2d", "no_grad", "softmax",
    "softmax_cross_entropy", "tensor", "unbroadcast",
]
