"""Inference layers that run binary convolutions and dense layers on packed bits.

Papers: the XNOR-popcount dot and the scale alpha, Rastegari et al., "XNOR-Net" (ECCV 2016,
arXiv:1603.05279); weights packed to 1 bit by a converter, Yang et al., "BMXNet" (ACM
Multimedia 2017, arXiv:1705.09864).

:func:`tinybnn.convert.convert_model` turns every QConvolution and
QFullyConnected with ``act_bit = weight_bit = 1`` into one of these. They hold
the filters as bits (``uint64`` words, 1 bit per weight, least significant first) and
everything that follows the ±1 dot product and is linear per output channel
— XNOR-Net's scale alpha, the bias, a BatchNorm in evaluation mode — folded
into one multiply-add::

    y[f] = dot[f] * scale[f] + shift[f],   dot = K - 2 popcount(bits(x) XOR bits(w))

For a BatchNorm with statistics (mu, var) and (gamma, beta) after a layer with
scale alpha and bias b: scale = alpha gamma / sqrt(var + eps) and
shift = (b - mu) gamma / sqrt(var + eps) + beta.

The input is binarized and packed straight from the float activations
(:func:`tinybnn.gemm.bitconv.pack_channels`), gathered into patches of words
(:func:`~tinybnn.gemm.bitconv.im2col_words`, padding with ±1 words), and
multiplied with :func:`tinybnn.gemm.xnor_parallel`. The dot products are
exact integers, the same numbers the float path computes on ±1 values.
They are inference-only: no gradient flows through them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange

from ..autograd import Tensor
from ..autograd.conv import check_conv_shapes, output_size
from ..errors import ShapeError
from ..schema import PAIR, POSITIVE, Bool, Float, Obj
from ..gemm import pack_bits, packed_words, pad_words, unpack_bits, xnor_parallel
from ..gemm.bitconv import nominal_bits, pack_channels, pack_normalized_channels, patch_dots
from ..workspace import empty
from .convolution import check_geometry, check_pad_value, conv_geometry, positive
from .module import FLOAT32, Cost, Filters, Footprint, Module, bits_cost, register_layer


@njit(parallel=True, cache=True)
def _affine_pool_nchw(dots, correction, scale, shift, n_images, oh, ow, qh, qw, qsh, qsw, out):  # pragma: no cover
    """out[n, f, i, j] = max over the (qh, qw) window at (i qsh, j qsw) of
    (dots[(n, y, x), f] - correction) * scale[f] + shift[f]; a 1x1 window is no pooling."""
    filters = dots.shape[1]
    out_h, out_w = out.shape[2], out.shape[3]
    for task in prange(n_images * filters):
        n = task // filters
        f = task % filters
        s = scale[f]
        t = shift[f]
        for i in range(out_h):
            for j in range(out_w):
                best = -np.inf
                for u in range(qh):
                    for v in range(qw):
                        row = (n * oh + i * qsh + u) * ow + j * qsw + v
                        best = max(best, (dots[row, f] - correction) * s + t)
                out[n, f, i, j] = best
    return out


def folded_affine(layer: Any, bn: Any) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of a 1-bit Q-layer with its alpha and bias and ``bn`` (evaluation mode) folded in::

        scale = alpha gamma / sqrt(running_var + eps)
        shift = (b - running_mean) gamma / sqrt(running_var + eps) + beta

    alpha = mean |W_f| with ``scaling_factor`` (else 1; XNOR-Net's scaling factor, Rastegari et
    al. 2016), times mean |W_f| once more with ``weight_method="magnitude_aware_sign"`` (Bi-Real
    Net's weights are alpha_f sign(w)), b the bias (else 0); without ``bn``, scale = alpha and shift = b.
    Computed in float64, stored as float32.
    """
    weight = layer.weight.data.astype(np.float64)
    outputs = weight.shape[0]
    scale = np.abs(weight).reshape(outputs, -1).mean(axis=1) if layer.scaling_factor else np.ones(outputs)
    if getattr(layer, "weight_method", "det_sign") == "magnitude_aware_sign":
        scale = scale * np.abs(weight).reshape(outputs, -1).mean(axis=1)
    shift = layer.bias.data.astype(np.float64) if layer.bias is not None else np.zeros(outputs)
    if bn is not None:
        factor = bn.gamma.data.astype(np.float64) / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
        scale = scale * factor
        shift = (shift - bn.running_mean) * factor + bn.beta.data
    return scale.astype(np.float32), shift.astype(np.float32)


class PackedModule(Module):
    """Shared bookkeeping: the packed filters and the per-channel scale and shift.

    A packed layer computes on bits (BMXNet's converted layers, Yang et al. 2017).

    ``weight_bits`` holds exactly the words the bits need (what the file
    stores); the XNOR kernels get a copy padded to a multiple of 8 words.
    """

    buffer_names: tuple[str, ...] = ("weight_bits", "scale", "shift")

    def __init__(self) -> None:
        super().__init__()
        self.weight_bits: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.shift: np.ndarray | None = None

    def computes_on_bits(self) -> bool:
        return True

    def allocate(self, outputs: int, words: int) -> None:
        self.weight_bits = np.zeros((outputs, words), dtype=np.uint64)
        self.scale = np.ones(outputs, dtype=np.float32)
        self.shift = np.zeros(outputs, dtype=np.float32)


@register_layer
class PackedConvolution(PackedModule):
    """Binary convolution on packed bits with a folded per-channel multiply-add (inference only).

    For input x (N, C, H, W), K = C KH KW and filter f::

        y[n, f, i, j] = dot * scale[f] + shift[f],
        dot = K - 2 popcount(bits(patch (i, j) of sign(x), padded with pad_value) XOR bits(sign(W_f)))

    the same as a QConvolution (act_bit = weight_bit = 1) followed by the
    BatchNorm folded into ``scale`` and ``shift`` (module docstring). Bits
    are 1 for +1 and 0 for -1, with sign(0) = +1.

    ``weight_bits`` (F, KH KW Cw) uint64, Cw = ceil(C / 64), holds each
    filter pixel by pixel in (u, v) order, each pixel's C channel signs in
    Cw words, least significant bit first (bit c % 64 of word c // 64;
    :func:`tinybnn.gemm.bitconv.pack_filters`); unused bits are 0. The input
    is packed the same way per pixel and gathered into patches of words.

    Two optional steps absorb the layers around it, exactly:

    - ``input_norm=True``: a BatchNorm (evaluation mode) before it; the signs
      of ``(x - input_mean) input_inv_std input_gamma + input_beta`` are
      packed without that output ever being written, by the BatchNorm's own
      float32 operations in its order (so the signs are the same);
    - ``pool_kernel``: a max pooling after it, taken over the values of the
      multiply-add as they are computed (the maximum of the same numbers).
    """

    def __init__(
        self,
        kernel,
        num_filter: int,
        channels: int,
        stride=1,
        pad=0,
        pad_value: float = 1.0,
        input_norm: bool = False,
        pool_kernel=None,
        pool_stride=None,
    ):
        super().__init__()
        where = "PackedConvolution"
        self.kernel, self.stride, self.pad = check_geometry(kernel, stride, pad, where)
        self.num_filter = positive(num_filter, "num_filter", where)
        self.channels = positive(channels, "channels", where)
        self.pad_value = check_pad_value(pad_value, where)
        self.bits = self.channels * self.kernel[0] * self.kernel[1]
        self.allocate(self.num_filter, packed_words(nominal_bits(self.channels, self.kernel)))
        self.input_norm = bool(input_norm)
        if self.input_norm:
            self.buffer_names = PackedModule.buffer_names + ("input_mean", "input_inv_std", "input_gamma", "input_beta")
            self.input_mean = np.zeros(self.channels, np.float32)
            self.input_inv_std = np.ones(self.channels, np.float32)
            self.input_gamma = np.ones(self.channels, np.float32)
            self.input_beta = np.zeros(self.channels, np.float32)
        self.pool_kernel = self.pool_stride = None
        if pool_kernel is not None:
            self.pool_kernel, self.pool_stride, _ = check_geometry(
                pool_kernel, pool_kernel if pool_stride is None else pool_stride, 0, where
            )

    config_schema = Obj(
        {"kernel": PAIR, "num_filter": POSITIVE, "channels": POSITIVE},
        {
            "stride": PAIR,
            "pad": PAIR,
            "pad_value": Float(-1.0, 1.0),
            "input_norm": Bool(),
            "pool_kernel": PAIR,
            "pool_stride": PAIR,
        },
    )

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """Filters F Kw words, scale and shift (and 4 C input-norm values); scratch: the packed
        input, its patches of words (padded to 8-word rows) and the int32 dot products."""
        where = cls.__name__
        channels, filters = config["channels"], config["num_filter"]
        if len(input_shape) != 3 or input_shape[0] != channels:
            raise ShapeError(f"{where}: expected input (N, {channels}, H, W), got shape {(1, *input_shape)}")
        kernel, _, _, oh, ow = conv_geometry(config, input_shape, where)
        pool = config["pool_kernel"]
        (qh, qw), (qsh, qsw) = (1, 1), (1, 1)
        if pool is not None:
            (qh, qw), (qsh, qsw), _ = check_geometry(
                pool, pool if config["pool_stride"] is None else config["pool_stride"], 0, where
            )
        if qh > oh or qw > ow:
            raise ShapeError(f"{where}: pooling {(qh, qw)} is larger than the output {oh}x{ow}")
        nominal = nominal_bits(channels, kernel)
        state = 8 * filters * packed_words(nominal) + FLOAT32 * (
            2 * filters + (4 * channels if config["input_norm"] else 0)
        )
        scratch = 8 * input_shape[1] * input_shape[2] * packed_words(channels) + oh * ow * (
            8 * packed_words(nominal, 8) + 4 * filters
        )
        shape = (filters, (oh - qh) // qsh + 1, (ow - qw) // qsw + 1)
        return Footprint(shape, state, FLOAT32 * math.prod(shape), scratch)

    def forward(self, x: Tensor) -> Tensor:
        data = x.data
        if data.ndim != 4 or data.shape[1] != self.channels:
            raise ShapeError(f"{self.label()}: expected input (N, {self.channels}, H, W), got shape {data.shape}")
        n = data.shape[0]
        oh, ow = check_conv_shapes(
            data.shape, (self.num_filter, self.channels, *self.kernel), self.pad, self.stride, where=self.label()
        )
        (qh, qw), (qsh, qsw) = self.pool_kernel or (1, 1), self.pool_stride or (1, 1)
        if qh > oh or qw > ow:
            raise ShapeError(f"{self.label()}: pooling {self.pool_kernel} is larger than the output {oh}x{ow}")
        if self.input_norm:
            words = pack_normalized_channels(
                data, self.input_mean, self.input_inv_std, self.input_gamma, self.input_beta
            )
        else:
            words = pack_channels(data)
        dots, correction = patch_dots(
            words, pad_words(self.weight_bits, 8), self.channels, self.kernel, self.stride, self.pad, self.pad_value
        )
        out = empty((n, self.num_filter, (oh - qh) // qsh + 1, (ow - qw) // qsw + 1), np.float32)
        return Tensor(
            _affine_pool_nchw(dots, np.int32(correction), self.scale, self.shift, n, oh, ow, qh, qw, qsh, qsw, out)
        )

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        """Stored as it is held; its multiply-accumulates are counted before its max pooling."""
        floats = sum(b.size for name, b in self.named_buffers() if name != "weight_bits")
        weights = self.num_filter * self.bits
        positions = math.prod(y.shape[2:])
        if self.pool_kernel is not None:
            positions = math.prod(
                output_size(n, k, s, p) for n, k, s, p in zip(x.shape[2:], self.kernel, self.stride, self.pad)
            )
        words = self.kernel[0] * self.kernel[1] * packed_words(x.shape[1])
        return bits_cost(self.num_filter, words, weights + floats, weights + floats, floats, weights * positions)

    def filters(self) -> np.ndarray:
        """The ±1 filters (F, C, KH, KW), unpacked from ``weight_bits`` (F, KH KW Cw) read as
        (F, KH, KW, Cw): pixel (u, v) of filter f holds its C channel signs in Cw words, bit c % 64
        of word c // 64, 1 for +1 (:func:`tinybnn.gemm.bitconv.pack_filters`)."""
        assert self.weight_bits is not None
        words = self.weight_bits.reshape(self.num_filter, *self.kernel, -1)
        return unpack_bits(words, self.channels, axis=-1).transpose(0, 3, 1, 2)

    def drawn_filters(self) -> Filters | None:
        return Filters("binary", self.filters(), 1)

    def config(self) -> dict[str, Any]:
        config = {
            "kernel": list(self.kernel),
            "num_filter": self.num_filter,
            "channels": self.channels,
            "stride": list(self.stride),
            "pad": list(self.pad),
            "pad_value": self.pad_value,
        }
        if self.input_norm:
            config["input_norm"] = True
        if self.pool_kernel is not None:
            config.update(pool_kernel=list(self.pool_kernel), pool_stride=list(self.pool_stride or self.pool_kernel))
        return config


@register_layer
class PackedFullyConnected(PackedModule):
    """Binary dense layer on packed bits with a folded per-channel multiply-add (inference only).

    ``y[n, h] = (D - 2 popcount(bits(sign(x_n)) XOR bits(sign(W_h)))) * scale[h] + shift[h]``,
    with ``weight_bits`` (num_hidden, ceil(D / 64)) uint64 holding the signs
    of each row of W, least significant bit first, 1 for +1 (tail bits 0).
    """

    def __init__(self, num_hidden: int, features: int):
        super().__init__()
        self.num_hidden = positive(num_hidden, "num_hidden", "PackedFullyConnected")
        self.features = positive(features, "features", "PackedFullyConnected")
        self.allocate(self.num_hidden, packed_words(self.features))

    config_schema = Obj({"num_hidden": POSITIVE, "features": POSITIVE})

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """Rows of ceil(D / 64) words, scale and shift; scratch: the packed input."""
        features, hidden = config["features"], config["num_hidden"]
        if math.prod(input_shape) != features:
            raise ShapeError(f"{cls.__name__}: expected input with {features} features, got shape {(1, *input_shape)}")
        words = packed_words(features)
        return Footprint(
            (hidden,), 8 * hidden * words + FLOAT32 * 2 * hidden, FLOAT32 * hidden, 8 * packed_words(features, 8)
        )

    def forward(self, x: Tensor) -> Tensor:
        data = x.data.reshape(x.shape[0], -1) if x.ndim > 2 else x.data
        if data.ndim != 2 or data.shape[1] != self.features:
            raise ShapeError(f"{self.label()}: expected input with {self.features} features, got shape {x.shape}")
        dots = xnor_parallel(pack_bits(data, axis=-1, pad_words_to=8), pad_words(self.weight_bits, 8), self.features)
        assert self.scale is not None and self.shift is not None
        return Tensor(dots.astype(np.float32) * self.scale + self.shift)

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        """Stored as it is held: ceil(D / 64) words per output, a float32 scale and shift per output."""
        floats = sum(b.size for name, b in self.named_buffers() if name != "weight_bits")
        weights = self.num_hidden * self.features
        return bits_cost(
            self.num_hidden, packed_words(x.data[0].size), weights + floats, weights + floats, floats, weights
        )

    def config(self) -> dict[str, Any]:
        return {"num_hidden": self.num_hidden, "features": self.features}
