"""Fused inference stages: bits flow from one binary layer to the next.

Paper: a BatchNorm and a sign folded into one threshold per channel, Umuroglu et al., "FINN: A
Framework for Fast, Scalable Binarized Neural Network Inference" (FPGA 2017, arXiv:1612.07119).

The unfused packed layers (:mod:`tinybnn.layers.packed`) hand each other
float32 feature maps: a binary convolution computes ``dot * scale + shift``
per output, a max pooling takes maxima of those floats, and the next binary
layer packs their signs again. When a layer's output only feeds max pooling
and the next layer's sign, the floats are never needed: the sign of every
output is a per-channel threshold on the integer dot product
(:mod:`tinybnn.layers.thresholds`), exact for every possible dot, and the
layer can write the packed bits directly. :func:`tinybnn.convert.convert_model`
builds these stages from the unfused layers:

- :class:`ConvolutionToBits`: the float first block — a convolution with few
  input channels, a monotone activation (tanh), max pooling and the sign of
  a BatchNorm — as one direct convolution writing bits;
- :class:`BitConvolution`: a binary convolution reading bits (or packing its
  float input), with its max pooling, writing bits (thresholds) or floats
  (the folded multiply-add);
- :class:`BitDense`: a binary dense layer reading bits, with its folded
  BatchNorm, an activation and a float classifier after it, in one call.

Bits between stages are ``uint64`` words (N, H, W, Cw), Cw = ceil(C / 64):
pixel-major, each pixel's C channel signs in Cw words, bit c % 64 of word
c // 64, 1 for +1; unused bits 0. That is the layout
:func:`tinybnn.gemm.bitconv.pack_channels` writes, so a binary convolution
reads it as is; a dense layer after a Flatten gets its weight columns
permuted to it by the converter.

Threads: each kernel has a parallel variant (``prange`` over images; the
first stage's over rows of pooled pixels of every image) and a
serial one compiled from the same code; a batch smaller than
:func:`parallel_min_batch` images, or a Numba thread count of 1, runs the
serial one, so a batch of 1 pays no thread start-up. The thread count itself
is Numba's (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``), never changed
here; ``TINYBNN_PARALLEL_MIN_BATCH`` sets the batch from which threads are used.

Every array a stage returns is new; scratch lives inside the kernels, one
per image, so a model may be called from several threads at once.
"""

from __future__ import annotations

import math
import os
import types
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from ..autograd import Tensor
from ..autograd.conv import check_conv_shapes, output_size
from ..errors import ArgumentError, ShapeError
from ..gemm import packed_words, unpack_bits
from ..gemm.local import COLUMNS, ROWS, WORD_ROWS, register_block, word_block
from ..gemm.bitconv import pack_channels, pack_normalized_channels, pad_words_of_pixel
from ..gemm.xnor import popcount64
from ..schema import PAIR, POSITIVE, Bool, Float, Int, Obj, Str
from .convolution import check_geometry, check_pad_value, conv_geometry, positive
from .module import FLOAT32, Cost, Filters, Footprint, Module, register_layer

DEFAULT_PARALLEL_MIN_BATCH = 4


def parallel_min_batch() -> int:
    """The smallest batch the fused stages split over threads: ``TINYBNN_PARALLEL_MIN_BATCH``, else 4."""
    value = os.environ.get("TINYBNN_PARALLEL_MIN_BATCH")
    if value is None:
        return DEFAULT_PARALLEL_MIN_BATCH
    try:
        return max(1, int(value))
    except ValueError:
        raise ArgumentError(f"TINYBNN_PARALLEL_MIN_BATCH must be an integer, got {value!r}") from None


def choose(kernels: tuple, batch: int):
    """The (parallel, serial) kernel pair's member for a batch of ``batch`` images."""
    parallel, serial = kernels
    return parallel if batch >= parallel_min_batch() and numba.get_num_threads() > 1 else serial


def twin_kernels(function, fastmath=False):
    """The same kernel compiled twice: with ``prange`` over threads, and serial (``prange`` is
    ``range`` there). The serial copy gets its own name, so that Numba's cache keeps the two apart."""
    serial = types.FunctionType(
        function.__code__,
        function.__globals__,
        function.__name__ + "_serial",
        function.__defaults__,
        function.__closure__,
    )
    serial.__qualname__ = function.__qualname__ + "_serial"
    return (njit(parallel=True, cache=True, fastmath=fastmath)(function), njit(cache=True, fastmath=fastmath)(serial))


def planned(layer, shape: tuple[int, ...]):
    """``layer.plan(shape)`` (shapes checked, sizes and kernel arguments worked out), computed once per input
    shape and kept: a call at batch 1 then pays no Python arithmetic. The table is only ever added to, one
    entry at a time, so concurrent calls at most compute an entry twice."""
    plans = layer.__dict__.setdefault("_plans", {})
    plan = plans.get(shape)
    if plan is None:
        plan = plans[shape] = layer.plan(shape)
    return plan


def pooled_size(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


# --- the float first stage --------------------------------------------------------------------------
#: filters per block of the first stage's kernel (four vectors of 16 float32, one output word of bits) and
#: pooling-window pixels convolved together: 16 accumulators in registers, each filter row loaded once for the
#: 4 pixels and each pixel once for the 64 filters
FILTER_BLOCK, WINDOW_GROUP = COLUMNS, ROWS
#: a float32's bits but its sign: 0 for +0 and -0 only
MAGNITUDE = np.uint32(0x7FFFFFFF)


@njit(cache=True, inline="always")
def tap_offsets(a, b, c, stride_a, stride_b):  # pragma: no cover (compiled)
    """offset[(i b + j) c + k] = i stride_a + j stride_b + k (uint64): a patch's taps, from its corner."""
    offset = np.empty(a * b * c, np.uint64)
    for i in range(a):
        for j in range(b):
            for k in range(c):
                offset[(i * b + j) * c + k] = i * stride_a + j * stride_b + k
    return offset


def _float_conv_bits(x, blocks, bias, flip, threshold, kh, kw, sh, sw, qh, qw, qsh, qsw, out):
    # pragma: no cover (compiled)
    # x (N, C, Hp, Wp) C-contiguous, already zero-padded; blocks (B, C KH KW, FILTER_BLOCK): filters in blocks
    n_images, channels, height, width = x.shape
    flat = x.reshape((n_images, channels * height * width))
    bits = flat.view(np.uint32)
    filters = bias.shape[0]
    out_h, out_w = out.shape[1], out.shape[2]
    taps, window = channels * kh * kw, qh * qw
    # tap (c, u, v) -> its offset from the patch's corner in flat; unsigned, so no index needs a wraparound test
    offset = tap_offsets(channels, kh, kw, height * width, width)
    # window pixel q -> its corner's offset from the window's first; a short last group repeats its last pixel
    groups = -(-window // WINDOW_GROUP)
    window_offset = np.empty(groups * WINDOW_GROUP, np.uint64)
    for q in range(groups * WINDOW_GROUP):
        p = min(q, window - 1)
        window_offset[q] = (p // qw) * sh * width + (p % qw) * sw
    skip_zeros = np.isfinite(blocks).all()
    for row in prange(n_images * out_h):  # rows of pooled pixels: one image's work splits over threads too
        n, i = row // out_h, row % out_h
        acc = register_block()  # acc[g, f]: z of window pixel g0 + g, filter f0 + f
        best = np.empty(FILTER_BLOCK, np.float32)  # each filter's largest z in the window
        for j in range(out_w):
            for block in range(blocks.shape[0]):  # one block of filters = one output word
                best[:] = -np.inf
                base = np.uint64(i * qsh * sh * width + j * qsw * sw)
                for g0 in range(0, window, WINDOW_GROUP):
                    c0, c1 = base + window_offset[g0], base + window_offset[g0 + 1]
                    c2, c3 = base + window_offset[g0 + 2], base + window_offset[g0 + 3]
                    for g in range(WINDOW_GROUP):
                        for f in range(FILTER_BLOCK):
                            acc[g, f] = 0
                    for t in range(taps):
                        o = offset[t]
                        a0, a1, a2, a3 = flat[n, c0 + o], flat[n, c1 + o], flat[n, c2 + o], flat[n, c3 + o]
                        b0, b1, b2, b3 = bits[n, c0 + o], bits[n, c1 + o], bits[n, c2 + o], bits[n, c3 + o]
                        if skip_zeros and (b0 | b1 | b2 | b3) & MAGNITUDE == 0:
                            continue  # all four are +-0: fma(+-0, w, z) = z for finite w, and z is never -0
                        for f in range(FILTER_BLOCK):
                            wf = blocks[block, t, f]
                            acc[0, f] += a0 * wf
                            acc[1, f] += a1 * wf
                            acc[2, f] += a2 * wf
                            acc[3, f] += a3 * wf
                    for f in range(FILTER_BLOCK):
                        best[f] = max(best[f], max(max(acc[0, f], acc[1, f]), max(acc[2, f], acc[3, f])))
                # d_f(m) without a branch: s m >= s threshold with s = flip = +-1 (negation is exact)
                f0 = block * FILTER_BLOCK
                word = np.uint64(0)
                for f in range(min(FILTER_BLOCK, filters - f0)):
                    m = best[f] + bias[f0 + f]  # max(z + b) = max(z) + b: rounding is monotone
                    s = np.float32(flip[f0 + f])
                    word |= np.uint64(s * m >= s * threshold[f0 + f]) << np.uint64(f)
                out[n, i, j, block] = word


# fused multiply-adds (LLVM's "contract", nothing else of fast-math): z = fma(x, w, z) tap after tap
_FLOAT_CONV_BITS = twin_kernels(_float_conv_bits, fastmath={"contract"})


@njit(cache=True, fastmath={"contract"})
def pooled_first_stage_z(x, filters, bias, sh, sw, qh, qw, qsh, qsw):  # pragma: no cover (compiled)
    """The obvious twin of the first stage's kernel, up to the decision: for x (N, C, Hp, Wp) already
    zero-padded and filters (F, C, KH, KW), m[n, f, i, j] = max over pooling window (i, j) of
    z + bias[f], z summed one fused multiply-add per tap in (c, u, v) order from 0 (float32)."""
    n_images, channels, height, width = x.shape
    n_filters, kh, kw = filters.shape[0], filters.shape[2], filters.shape[3]
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    pooled_h, pooled_w = (out_h - qh) // qsh + 1, (out_w - qw) // qsw + 1
    m = np.full((n_images, n_filters, pooled_h, pooled_w), -np.inf, np.float32)
    for n in range(n_images):
        for f in range(n_filters):
            for i in range(pooled_h):
                for j in range(pooled_w):
                    for p in range(qh):
                        for q in range(qw):
                            y, xx = (i * qsh + p) * sh, (j * qsw + q) * sw
                            z = np.float32(0)
                            for c in range(channels):
                                for u in range(kh):
                                    for v in range(kw):
                                        z += x[n, c, y + u, xx + v] * filters[f, c, u, v]
                            m[n, f, i, j] = max(m[n, f, i, j], z + bias[f])
    return m


def filter_blocks(weight: np.ndarray) -> np.ndarray:
    """``weight`` (taps, F) as (B, taps, FILTER_BLOCK) blocks of filters, zero filters appended to fill the
    last: a view of ``weight`` when F is FILTER_BLOCK."""
    taps, filters = weight.shape
    if filters == FILTER_BLOCK:
        return weight.reshape(1, taps, FILTER_BLOCK)
    blocks = np.zeros((taps, -(-filters // FILTER_BLOCK) * FILTER_BLOCK), weight.dtype)
    blocks[:, :filters] = weight
    return np.ascontiguousarray(blocks.reshape(taps, -1, FILTER_BLOCK).transpose(1, 0, 2))


#: the activations a ConvolutionToBits may record: identity and the non-decreasing ones its thresholds absorb
def stage_cost(layer: Any, x: Tensor, y: Tensor) -> Cost:
    """A fused stage's line in the summary: what it stores is its buffers; its output shape is given
    as (C, H, W) even where it is packed bits; multiply-accumulates are counted before its pooling."""
    stored = sum(b.nbytes for _, b in layer.named_buffers())
    values = sum(b.size for name, b in layer.named_buffers() if name != "weight_bits")
    if isinstance(layer, BitDense):
        weights, float_macs = layer.num_hidden * layer.features, layer.num_hidden * layer.classes
        shape, binary_macs = (layer.classes or layer.num_hidden,), weights
    else:
        h, w = x.shape[1:3] if x.data.dtype == np.uint64 else x.shape[2:]
        positions = math.prod(
            output_size(n, k, s, p) for n, k, s, p in zip((h, w), layer.kernel, layer.stride, layer.pad)
        )
        shape = (layer.num_filter, *(y.shape[1:3] if y.data.dtype == np.uint64 else y.shape[2:]))
        if isinstance(layer, ConvolutionToBits):
            weights, binary_macs, float_macs = 0, 0, layer.weight.size * positions
        else:
            weights, float_macs = layer.num_filter * layer.bits, 0
            binary_macs = weights * positions
    bits = 32 if isinstance(layer, ConvolutionToBits) else 1
    return Cost(weights + values, bits, FLOAT32 * (weights + values), stored, binary_macs, float_macs, shape)


RECORDED_ACTIVATIONS = ("identity", "tanh", "relu", "sigmoid", "hardtanh")


@register_layer
class ConvolutionToBits(Module):
    """A float convolution, a monotone activation, max pooling and a sign, as one stage writing bits.

    For input x (N, C, H, W) and filter f, with z = conv(x, W_f) + b_f (float32)::

        bit[n, i, j, f] = sign(post(maxpool(act(z)))) = d_f(m),  m = max of z over the window,
        d_f(m) = [m >= threshold[f]] (flip[f] = +1)  or  [m <= threshold[f]] (flip[f] = -1)

    where ``act`` is non-decreasing (tanh), ``post`` a per-channel float32
    BatchNorm and the sign that of the next binary layer. The activation
    commutes with the maximum (maxpool(act(z)) = act(max z)), and
    ``d = sign(post(act(.)))`` is monotone, so it is one comparison of max z
    with a float32 threshold: rising where the BatchNorm's scale is
    positive, falling where it is negative (there the OR of the pixels'
    bits becomes an AND). The thresholds are found by bisection over the
    float32 numbers with the unfused layers' own arithmetic
    (:func:`tinybnn.layers.thresholds.float_thresholds`).

    The decision is the float path's for the same z. z itself is summed as
    the float path's fast convolution sums it: a fused multiply-add per tap
    from 0, then the bias. That is the order of its direct kernel (taken
    where Numba compiles for AVX-512) and of OpenBLAS's SkylakeX/Zen GEMM
    kernels on its patch rows; on MNIST it gives the float path's z bit for
    bit. Another BLAS kernel (OpenBLAS's Haswell one) sums in another order,
    and then a bit can flip where z lies within rounding of its threshold
    (docs/thresholds.md). The taps go in (c, u, v) order here and in (u, v, c)
    order on the float path: the same order for one input channel (LeNet's
    grey digits), not for more.

    ``weight`` (C KH KW, F) float32 holds the filters tap by tap, (c, u, v)
    order, filters innermost. Padding is with 0 (a float convolution).

    Optimizations: a direct convolution (no im2col, no BLAS call), 4 pixels
    of a pooling window at a time against a block of 64 filters (one output
    word), whose 16 accumulator vectors live in registers (a stack tile,
    :func:`tinybnn.gemm.local.register_block`): per tap 4 vector loads of
    the filters and 16 multiply-adds with the 4 pixels broadcast from
    memory, 16 independent chains (the old 16-filter block had 4 and ran 3x
    slower); unsigned tap offsets, so no index needs a wraparound test; the
    window's maximum is taken before the bias (rounding is monotone, so
    max(z) + b = max(z + b)); no feature map is written; the 64 decisions
    of a word without a branch (``flip m >= flip threshold``, negation
    being exact), OR-ed into the word in a register; a tap whose 4 pixels
    are all +-0 is skipped (one OR of their bits), which leaves every z bit
    for bit as it was: fma(+-0, w, z) = z for finite w and any z but -0, and
    z, summed from +0 in round-to-nearest, is never -0 (an exact
    cancellation gives +0); while a weight is not finite (0 inf is NaN) no
    tap is skipped. On MNIST, whose digits are 82% zero pixels, 67% of the
    taps are skipped. Serial kernel for small batches.
    :func:`pooled_first_stage_z` is the obvious twin.
    """

    buffer_names = ("weight", "bias", "flip", "threshold")

    def __init__(
        self,
        kernel,
        num_filter: int,
        channels: int,
        stride=1,
        pad=0,
        activation: str = "tanh",
        pool_kernel=(1, 1),
        pool_stride=None,
    ):
        super().__init__()
        where = "ConvolutionToBits"
        self.kernel, self.stride, self.pad = check_geometry(kernel, stride, pad, where)
        self.num_filter = positive(num_filter, "num_filter", where)
        self.channels = positive(channels, "channels", where)
        self.activation = str(activation)
        self.pool_kernel, self.pool_stride, _ = check_geometry(
            pool_kernel, pool_kernel if pool_stride is None else pool_stride, 0, where
        )
        taps = self.channels * self.kernel[0] * self.kernel[1]
        self.weight = np.zeros((taps, self.num_filter), np.float32)
        self.bias = np.zeros(self.num_filter, np.float32)
        self.flip = np.ones(self.num_filter, np.int32)
        self.threshold = np.zeros(self.num_filter, np.float32)

    config_schema = Obj(
        {"kernel": PAIR, "num_filter": POSITIVE, "channels": POSITIVE},
        {
            "stride": PAIR,
            "pad": PAIR,
            "activation": Str(RECORDED_ACTIVATIONS),
            "pool_kernel": PAIR,
            "pool_stride": PAIR,
        },
    )

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """Filters C KH KW F, bias, flip and threshold (F each); output: words per pooled pixel."""
        where = cls.__name__
        channels, filters = config["channels"], config["num_filter"]
        if len(input_shape) != 3 or input_shape[0] != channels:
            raise ShapeError(f"{where}: expected input (N, {channels}, H, W), got shape {(1, *input_shape)}")
        kernel, _, _, oh, ow = conv_geometry(config, input_shape, where)
        shape = (*pooled_footprint(config, oh, ow, where), packed_words(filters))
        state = FLOAT32 * (channels * kernel[0] * kernel[1] * filters + 3 * filters)
        return Footprint(shape, state, 8 * math.prod(shape), 0)

    def plan(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output's shape for an input of ``shape``, checked once per shape (:func:`planned`)."""
        oh, ow = check_conv_shapes(
            shape, (self.num_filter, self.channels, *self.kernel), self.pad, self.stride, where=self.label()
        )
        return (shape[0], *pooled_shape(self, oh, ow), packed_words(self.num_filter))

    def forward(self, x: Tensor) -> Tensor:
        data = x.data
        if data.ndim != 4 or data.shape[1] != self.channels or data.dtype != np.float32:
            raise ShapeError(
                f"{self.label()}: expected float32 input (N, {self.channels}, H, W), "
                f"got {data.dtype} of shape {data.shape}"
            )
        out = np.empty(planned(self, data.shape), np.uint64)
        ph, pw = self.pad
        if ph or pw:  # zeros, as the float path's im2col pads: z takes fma(0, w, z) = z there
            data = np.pad(data, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        choose(_FLOAT_CONV_BITS, data.shape[0])(
            np.ascontiguousarray(data),
            filter_blocks(self.weight),
            self.bias,
            self.flip,
            self.threshold,
            *self.kernel,
            *self.stride,
            *self.pool_kernel,
            *self.pool_stride,
            out,
        )
        return Tensor(out)

    def filters(self) -> np.ndarray:
        """The float filters (F, C, KH, KW)."""
        return np.ascontiguousarray(self.weight.T).reshape(self.num_filter, self.channels, *self.kernel)

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        return stage_cost(self, x, y)

    def drawn_filters(self) -> Filters | None:
        return Filters("float", self.filters(), 32)

    def config(self) -> dict[str, Any]:
        return {
            "kernel": list(self.kernel),
            "num_filter": self.num_filter,
            "channels": self.channels,
            "stride": list(self.stride),
            "pad": list(self.pad),
            "activation": self.activation,
            "pool_kernel": list(self.pool_kernel),
            "pool_stride": list(self.pool_stride),
        }


def pooled_footprint(config: dict[str, Any], oh: int, ow: int, where: str) -> tuple[int, int]:
    """(PH, PW) of a fused stage's pooling window over an OH x OW output, from its config."""
    pool = config["pool_kernel"]
    (qh, qw), (qsh, qsw), _ = check_geometry(
        pool, pool if config["pool_stride"] is None else config["pool_stride"], 0, where
    )
    if qh > oh or qw > ow:
        raise ShapeError(f"{where}: pooling {(qh, qw)} is larger than the output {oh}x{ow}")
    return (oh - qh) // qsh + 1, (ow - qw) // qsw + 1


def pooled_shape(layer, oh: int, ow: int) -> tuple[int, int]:
    (qh, qw), (qsh, qsw) = layer.pool_kernel, layer.pool_stride
    if qh > oh or qw > ow:
        raise ShapeError(f"{layer.label()}: pooling {layer.pool_kernel} is larger than the output {oh}x{ow}")
    return pooled_size(oh, qh, qsh), pooled_size(ow, qw, qsw)


# --- binary convolution on bits -----------------------------------------------------------------------
@njit(cache=True, inline="always")
def _pixel_differ(words, n, i, j, weight, sh, sw, ph, pw, kh, kw, full_word, last_word, acc):
    # pragma: no cover (compiled)
    """acc[f] = the number of differing bits between output pixel (i, j)'s patch and filter f."""
    height, width, cw = words.shape[1], words.shape[2], words.shape[3]
    filters = weight.shape[1]
    acc[:] = 0
    for u in range(kh):
        y = i * sh + u - ph
        for v in range(kw):
            xx = j * sw + v - pw
            inside = 0 <= y < height and 0 <= xx < width
            for w in range(cw):
                if inside:
                    word = words[n, y, xx, w]
                else:
                    word = last_word if w == cw - 1 else full_word
                row = (u * kw + v) * cw + w
                for f in range(filters):
                    acc[f] += popcount64(word ^ weight[row, f])


def _bit_conv_bits(
    words, blocks, k, pool_sign, flip, threshold, sh, sw, ph, pw, kh, kw, full_word, last_word, qh, qw, qsh, qsw, out
):  # pragma: no cover (compiled)
    # blocks (B, KH KW Cw, FILTER_BLOCK): weight_bits in blocks of 64 filters, one output word each
    n_images, height, width, cw = words.shape
    filters = pool_sign.shape[0]
    out_h, out_w = out.shape[1], out.shape[2]
    hp, wp = height + 2 * ph, width + 2 * pw
    taps, window = kh * kw * cw, qh * qw
    # tap (u, v, w) -> its offset from the patch's corner in the padded image; unsigned, as in the first stage
    offset = tap_offsets(kh, kw, cw, wp * cw, cw)
    for n in prange(n_images):
        acc = word_block()  # acc[g, f]: differing bits of window pixel g0 + g and filter f0 + f
        best = np.empty(FILTER_BLOCK, np.int64)  # each filter's pool_sign dot, largest in the window
        image = np.empty(hp * wp * cw, np.uint64)  # the image with its padding pixels' words
        for y in range(hp):
            for x in range(wp):
                for w in range(cw):
                    inside = ph <= y < ph + height and pw <= x < pw + width
                    pad = last_word if w == cw - 1 else full_word
                    image[(y * wp + x) * cw + w] = words[n, y - ph, x - pw, w] if inside else pad
        for i in range(out_h):
            for j in range(out_w):
                for block in range(blocks.shape[0]):
                    f0 = block * FILTER_BLOCK
                    live = min(FILTER_BLOCK, filters - f0)
                    best[:] = -(1 << 62)
                    for g0 in range(0, window, WORD_ROWS):
                        q0, q1 = g0, min(g0 + 1, window - 1)  # a short group repeats its last pixel
                        c0 = np.uint64(((i * qsh + q0 // qw) * sh * wp + (j * qsw + q0 % qw) * sw) * cw)
                        c1 = np.uint64(((i * qsh + q1 // qw) * sh * wp + (j * qsw + q1 % qw) * sw) * cw)
                        for g in range(WORD_ROWS):
                            for f in range(FILTER_BLOCK):
                                acc[g, f] = 0
                        for t in range(taps):
                            o = offset[t]
                            a0, a1 = image[c0 + o], image[c1 + o]
                            for f in range(FILTER_BLOCK):
                                wf = blocks[block, t, f]
                                acc[0, f] += popcount64(a0 ^ wf)
                                acc[1, f] += popcount64(a1 ^ wf)
                        for f in range(live):
                            s = np.int64(pool_sign[f0 + f])
                            e = max(s * (k - 2 * np.int64(acc[0, f])), s * (k - 2 * np.int64(acc[1, f])))
                            best[f] = max(best[f], e)
                    word = np.uint64(0)
                    for f in range(live):
                        bit = np.int64(flip[f0 + f]) * np.int64(pool_sign[f0 + f]) * best[f] >= threshold[f0 + f]
                        word |= np.uint64(bit) << np.uint64(f)
                    out[n, i, j, block] = word


def _bit_conv_floats(
    words, weight, k, scale, shift, sh, sw, ph, pw, kh, kw, full_word, last_word, qh, qw, qsh, qsw, out
):  # pragma: no cover (compiled)
    filters = weight.shape[1]
    out_h, out_w = out.shape[2], out.shape[3]
    for n in prange(words.shape[0]):
        acc = np.empty(filters, np.uint64)
        best = np.empty(filters, np.float64)
        for i in range(out_h):
            for j in range(out_w):
                best[:] = -np.inf
                for u in range(qh):
                    for v in range(qw):
                        _pixel_differ(
                            words,
                            n,
                            i * qsh + u,
                            j * qsw + v,
                            weight,
                            sh,
                            sw,
                            ph,
                            pw,
                            kh,
                            kw,
                            full_word,
                            last_word,
                            acc,
                        )
                        for f in range(filters):
                            dot = k - 2 * np.int64(acc[f])
                            best[f] = max(best[f], np.float64(dot) * np.float64(scale[f]) + np.float64(shift[f]))
                for f in range(filters):
                    out[n, f, i, j] = best[f]


_BIT_CONV_BITS = twin_kernels(_bit_conv_bits)
_BIT_CONV_FLOATS = twin_kernels(_bit_conv_floats)


@register_layer
class BitConvolution(Module):
    """Binary convolution on packed bits, with its max pooling, writing bits or floats (inference only).

    For input signs x, K = C KH KW and filter f, per output pixel::

        dot = K - 2 popcount(bits(patch, padded with pad_value) XOR bits(W_f))

    as in :class:`tinybnn.layers.packed.PackedConvolution` (its readable
    twin), then over each pooling window:

    - ``output="bits"``: ``bit = [flip[f] e >= threshold[f]]``, the exact
      integer thresholds of :mod:`tinybnn.layers.thresholds`, where e is the
      dot the unfused max pooling picks: the window's largest dot where the
      folded scale is positive (``pool_sign`` +1), its smallest where it is
      negative (-1), since ``dot scale + shift`` is monotone in the dot.
      Written as (N, OH, OW, ceil(F / 64)) words, channel bits per pixel;
    - ``output="float"``: ``max over the window of (dot scale[f] + shift[f])``
      in float64, stored as float32 (N, F, OH, OW): the unfused layer's numbers.

    ``input="bits"`` takes words (N, H, W, ceil(C / 64)) from the stage
    before; ``input="float"`` packs the signs of a float (N, C, H, W) input
    first, or, with ``input_norm``, those of a BatchNorm of it
    (:func:`tinybnn.gemm.bitconv.pack_normalized_channels`).

    ``weight_bits`` (KH KW Cw, F) uint64: word w of tap (u, v) of every
    filter in row (u KW + v) Cw + w, filters innermost (the transpose of
    PackedConvolution's). Unused bits are 0 and padding pixels have them 0
    too, so they never differ.

    Optimizations: a direct convolution on words (no im2col matrix): each
    input word meets all F filters in one vectorized XOR-popcount-add loop
    (``vpopcntq`` with AVX-512 VPOPCNTDQ); with ``output="bits"``, 2 pixels
    of a pooling window against a block of 64 filters at a time, their 16
    counter vectors in registers (:func:`tinybnn.gemm.local.word_block`),
    the image copied once with its padding pixels' words, so no tap tests
    for the border, and the word of 64 decisions set without a branch
    (the 64-filter loop with its counters in memory took 2.4x the CPU time);
    pooling and thresholds on the dots of one window, in registers; serial
    kernel for small batches.
    """

    def __init__(
        self,
        kernel,
        num_filter: int,
        channels: int,
        stride=1,
        pad=0,
        pad_value: float = 1.0,
        input: str = "bits",
        output: str = "bits",
        input_norm: bool = False,
        pool_kernel=(1, 1),
        pool_stride=None,
    ):
        super().__init__()
        where = "BitConvolution"
        self.kernel, self.stride, self.pad = check_geometry(kernel, stride, pad, where)
        self.num_filter = positive(num_filter, "num_filter", where)
        self.channels = positive(channels, "channels", where)
        self.pad_value = check_pad_value(pad_value, where)
        if input not in ("bits", "float") or output not in ("bits", "float"):
            raise ArgumentError(f"{where}: input and output must be 'bits' or 'float', got {input!r}, {output!r}")
        if input_norm and input != "float":
            raise ArgumentError(f"{where}: input_norm needs input='float'")
        self.input, self.output, self.input_norm = input, output, bool(input_norm)
        self.pool_kernel, self.pool_stride, _ = check_geometry(
            pool_kernel, pool_kernel if pool_stride is None else pool_stride, 0, where
        )
        self.bits = self.channels * self.kernel[0] * self.kernel[1]
        self.channel_words = packed_words(self.channels)
        rows = self.kernel[0] * self.kernel[1] * self.channel_words
        self.weight_bits = np.zeros((rows, self.num_filter), np.uint64)
        names = ["weight_bits"]
        if output == "bits":
            self.pool_sign = np.ones(self.num_filter, np.int32)
            self.flip = np.ones(self.num_filter, np.int32)
            self.threshold = np.zeros(self.num_filter, np.int32)
            names += ["pool_sign", "flip", "threshold"]
        else:
            self.scale = np.ones(self.num_filter, np.float32)
            self.shift = np.zeros(self.num_filter, np.float32)
            names += ["scale", "shift"]
        if self.input_norm:
            self.input_mean = np.zeros(self.channels, np.float32)
            self.input_inv_std = np.ones(self.channels, np.float32)
            self.input_gamma = np.ones(self.channels, np.float32)
            self.input_beta = np.zeros(self.channels, np.float32)
            names += ["input_mean", "input_inv_std", "input_gamma", "input_beta"]
        self.buffer_names = tuple(names)

    config_schema = Obj(
        {"kernel": PAIR, "num_filter": POSITIVE, "channels": POSITIVE},
        {
            "stride": PAIR,
            "pad": PAIR,
            "pad_value": Float(-1.0, 1.0),
            "input": Str(("bits", "float")),
            "output": Str(("bits", "float")),
            "input_norm": Bool(),
            "pool_kernel": PAIR,
            "pool_stride": PAIR,
        },
    )

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """Filters KH KW Cw F words and F (or 2 F) per-channel values (4 C more with input_norm);
        scratch: the packed input when it arrives as floats."""
        where = cls.__name__
        channels, filters = config["channels"], config["num_filter"]
        cw = packed_words(channels)
        if config["input"] == "bits":
            if len(input_shape) != 3 or input_shape[2] != cw:
                raise ShapeError(f"{where}: expected packed bits (N, H, W, {cw}), got shape {(1, *input_shape)}")
            planar, scratch = (channels, *input_shape[:2]), 0
        else:
            if len(input_shape) != 3 or input_shape[0] != channels:
                raise ShapeError(f"{where}: expected input (N, {channels}, H, W), got shape {(1, *input_shape)}")
            planar, scratch = tuple(input_shape), 8 * input_shape[1] * input_shape[2] * cw
        kernel, _, _, oh, ow = conv_geometry(config, planar, where)
        ph, pw = pooled_footprint(config, oh, ow, where)
        if config["output"] == "bits":
            shape, out_bytes = (ph, pw, packed_words(filters)), 8 * ph * pw * packed_words(filters)
        else:
            shape, out_bytes = (filters, ph, pw), FLOAT32 * filters * ph * pw
        per_channel = 3 if config["output"] == "bits" else 2
        state = (
            8 * kernel[0] * kernel[1] * cw * filters
            + FLOAT32 * per_channel * filters
            + (FLOAT32 * 4 * channels if config["input_norm"] else 0)
        )
        return Footprint(shape, state, out_bytes, scratch)

    def input_words(self, data: np.ndarray) -> np.ndarray:
        if self.input == "bits":
            cw = self.channel_words
            if data.ndim != 4 or data.shape[3] != cw or data.dtype != np.uint64:
                raise ShapeError(
                    f"{self.label()}: expected packed bits (N, H, W, {cw}) uint64, "
                    f"got {data.dtype} of shape {data.shape}"
                )
            return data
        if data.ndim != 4 or data.shape[1] != self.channels:
            raise ShapeError(f"{self.label()}: expected input (N, {self.channels}, H, W), got shape {data.shape}")
        if self.input_norm:
            return pack_normalized_channels(
                data, self.input_mean, self.input_inv_std, self.input_gamma, self.input_beta
            )
        return pack_channels(data)

    def plan(self, shape: tuple[int, ...]) -> tuple:
        """For input words of ``shape``: the output's shape and the kernel's geometry arguments."""
        n, h, w = shape[:3]
        oh, ow = check_conv_shapes(
            (n, self.channels, h, w),
            (self.num_filter, self.channels, *self.kernel),
            self.pad,
            self.stride,
            where=self.label(),
        )
        ph, pw = pooled_shape(self, oh, ow)
        geometry = (
            *self.stride,
            *self.pad,
            *self.kernel,
            *pad_words_of_pixel(self.channels, self.pad_value),
            *self.pool_kernel,
            *self.pool_stride,
        )
        shape = (n, ph, pw, packed_words(self.num_filter)) if self.output == "bits" else (n, self.num_filter, ph, pw)
        return shape, geometry

    def forward(self, x: Tensor) -> Tensor:
        words = self.input_words(x.data)
        shape, geometry = planned(self, words.shape)
        n = shape[0]
        if self.output == "bits":
            out = np.empty(shape, np.uint64)
            blocks = filter_blocks(self.weight_bits)
            choose(_BIT_CONV_BITS, n)(
                words, blocks, self.bits, self.pool_sign, self.flip, self.threshold, *geometry, out
            )
        else:
            out = np.empty(shape, np.float32)
            choose(_BIT_CONV_FLOATS, n)(words, self.weight_bits, self.bits, self.scale, self.shift, *geometry, out)
        return Tensor(out)

    def filters(self) -> np.ndarray:
        """The ±1 filters (F, C, KH, KW), unpacked from ``weight_bits``."""
        words = np.ascontiguousarray(self.weight_bits.T).reshape(self.num_filter, *self.kernel, -1)
        return unpack_bits(words, self.channels, axis=-1).transpose(0, 3, 1, 2)

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        return stage_cost(self, x, y)

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
            "input": self.input,
            "output": self.output,
            "pool_kernel": list(self.pool_kernel),
            "pool_stride": list(self.pool_stride),
        }
        if self.input_norm:
            config["input_norm"] = True
        return config


# --- binary dense layer on bits, with what follows it ------------------------------------------------
ACTIVATIONS = ("identity", "tanh", "relu")


def _bit_dense(words, weight, k, scale, shift, out):  # pragma: no cover (compiled)
    hidden = weight.shape[1]
    for n in prange(words.shape[0]):
        acc = np.zeros(hidden, np.int64)
        for w in range(words.shape[1]):
            word = words[n, w]
            for h in range(hidden):
                acc[h] += popcount64(word ^ weight[w, h])
        for h in range(hidden):
            out[n, h] = np.float32(k - 2 * acc[h]) * scale[h] + shift[h]


_BIT_DENSE = twin_kernels(_bit_dense)


@register_layer
class BitDense(Module):
    """Binary dense layer on packed bits, its folded BatchNorm, an activation and a float classifier:
    the last stage of a binary network in one call (inference only).

    For input bits x (D real bits in ``words`` words) and hidden unit h::

        y[h] = act((D - 2 popcount(x XOR bits(W_h))) * scale[h] + shift[h])    (float32)
        logits[c] = classifier_bias[c] + sum_h y[h] classifier[c, h]

    as :class:`tinybnn.layers.packed.PackedFullyConnected` (its readable
    twin, the same float32 multiply-add), ``Activation(act)`` and
    ``FullyConnected`` compute them; with ``classes=0`` it returns y. The
    input is the previous stage's words (N, ...) read flat; ``weight_bits``
    (words, num_hidden) uint64 holds the signs of W's columns in that
    order (the converter permutes them from Flatten's c H W + y W + x to the
    pixel-major layout the bits arrive in), hidden units innermost.
    ``classifier`` is the FullyConnected's weight, (classes, num_hidden) float32.

    One compiled call computes the dot products and the multiply-add for the
    whole batch; the activation is NumPy's (vectorized, the unfused layer's
    own) in place, and the classifier the FullyConnected's own BLAS call,
    ``y @ W.T + b``. A scalar tanh per hidden unit inside the kernel was 12x slower.

    Optimizations: each input word meets all hidden units in one vectorized
    XOR-popcount-add loop; no float copy between the steps; serial kernel
    for small batches.
    """

    def __init__(self, num_hidden: int, features: int, words: int, activation: str = "identity", classes: int = 0):
        super().__init__()
        where = "BitDense"
        self.num_hidden = positive(num_hidden, "num_hidden", where)
        self.features = positive(features, "features", where)
        self.words = positive(words, "words", where)
        if self.words * 64 < self.features:
            raise ArgumentError(f"{where}: {self.words} words cannot hold {self.features} features")
        if activation not in ACTIVATIONS:
            raise ArgumentError(f"{where}: activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.classes = int(classes)
        if self.classes < 0:
            raise ArgumentError(f"{where}: classes must be >= 0, got {classes}")
        self.weight_bits = np.zeros((self.words, self.num_hidden), np.uint64)
        self.scale = np.ones(self.num_hidden, np.float32)
        self.shift = np.zeros(self.num_hidden, np.float32)
        self.buffer_names = ("weight_bits", "scale", "shift")
        self.classifier = np.zeros((self.classes, self.num_hidden), np.float32)
        self.classifier_bias = np.zeros(self.classes, np.float32)
        if self.classes:
            self.buffer_names += ("classifier", "classifier_bias")

    config_schema = Obj(
        {"num_hidden": POSITIVE, "features": POSITIVE, "words": POSITIVE},
        {"activation": Str(ACTIVATIONS), "classes": Int(0, (1 << 40) - 1)},
    )

    @classmethod
    def footprint(cls, config, input_shape, footprint_of) -> Footprint:
        """words x num_hidden filter words, scale and shift, and the classifier (classes x
        (num_hidden + 1) floats); scratch: the hidden layer's floats."""
        words, hidden, classes = config["words"], config["num_hidden"], config["classes"]
        if math.prod(input_shape) != words:
            raise ShapeError(
                f"{cls.__name__}: expected packed bits with {words} words per image, got shape {(1, *input_shape)}"
            )
        state = 8 * words * hidden + FLOAT32 * (2 * hidden + classes * (hidden + 1))
        shape = (classes,) if classes else (hidden,)
        return Footprint(shape, state, FLOAT32 * shape[0], FLOAT32 * hidden)

    def forward(self, x: Tensor) -> Tensor:
        data = x.data
        if data.dtype != np.uint64 or data.ndim < 2 or data[0].size != self.words:
            raise ShapeError(
                f"{self.label()}: expected packed bits with {self.words} words per image, "
                f"got {data.dtype} of shape {data.shape}"
            )
        words = np.ascontiguousarray(data.reshape(data.shape[0], self.words))
        y = np.empty((words.shape[0], self.num_hidden), np.float32)
        choose(_BIT_DENSE, words.shape[0])(words, self.weight_bits, self.features, self.scale, self.shift, y)
        if self.activation == "tanh":
            np.tanh(y, out=y)
        elif self.activation == "relu":
            np.maximum(y, 0, out=y)
        if not self.classes:
            return Tensor(y)
        logits = y @ self.classifier.T  # as FullyConnected computes it, so BLAS sums in the same order
        logits += self.classifier_bias
        return Tensor(logits)

    def cost(self, x: Tensor, y: Tensor, after_binary: bool) -> Cost:
        return stage_cost(self, x, y)

    def config(self) -> dict[str, Any]:
        return {
            "num_hidden": self.num_hidden,
            "features": self.features,
            "words": self.words,
            "activation": self.activation,
            "classes": self.classes,
        }
