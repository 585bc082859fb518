"""Layers: Module and Sequential, MXNet-style float layers (and, later, quantized ones)."""
from .activation import Activation, Dropout, Flatten
from .convolution import Convolution
from .dense import FullyConnected
from .module import Module, Parameter, Sequential, describe
from .normalization import BatchNorm
from .pooling import Pooling

__all__ = [
    "Activation", "BatchNorm", "Convolution", "Dropout", "Flatten", "FullyConnected",
    "Module", "Parameter", "Pooling", "Sequential", "describe",
]
