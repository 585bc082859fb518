"""Model summary: per layer, what it computes and what it costs to store.

For every layer (leaves of Sequential and Residual containers, in execution
order): its type, output shape, parameter count, bits per weight, memory as
float32 and as stored in the converted file, and multiply-accumulates per
image split into binary (XNOR-popcount) and float. Then totals, the
compression ratio, and the predicted size of the converted file.

Storage rules (what :mod:`tinybnn.convert` writes):

- a 1-bit layer (Q-layer with act_bit = weight_bit = 1, or a packed layer):
  1 bit per weight, rounded up to whole 64-bit words per output channel, plus
  a float32 scale and shift per output channel;
- a BatchNorm right after a 1-bit layer: nothing (folded into that layer);
- everything else: float32 (BatchNorm's running statistics included).

The predicted file size adds the format's overhead (the deflated JSON header
and the zip entries, :func:`tinybnn.serialization.predicted_size`) to the
stored bytes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np

from .autograd import Tensor, no_grad
from .autograd.conv import output_size
from .convert import convert_model, count_binary_layers, is_binary
from .gemm import packed_words
from .layers import (BatchNorm, Convolution, FullyConnected, Module, QConvolution, QFullyConnected, Residual,
                     Sequential)
from .layers.fused import BitConvolution, BitDense, ConvolutionToBits
from .layers.packed import PackedConvolution, PackedFullyConnected, PackedModule
from .serialization import predicted_size


@dataclass
class LayerRow:
    name: str
    output_shape: tuple[int, ...]
    params: int
    bits: int | None
    float32_bytes: int
    stored_bytes: int
    binary_macs: int
    float_macs: int


def trace(module: Module, x: Tensor, path: str, records: list) -> Tensor:
    """Run ``x`` through ``module``, appending (path, layer, input, output) for every leaf layer."""
    if isinstance(module, Sequential):
        for i, layer in enumerate(module.layers):
            x = trace(layer, x, f"{path}.{i}" if path else str(i), records)
        return x
    if isinstance(module, Residual):
        trace(module.body, x, f"{path}.body", records)
        trace(module.shortcut, x, f"{path}.shortcut", records)
        return module(x)
    y = module(x)
    records.append((path, module, x, y))
    return y


def binary_words(layer: Module, x: Tensor) -> int:
    """64-bit words per output channel of a 1-bit layer: ceil(D / 64) for a dense layer,
    KH KW ceil(C / 64) for a convolution (pixels are packed along the channels)."""
    if isinstance(layer, (QConvolution, PackedConvolution)):
        return layer.kernel[0] * layer.kernel[1] * packed_words(x.shape[1])
    return packed_words(x.data[0].size)


FUSED = (ConvolutionToBits, BitConvolution, BitDense)


def fused_row(name: str, layer: Module, x: Tensor, y: Tensor) -> LayerRow:
    """A fused stage's line: what it stores is its buffers; its output shape is given as (C, H, W)
    even where it is packed bits; MACs are counted before its pooling."""
    stored = sum(b.nbytes for _, b in layer.named_buffers())
    values = sum(b.size for name_, b in layer.named_buffers() if name_ != "weight_bits")
    if isinstance(layer, BitDense):
        weights, float_macs = layer.num_hidden * layer.features, layer.num_hidden * layer.classes
        shape, binary_macs = (layer.classes or layer.num_hidden,), weights
    else:
        h, w = x.shape[1:3] if x.data.dtype == np.uint64 else x.shape[2:]
        positions = math.prod(output_size(n, k, s, p) for n, k, s, p in zip((h, w), layer.kernel, layer.stride,
                                                                              layer.pad))
        shape = (layer.num_filter, *(y.shape[1:3] if y.data.dtype == np.uint64 else y.shape[2:]))
        if isinstance(layer, ConvolutionToBits):
            weights, binary_macs, float_macs = 0, 0, layer.weight.size * positions
        else:
            weights, float_macs = layer.num_filter * layer.bits, 0
            binary_macs = weights * positions
    bits = 32 if isinstance(layer, ConvolutionToBits) else 1
    return LayerRow(f"{name} {type(layer).__name__}", shape, weights + values, bits, 4 * (weights + values),
                    stored, binary_macs, float_macs)


def row(name: str, layer: Module, x: Tensor, y: Tensor, after_binary: bool) -> LayerRow:
    """One line of the summary for a leaf layer with input ``x`` and output ``y`` (batch of 1)."""
    if isinstance(layer, FUSED):
        return fused_row(name, layer, x, y)
    binary = is_binary(layer) or isinstance(layer, PackedModule)
    outputs = y.shape[1] if y.ndim > 1 else 1
    if isinstance(layer, PackedConvolution):
        weights = layer.num_filter * layer.bits
    elif isinstance(layer, PackedFullyConnected):
        weights = layer.num_hidden * layer.features
    else:
        weights = 0 if getattr(layer, "weight", None) is None else layer.weight.size
    params = sum(p.size for _, p in layer.named_parameters())
    arrays = params + sum(b.size for _, b in layer.named_buffers())
    floats = 0  # float32 values a packed layer keeps besides its bits
    if isinstance(layer, PackedModule):  # what the float layers it replaces held
        floats = sum(b.size for name, b in layer.named_buffers() if name != "weight_bits")
        params = arrays = weights + floats
    if binary:
        floats = floats or 2 * outputs  # a Q-layer keeps a scale and a shift per output once converted
        stored, bits = outputs * binary_words(layer, x) * 8 + 4 * floats, 1
    else:
        stored = 0 if isinstance(layer, BatchNorm) and after_binary else 4 * arrays
        bits = (layer.weight_bit if isinstance(layer, (QConvolution, QFullyConnected))
                else 32 if arrays else None)
    positions = math.prod(y.shape[2:])
    if isinstance(layer, PackedConvolution) and layer.pool_kernel is not None:  # MACs before the pooling
        positions = math.prod(output_size(n, k, s, p)
                              for n, k, s, p in zip(x.shape[2:], layer.kernel, layer.stride, layer.pad))
    is_linear = isinstance(layer, (Convolution, FullyConnected, PackedModule))
    count = weights * positions if is_linear else 0
    return LayerRow(f"{name} {type(layer).__name__}", tuple(y.shape[1:]), params, bits, 4 * arrays, stored,
                    count if binary else 0, 0 if binary else count)


def summarize(model: Module, input_shape: tuple[int, ...], metadata: dict | None = None
              ) -> tuple[list[LayerRow], int | None]:
    """Rows for every leaf layer and the predicted size of the converted file (None: nothing to convert).

    ``metadata``: what the model file carries (the converted file keeps it), for the header's size."""
    records: list = []
    model.eval()
    with no_grad():
        trace(model, Tensor(np.zeros((1, *input_shape), np.float32)), "", records)
    rows, previous_binary = [], False
    for name, layer, x, y in records:
        rows.append(row(name, layer, x, y, previous_binary))
        previous_binary = is_binary(layer) or isinstance(layer, PackedModule)
    packed = any(isinstance(m, (PackedModule, *FUSED)) for _, m in model.named_modules())
    if not packed and count_binary_layers(model) == 0:
        return rows, None
    converted = model if packed else convert_model(model)
    return rows, predicted_size(converted, input_shape, metadata)


def format_summary(rows: list[LayerRow], predicted: int | None, title: str) -> str:
    def kib(n: int) -> str:
        return f"{n / 1024:,.2f}"

    header = ["layer", "output shape", "params", "bits", "float32 KiB", "stored KiB", "binary MACs", "float MACs"]
    table = [[r.name, "x".join(map(str, r.output_shape)), f"{r.params:,}", "-" if r.bits is None else r.bits,
              kib(r.float32_bytes), kib(r.stored_bytes), f"{r.binary_macs:,}", f"{r.float_macs:,}"] for r in rows]
    float32 = sum(r.float32_bytes for r in rows)
    stored = sum(r.stored_bytes for r in rows)
    binary, floats = sum(r.binary_macs for r in rows), sum(r.float_macs for r in rows)
    table.append(["total", "", f"{sum(r.params for r in rows):,}", "", kib(float32), kib(stored),
                  f"{binary:,}", f"{floats:,}"])
    widths = [max(len(str(line[i])) for line in [header] + table) for i in range(len(header))]
    lines = [title, ""]
    for i, line in enumerate([header] + table):
        if i == len(table):  # before the totals
            lines.append("  ".join("-" * w for w in widths))
        cells = [str(c).ljust(w) if j == 0 else str(c).rjust(w) for j, (c, w) in enumerate(zip(line, widths))]
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"memory as float32: {float32:,} bytes; as stored: {stored:,} bytes; "
                 f"compression {float32 / max(stored, 1):.1f}x")
    total_macs = binary + floats
    share = 100 * binary / total_macs if total_macs else 0.0
    lines.append(f"MACs per image: {binary:,} binary ({share:.1f}%), {floats:,} float")
    if predicted is None:
        lines.append("converted file: no binary layer (act_bit = weight_bit = 1), nothing to convert")
    else:
        lines.append(f"predicted size of the converted file: {predicted:,} bytes")
    return "\n".join(lines)
