"""Layers: Module and Sequential, MXNet-style float layers, and binary / k-bit Q-layers."""

from .activation import Activation, Dropout, Flatten
from .convolution import Convolution
from .dense import FullyConnected
from .fusion import unfused
from .module import Module, Parameter, Sequential, describe
from .normalization import BatchNorm
from .pooling import Pooling
from .quantized import QActivation, QConvolution, QFullyConnected, use_float_path
from .residual import Residual

__all__ = [
    "Activation",
    "BatchNorm",
    "Convolution",
    "Dropout",
    "Flatten",
    "FullyConnected",
    "Module",
    "Parameter",
    "Pooling",
    "QActivation",
    "QConvolution",
    "QFullyConnected",
    "Residual",
    "Sequential",
    "describe",
    "unfused",
    "use_float_path",
]
