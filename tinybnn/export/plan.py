"""Which models the C exporter takes, as the chain of fused stages it writes out.

The C program (:mod:`tinybnn.export.c_source`) runs a binary network as a
stream of three kinds of fused stage (:mod:`tinybnn.layers.fused`), each
writing packed bits for the next:

1. one :class:`~tinybnn.layers.fused.ConvolutionToBits` on the grey input
   image (one channel): float convolution, monotone activation, max pooling
   and the next layer's sign as a per-channel float threshold;
2. any number of :class:`~tinybnn.layers.fused.BitConvolution` stages
   reading bits and writing bits (integer thresholds, max pooling as the
   window's largest ``flip * dot``);
3. one :class:`~tinybnn.layers.fused.BitDense` with its classifier: the
   binary dense layer, its folded BatchNorm, identity/tanh/relu, and the
   float ``FullyConnected`` that gives the logits.

That is the binary LeNet and every variant of it without k-bit layers
(other filter counts, kernels, strides, paddings, ±1 padding, poolings,
hidden sizes, classes; more binary convolutions in the middle). A model file
is taken as ``tinybnn convert`` writes it (fused), as the older converter
wrote it (unfused packed layers, fused here by
:func:`tinybnn.convert.fuse_layers`), or as a trained binary model
(converted here by :func:`tinybnn.convert.convert_model`). Anything else is
refused with an :class:`~tinybnn.errors.ModelFileError` naming the first
layer that does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from ..convert import BINARIZED, convert_model, count_binary_layers, fuse_layers
from ..errors import ModelFileError
from ..layers import Module, Sequential
from ..layers.fused import BitConvolution, BitDense, ConvolutionToBits
from ..serialization import ModelFile

#: the largest input the C entry point takes (pixels), and the largest dot product it counts
MAX_PIXELS = 1 << 20
MAX_BITS = 1 << 24


@dataclass
class ExportPlan:
    """The stages the C program runs, and the image they take (height, width)."""

    first: ConvolutionToBits
    middle: list[BitConvolution]
    last: BitDense
    input_hw: tuple[int, int]
    source: str


FUSED = (ConvolutionToBits, BitConvolution, BitDense)


def refuse(path: Path, layer: Module, index: int, why: str, names: dict[int, str]) -> ModelFileError:
    """The error for ``layer``: named by its place in the model file when it is one of the file's own layers
    (``names``: id -> name there), else as fused stage ``index``."""
    name = names.get(id(layer))
    kind = type(layer).__name__
    where = f"layer {name} ({kind})" if name else f"stage {index} ({kind})"
    return ModelFileError(f"{path}: cannot export {where} to C: {why}")


def is_k_bit(layer: Module) -> bool:
    return any(getattr(layer, name, 1) != 1 for name in ("act_bit", "weight_bit"))


def foreign(layer: Module) -> str:
    """Why a layer that did not fuse into a stage has no C twin."""
    bits = [f"{name}={getattr(layer, name)}" for name in ("act_bit", "weight_bit") if hasattr(layer, name)]
    kind = f"a k-bit layer ({', '.join(bits)})" if is_k_bit(layer) else "this layer"
    return (
        f"{kind} did not fuse into a binary stage; the C program runs ConvolutionToBits, BitConvolution "
        "(bits in and out) and BitDense stages only"
    )


def fused_stages(loaded: ModelFile, path: str | Path) -> ExportPlan:
    """The :class:`ExportPlan` of a loaded model file, or a ModelFileError naming what does not fit."""
    path = Path(path)
    model = loaded.model
    names = {id(layer): name for name, layer in model.named_modules() if name}  # before fusing renames them
    if not isinstance(model, Sequential):
        raise ModelFileError(f"{path}: cannot export a {type(model).__name__} to C; a Sequential network is needed")
    if loaded.kind == BINARIZED:
        layers, source = fuse_layers(list(model.layers)), "converted"
    elif count_binary_layers(model):
        converted = convert_model(model)
        assert isinstance(converted, Sequential)  # a Sequential converts to a Sequential
        layers, source = list(converted.layers), "trained"
    else:
        raise ModelFileError(
            f"{path}: has no binary layer (QConvolution or QFullyConnected with act_bit=1 and "
            "weight_bit=1); the C exporter writes binary networks only"
        )
    shape = tuple(loaded.input_shape)
    if len(shape) != 3 or shape[0] != 1 or shape[1] * shape[2] > MAX_PIXELS:
        raise ModelFileError(
            f"{path}: cannot export to C: the input must be one grey image (1, H, W) of at most "
            f"{MAX_PIXELS} pixels, got {shape}"
        )
    strangers = [(index, layer) for index, layer in enumerate(layers) if not isinstance(layer, FUSED)]
    k_bit = [(index, layer) for index, layer in strangers if is_k_bit(layer)]
    if strangers:  # the k-bit layer first: it is the reason the layers around it did not fuse
        index, layer = (k_bit or strangers)[0]
        raise refuse(path, layer, index, foreign(layer), names)
    for index, layer in enumerate(layers):
        why = unsupported(layer, index, len(layers))
        if why:
            raise refuse(path, layer, index, why, names)
    if len(layers) < 2:
        raise ModelFileError(
            f"{path}: cannot export to C: the network fuses to {len(layers)} stage(s), "
            "a first convolution and a binary dense classifier are needed"
        )
    for layer in layers:
        for name in layer.buffer_names:
            value = getattr(layer, name)
            if value.dtype.kind == "f" and np.isnan(value).any():
                raise ModelFileError(f"{path}: cannot export to C: {layer.label()} has NaN in {name}")
    first, last = layers[0], layers[-1]
    assert isinstance(first, ConvolutionToBits) and isinstance(last, BitDense)  # unsupported() checked every stage
    middle = cast("list[BitConvolution]", layers[1:-1])  # so did it for these
    return ExportPlan(first, middle, last, (int(shape[1]), int(shape[2])), source)


def unsupported(layer: Module, index: int, count: int) -> str | None:
    """Why ``layer``, stage ``index`` of ``count`` fused stages, has no C twin (None if it has one)."""
    expected = (
        "the first stage must be a float convolution on the image, fused to bits "
        "(Convolution [Activation] [Pooling max] before a binary layer)"
    )
    if index == 0:
        if not isinstance(layer, ConvolutionToBits):
            return expected
        if layer.channels != 1:
            return f"the first convolution takes {layer.channels} channels; the C entry point takes one grey image"
        return None
    if index == count - 1:
        if not isinstance(layer, BitDense):
            return (
                "the last stage must be a binary dense layer with its classifier (QFullyConnected, BatchNorm, "
                "Activation, FullyConnected)"
            )
        if not layer.classes:
            return "the binary dense layer has no float FullyConnected classifier after it"
        if layer.features > MAX_BITS:
            return f"{layer.features} input bits; at most {MAX_BITS}"
        return None
    if not isinstance(layer, BitConvolution):
        return (
            "only binary convolutions reading and writing bits may stand between the first stage and the "
            "binary dense layer (k-bit and float layers there have no C twin)"
        )
    if layer.input != "bits" or layer.output != "bits":
        return f"a binary convolution with {layer.input} input and {layer.output} output; bits in and out are needed"
    if layer.bits > MAX_BITS:
        return f"{layer.bits} bits per dot product; at most {MAX_BITS}"
    return None
