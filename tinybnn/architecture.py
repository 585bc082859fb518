"""Networks as data: the JSON description stored in model files.

``describe(module)`` gives ``{"type": "Convolution", "config": {...}}``
(nested for containers); ``construct(description)`` builds the module back,
looking the type up in :data:`LAYER_TYPES`, the one list of every layer a
model file may name. A new layer becomes loadable by adding it here.
"""
from __future__ import annotations

from typing import Any

from .errors import ModelFileError
from .layers.fused import BitConvolution, BitDense, ConvolutionToBits
from .layers.packed import PackedConvolution, PackedFullyConnected
from .layers import (Activation, BatchNorm, Convolution, Dropout, Flatten, FullyConnected, Module,
                     Pooling, QActivation, QConvolution, QFullyConnected, Residual, Sequential, describe)

LAYER_TYPES: dict[str, type[Module]] = {
    cls.__name__: cls
    for cls in (Activation, BatchNorm, Convolution, Dropout, Flatten, FullyConnected, Pooling,
                QActivation, QConvolution, QFullyConnected, Residual, Sequential,
                PackedConvolution, PackedFullyConnected, ConvolutionToBits, BitConvolution, BitDense)
}


def construct(description: Any) -> Module:
    """Build a module from ``describe``'s output; unknown or malformed entries raise ModelFileError."""
    if not isinstance(description, dict) or "type" not in description:
        raise ModelFileError(f"layer description must be an object with a 'type', got {description!r:.80}")
    kind = description["type"]
    if kind not in LAYER_TYPES:
        raise ModelFileError(f"unknown layer type {kind!r} (known: {', '.join(sorted(LAYER_TYPES))})")
    config = description.get("config", {})
    if not isinstance(config, dict):
        raise ModelFileError(f"layer {kind}: config must be an object, got {config!r:.80}")
    try:
        return LAYER_TYPES[kind].from_config(config, construct)
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError) as error:
        raise ModelFileError(f"layer {kind}: invalid config {config!r:.120}: {error}") from None


__all__ = ["LAYER_TYPES", "construct", "describe"]
