"""What happens inside a model on one image, layer by layer, computed the readable way.

:func:`trace` walks the top-level layers of a loaded model (a
:class:`~tinybnn.layers.Sequential`) on one image. Each layer gets the
output of the layer before it as the model itself computes it, and its own
output is then worked out again with plain NumPy, so that every step can be
shown:

- a float layer (Convolution, FullyConnected, Activation, Pooling,
  Flatten) gives one float map;
- a binary layer on packed bits (PackedConvolution, PackedFullyConnected)
  gives two: the signs it packs (its input bits, 1 for +1 and 0 for -1,
  sign(0) = +1) and its output ``dot * scale + shift`` with the ±1 dot
  product ``dot = K - 2 popcount(bits(x) XOR bits(w))``; a max pooling in
  a PackedConvolution's epilogue is applied after that, as the layer does;
- a layer of any other type (a fused layer of a newer converter, a
  Q-layer of a float model) is run as it is, and its output shown as bits
  when every value is ±1, as a float map otherwise.

:func:`explain` spells out one output value of a binary layer: the input
patch's bits, the filter's bits, their XOR, the popcount, ``K - 2
popcount``, the folded scale and shift and the result; for a pooled output,
the window it is the maximum of. The prediction itself is not taken from
here but from the model's own forward pass (:func:`tinybnn.predict.probabilities`).

The XNOR dot product is that of XNOR-Net (Rastegari et al., 2016) and
BMXNet (Yang et al., 2017): for ±1 vectors a, b of length K,
``a . b = K - 2 popcount(bits(a) XOR bits(b))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import Tensor, no_grad
from ..autograd.conv import im2col_reference
from ..convert import packed_arrays
from ..errors import ArgumentError
from ..gemm import unpack_bits
from ..layers import Activation, Convolution, Flatten, FullyConnected, Module, Pooling
from ..layers.packed import PackedConvolution, PackedFullyConnected

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "hardtanh": lambda x: np.clip(x, -1, 1),
}


@dataclass
class Stage:
    """One map to show: ``values`` (one image, no batch axis), as bits (bool, True = +1) or floats."""

    title: str
    kind: str  # "bits" or "float"
    values: np.ndarray
    explainable: bool = False  # an output of a binary layer: explain() can spell out any of its values


@dataclass
class LayerTrace:
    """A top-level layer: its index, type, a one-line description and its stages."""

    index: int
    type: str
    description: str
    stages: list[Stage] = field(default_factory=list)


def layers_of(model: Module) -> list[Module]:
    """The top-level layers of ``model`` (a Sequential), or the model itself as the one layer."""
    return list(model) if hasattr(model, "__iter__") else [model]


def run_layer(layer: Module, x: np.ndarray) -> np.ndarray:
    """The layer's own output on one image (batch axis added and removed), in evaluation mode."""
    layer.eval()
    with no_grad():
        return np.array(layer(Tensor(x[None].astype(np.float32, copy=False))).data[0])


def trace(model: Module, image: np.ndarray) -> list[LayerTrace]:
    """Every top-level layer of ``model`` on ``image`` (the model's input shape, e.g. (1, 28, 28))."""
    x = np.asarray(image, np.float32)
    traces = []
    for index, layer in enumerate(layers_of(model)):
        traces.append(trace_layer(index, layer, x))
        x = run_layer(layer, x)
    return traces


def trace_layer(index: int, layer: Module, x: np.ndarray) -> LayerTrace:
    """One layer on its input ``x`` (no batch axis): the stages to show."""
    kind = type(layer).__name__
    if isinstance(layer, PackedConvolution):
        signs = packed_conv_input_bits(layer, x)
        (kh, kw), (f, c) = layer.kernel, (layer.num_filter, layer.channels)
        description = f"binary convolution {kh}x{kw}, {f} filters on {c} channels of bits"
        if layer.input_norm:
            description += " (a BatchNorm before it folded into its packing)"
        output = packed_conv_output(layer, signs)
        if layer.pool_kernel is not None:
            description += f", max pooling {layer.pool_kernel[0]}x{layer.pool_kernel[1]} in its epilogue"
        stages = [
            Stage("input bits: sign(BatchNorm(x))" if layer.input_norm else "input bits: sign(x)", "bits", signs),
            Stage(
                "output: max-pooled (K - 2 popcount) * scale + shift"
                if layer.pool_kernel
                else "output: (K - 2 popcount) * scale + shift",
                "float",
                output,
                explainable=True,
            ),
        ]
        return LayerTrace(index, kind, description, stages)
    if isinstance(layer, PackedFullyConnected):
        signs = x.reshape(-1) >= 0
        output = packed_dense_output(layer, signs)
        description = f"binary dense layer, {layer.features} bits in, {layer.num_hidden} out"
        return LayerTrace(
            index,
            kind,
            description,
            [
                Stage("input bits: sign(x)", "bits", signs),
                Stage("output: (K - 2 popcount) * scale + shift", "float", output, explainable=True),
            ],
        )
    known = float_layer_output(layer, x)
    if known is not None:
        output, description = known
        return LayerTrace(index, kind, description, [Stage("output", "float", output)])
    output = run_layer(layer, x)
    binary = bool(np.isin(output, (-1.0, 1.0)).all())
    stage = Stage(
        "output (bits: +1 white, -1 black)" if binary else "output",
        "bits" if binary else "float",
        output >= 0 if binary else output,
    )
    return LayerTrace(index, kind, f"{kind}, computed by the layer itself", [stage])


def float_layer_output(layer: Module, x: np.ndarray) -> tuple[np.ndarray, str] | None:
    """The output and a description of a float layer, by NumPy; None for a type not handled here."""
    if isinstance(layer, Convolution):
        assert layer.weight is not None  # a loaded model is built
        weight = layer.weight.data
        cols = im2col_reference(x[None], layer.kernel, layer.stride, layer.pad)  # (OH OW, C KH KW)
        oh, ow = output_hw(x.shape[1:], layer.kernel, layer.stride, layer.pad)
        y = cols @ weight.reshape(weight.shape[0], -1).T
        if layer.bias is not None:
            y = y + layer.bias.data
        kh, kw = layer.kernel
        return (y.T.reshape(-1, oh, ow).astype(np.float32), f"float convolution {kh}x{kw}, {layer.num_filter} filters")
    if isinstance(layer, FullyConnected):
        assert layer.weight is not None  # a loaded model is built
        y = x.reshape(-1) @ layer.weight.data.T
        if layer.bias is not None:
            y = y + layer.bias.data
        return y.astype(np.float32), f"float dense layer, {layer.weight.shape[1]} in, {layer.num_hidden} out"
    if isinstance(layer, Activation) and layer.act_type in ACTIVATIONS:
        return ACTIVATIONS[layer.act_type](x).astype(np.float32), f"{layer.act_type}, elementwise"
    if isinstance(layer, Pooling) and x.ndim == 3:
        kernel, stride = (x.shape[1:], x.shape[1:]) if layer.global_pool else (layer.kernel, layer.stride)
        windows = pooling_windows(x, kernel, stride)
        y = windows.max(axis=(-2, -1)) if layer.pool_type == "max" else windows.mean(axis=(-2, -1))
        return y.astype(np.float32), f"{layer.pool_type} pooling {kernel[0]}x{kernel[1]}, stride {stride[0]}"
    if isinstance(layer, Flatten):
        return x.reshape(-1), "flatten to one vector"
    return None


def output_hw(hw, kernel, stride, pad) -> tuple[int, int]:
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(hw, kernel, stride, pad))


def pooling_windows(x: np.ndarray, kernel, stride) -> np.ndarray:
    """x (C, H, W) -> (C, OH, OW, KH, KW): every pooling window."""
    windows = np.lib.stride_tricks.sliding_window_view(x, tuple(kernel), axis=(1, 2))
    return windows[:, :: stride[0], :: stride[1]]


# --- binary layers ---------------------------------------------------------------------
def packed_conv_input_bits(layer: PackedConvolution, x: np.ndarray) -> np.ndarray:
    """The signs a PackedConvolution packs from x (C, H, W): True for +1.

    With a folded input BatchNorm, the sign of ``(x - mean) inv_std gamma + beta``
    in float32, in that order, as the layer computes it."""
    if layer.input_norm:

        def per_channel(v: np.ndarray) -> np.ndarray:
            return v.reshape(-1, 1, 1)

        x = (x - per_channel(layer.input_mean)) * per_channel(layer.input_inv_std) * per_channel(
            layer.input_gamma
        ) + per_channel(layer.input_beta)
    return x >= 0


def filter_signs(layer: PackedConvolution) -> np.ndarray:
    """The filters' bits (F, C, KH, KW), True for +1, unpacked from ``weight_bits``."""
    kh, kw = layer.kernel
    words = packed_arrays(layer)[0].reshape(layer.num_filter, kh, kw, -1)  # each pixel's C bits in Cw words
    return unpack_bits(words, layer.channels, axis=1) > 0


def padded_bits(layer: PackedConvolution, signs: np.ndarray) -> np.ndarray:
    """Input bits (C, H, W) with the border of pad_value's sign (binary convolutions pad with ±1)."""
    (ph, pw) = layer.pad
    return np.pad(signs, ((0, 0), (ph, ph), (pw, pw)), constant_values=layer.pad_value >= 0)


def conv_dots(layer: PackedConvolution, signs: np.ndarray) -> np.ndarray:
    """The ±1 dot products (F, OH, OW), int, as ``K - 2 popcount(patch XOR filter)``."""
    patches = im2col_reference(padded_bits(layer, signs)[None], layer.kernel, layer.stride)  # (OH OW, K)
    filters = filter_signs(layer).reshape(layer.num_filter, -1)  # (F, K), same (c, u, v) order
    popcounts = np.stack([np.count_nonzero(patches ^ f, axis=1) for f in filters])  # (F, OH OW)
    oh, ow = output_hw(signs.shape[1:], layer.kernel, layer.stride, layer.pad)
    return (layer.bits - 2 * popcounts).reshape(-1, oh, ow)


def affine(dots: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``dot * scale + shift`` per channel (axis 0), in float64 rounded to float32 as the layer's kernel does."""
    shape = (-1,) + (1,) * (dots.ndim - 1)
    return (dots * scale.astype(np.float64).reshape(shape) + shift.astype(np.float64).reshape(shape)).astype(np.float32)


def packed_conv_output(layer: PackedConvolution, signs: np.ndarray) -> np.ndarray:
    """A PackedConvolution's output (F, OH', OW') from its input bits, pooled if the layer pools."""
    _, scale, shift = packed_arrays(layer)
    y = affine(conv_dots(layer, signs), scale, shift)
    if layer.pool_kernel is None:
        return y
    return pooling_windows(y, layer.pool_kernel, layer.pool_stride).max(axis=(-2, -1))


def packed_dense_output(layer: PackedFullyConnected, signs: np.ndarray) -> np.ndarray:
    """A PackedFullyConnected's output (num_hidden,) from its input bits (D,)."""
    weight_bits, scale, shift = packed_arrays(layer)
    weights = unpack_bits(weight_bits, layer.features) > 0  # (H, D)
    dots = layer.features - 2 * np.count_nonzero(weights ^ signs, axis=1)
    return dots.astype(np.float32) * scale + shift


# --- one output value, spelled out ------------------------------------------------------
def explain(model: Module, image: np.ndarray, layer_index: int, position: tuple[int, ...]) -> dict[str, Any]:
    """How output ``position`` of binary layer ``layer_index`` is computed on ``image``.

    ``position`` is (channel, row, column) for a PackedConvolution (into its
    output, after its pooling if it pools) and (unit,) for a
    PackedFullyConnected. Returns a JSON-friendly dict; bit arrays are bool
    NumPy arrays (True = +1) for the caller to encode."""
    layers = layers_of(model)
    if not isinstance(layer_index, int) or isinstance(layer_index, bool) or not 0 <= layer_index < len(layers):
        raise ArgumentError(f"layer must be an index 0..{len(layers) - 1}, got {layer_index!r}")
    x = np.asarray(image, np.float32)
    for layer in layers[:layer_index]:
        x = run_layer(layer, x)
    layer = layers[layer_index]
    if isinstance(layer, PackedConvolution):
        return explain_conv(layer, x, position)
    if isinstance(layer, PackedFullyConnected):
        return explain_dense(layer, x, position)
    raise ArgumentError(
        f"layer {layer_index} is a {type(layer).__name__}; only binary layers "
        "(PackedConvolution, PackedFullyConnected) can be explained"
    )


def check_position(position: Any, shape: tuple[int, ...], names: str) -> tuple[int, ...]:
    ok = (
        isinstance(position, (list, tuple))
        and len(position) == len(shape)
        and all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < n for p, n in zip(position, shape))
    )
    if not ok:
        raise ArgumentError(f"position must be [{names}] within {list(shape)}, got {position!r}")
    return tuple(position)


def explain_conv(layer: PackedConvolution, x: np.ndarray, position: Any) -> dict[str, Any]:
    signs = packed_conv_input_bits(layer, x)
    dots = conv_dots(layer, signs)
    _, scales, shifts = packed_arrays(layer)
    values = affine(dots, scales, shifts)
    if layer.pool_kernel is None:
        out_shape, window = values.shape, None
    else:
        windows = pooling_windows(values, layer.pool_kernel, layer.pool_stride)
        out_shape = windows.shape[:3]
    f, i, j = check_position(position, out_shape, "channel, row, column")
    if layer.pool_kernel is not None:
        assert layer.pool_stride is not None  # set with pool_kernel
        (qh, qw), (qsh, qsw) = layer.pool_kernel, layer.pool_stride
        candidates = windows[f, i, j]
        u, v = np.unravel_index(int(np.argmax(candidates)), candidates.shape)  # first maximum
        window = {
            "kernel": [qh, qw],
            "top_left": [i * qsh, j * qsw],
            "values": candidates.tolist(),
            "chosen": [int(u), int(v)],
        }
        i, j = i * qsh + int(u), j * qsw + int(v)
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    patch = padded_bits(layer, signs)[:, i * sh : i * sh + kh, j * sw : j * sw + kw]
    weights = filter_signs(layer)[f]
    xor = patch ^ weights
    popcount = int(np.count_nonzero(xor))
    dot = layer.bits - 2 * popcount
    scale, shift = float(scales[f]), float(shifts[f])
    return {
        "layer_type": "PackedConvolution",
        "filter": f,
        "conv_position": [i, j],
        "pool": window,
        "shape": list(patch.shape),
        "patch_bits": patch,
        "filter_bits": weights,
        "xor_bits": xor,
        "K": layer.bits,
        "popcount": popcount,
        "dot": dot,
        "scale": scale,
        "shift": shift,
        "result": float(values[f, i, j]),
    }


def explain_dense(layer: PackedFullyConnected, x: np.ndarray, position: Any) -> dict[str, Any]:
    signs = x.reshape(-1) >= 0
    (h,) = check_position(position, (layer.num_hidden,), "unit")
    weight_bits, scales, shifts = packed_arrays(layer)
    weights = unpack_bits(weight_bits[h : h + 1], layer.features)[0] > 0
    xor = signs ^ weights
    popcount = int(np.count_nonzero(xor))
    dot = layer.features - 2 * popcount
    scale, shift = float(scales[h]), float(shifts[h])
    return {
        "layer_type": "PackedFullyConnected",
        "filter": h,
        "conv_position": None,
        "pool": None,
        "shape": list(signs.shape),
        "patch_bits": signs,
        "filter_bits": weights,
        "xor_bits": xor,
        "K": layer.features,
        "popcount": popcount,
        "dot": dot,
        "scale": scale,
        "shift": shift,
        "result": float(np.float32(dot) * scales[h] + shifts[h]),
    }
