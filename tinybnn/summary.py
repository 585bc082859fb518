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

from dataclasses import dataclass

import numpy as np

from .autograd import Tensor, no_grad
from .convert import convert_model, count_binary_layers
from .layers import Module
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


def trace(model: Module, x: Tensor) -> list[tuple[str, Module, Tensor, Tensor]]:
    """Run ``x`` through ``model``: (path, layer, input, output) of every leaf layer, in execution order."""
    records: list[tuple[str, Module, Tensor, Tensor]] = []
    model.walk(x, "", lambda path, layer, x_, y: records.append((path, layer, x_, y)))
    return records


def row(name: str, layer: Module, x: Tensor, y: Tensor, after_binary: bool) -> LayerRow:
    """One line of the summary for a leaf layer with input ``x`` and output ``y`` (batch of 1): what the
    layer declares it costs (:meth:`~tinybnn.layers.Module.cost`)."""
    cost = layer.cost(x, y, after_binary)
    shape = cost.output_shape if cost.output_shape is not None else tuple(y.shape[1:])
    return LayerRow(
        f"{name} {type(layer).__name__}",
        shape,
        cost.params,
        cost.bits,
        cost.float32_bytes,
        cost.stored_bytes,
        cost.binary_macs,
        cost.float_macs,
    )


def summarize(
    model: Module, input_shape: tuple[int, ...], metadata: dict | None = None
) -> tuple[list[LayerRow], int | None]:
    """Rows for every leaf layer and the predicted size of the converted file (None: nothing to convert).

    ``metadata``: what the model file carries (the converted file keeps it), for the header's size."""
    model.eval()
    with no_grad():
        records = trace(model, Tensor(np.zeros((1, *input_shape), np.float32)))
    rows, previous_binary = [], False
    for name, layer, x, y in records:
        rows.append(row(name, layer, x, y, previous_binary))
        previous_binary = layer.computes_on_bits()
    if not any(r.bits == 1 for r in rows):  # nothing is or becomes 1-bit
        return rows, None
    converted = convert_model(model) if count_binary_layers(model) else model
    return rows, predicted_size(converted, input_shape, metadata)


def format_summary(rows: list[LayerRow], predicted: int | None, title: str) -> str:
    def kib(n: int) -> str:
        return f"{n / 1024:,.2f}"

    header = ["layer", "output shape", "params", "bits", "float32 KiB", "stored KiB", "binary MACs", "float MACs"]
    table = [
        [
            r.name,
            "x".join(map(str, r.output_shape)),
            f"{r.params:,}",
            "-" if r.bits is None else str(r.bits),
            kib(r.float32_bytes),
            kib(r.stored_bytes),
            f"{r.binary_macs:,}",
            f"{r.float_macs:,}",
        ]
        for r in rows
    ]
    float32 = sum(r.float32_bytes for r in rows)
    stored = sum(r.stored_bytes for r in rows)
    binary, floats = sum(r.binary_macs for r in rows), sum(r.float_macs for r in rows)
    table.append(
        ["total", "", f"{sum(r.params for r in rows):,}", "", kib(float32), kib(stored), f"{binary:,}", f"{floats:,}"]
    )
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
    lines.append(
        f"memory as float32: {float32:,} bytes; as stored: {stored:,} bytes; "
        f"compression {float32 / max(stored, 1):.1f}x"
    )
    total_macs = binary + floats
    share = 100 * binary / total_macs if total_macs else 0.0
    lines.append(f"MACs per image: {binary:,} binary ({share:.1f}%), {floats:,} float")
    if predicted is None:
        lines.append("converted file: no binary layer (act_bit = weight_bit = 1), nothing to convert")
    else:
        lines.append(f"predicted size of the converted file: {predicted:,} bytes")
    return "\n".join(lines)
