"""A small-kernel convolution fused with its bias, tanh and 2x2 max pooling (LeNet's first block).

The composition it replaces, for x (N, C, H, W) and weights w (F, C, KH, KW)::

    z = conv2d(x, w) + b          (F N OH OW values; stride and zero padding as conv2d's)
    a = tanh(z)
    y = max_pool2d(a, 2, 2)       y[n, f, i, j] = max over the window {2i, 2i+1} x {2j, 2j+1}

With K = C KH KW small (25 for a grey image and 5x5 filters), im2col + GEMM
is poor: the patch matrix is as large as the output, and a GEMM with K = 25
runs far from the machine's peak. Here each (filter, image) plane is computed
directly, two output rows at a time, and pooled before it leaves the cache;
tanh is monotone, so ``max(tanh(z)) = tanh(max(z))``: the kernel keeps the
window's largest z and where it lies, and tanh runs on the pooled values only
(a quarter of them). Neither z nor a is ever stored.

Backward, with g = dL/dy and (i', j') the position of the window's maximum::

    gz[f, n, i, j] = g[n, f, i, j] (1 - y[n, f, i, j]^2)        (one gz per window)
    dL/db[f] = sum gz,   dL/dw[f, c, u, v] = sum gz x[n, c, i' sh + u - ph, j' sw + v - pw]
    dL/dx[n, c, i' sh + u - ph, j' sw + v - pw] += gz w[f, c, u, v]

a quarter of the multiply-adds of the unpooled backward, with no pass over
the conv output for tanh's and pooling's backward.

Ties: the gradient goes to the first largest z of a window (row-major order,
as max pooling's). The composition sends it to the first largest tanh(z);
the two differ only where tanh rounds two different z of one window to the
same float, which happens in float32 for |z| above about 4, where 1 - y^2 is
below 1e-3. :func:`conv_tanh_pool_reference` is the obvious NumPy twin with
this fused op's semantics (conv, then pool z, then tanh), and what the
tests compare the Numba kernels with.

For float32 (training's dtype) the forward and the weight gradient run as
small accumulator tiles on the stack that LLVM keeps in registers
(:func:`tinybnn.gemm.local.stack_tile`), sized to the vector registers of the
CPU (see FORWARD_FILTERS): the forward holds z of one window's four pixels for
a block of filters and sums the taps into it with fused multiply-adds,
broadcasting each input value against a vector of weights
(:func:`conv_tanh_pool_forward_f32`); the weight gradient holds a group of
taps x a block of filters per place of the maximum and sums over the image's
windows (:func:`conv_tanh_pool_backward_weights_f32`). Other dtypes use the plain
loops (:func:`conv_tanh_pool_forward`, :func:`conv_tanh_pool_backward_weights`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types

from ..gemm.local import stack_tile
from ..workspace import empty
from .conv import check_conv_shapes, compiles_for_avx512, conv2d, pair
from .function import Context, Function
from .pooling import max_pool_backward_reference, max_pool_reference
from .tensor import Tensor

#: the largest C KH KW for which the direct kernel is used (LeNet's first layer: 25)
MAX_DIRECT_K = 64


def conv_tanh_pool_reference(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride=(1, 1), pad=(0, 0)
) -> tuple[np.ndarray, np.ndarray]:
    """(y, argmax) with NumPy: the convolution by im2col + GEMM, max pooling of z, then tanh.

    ``argmax`` is the flat index 2 u + v of each window's first maximum of z."""
    z = conv2d(Tensor(x), Tensor(w), Tensor(b), stride=stride, pad=pad).data
    pooled, argmax = max_pool_reference(np.ascontiguousarray(z), (2, 2), (2, 2))
    return np.tanh(pooled), argmax


def conv_tanh_pool_backward_reference(
    grad: np.ndarray, y: np.ndarray, argmax: np.ndarray, x: np.ndarray, w: np.ndarray, stride=(1, 1), pad=(0, 0)
) -> tuple:
    """(dx, dw, db) with NumPy: tanh's backward on the pooled values, pooling's scatter, then the
    convolution's backward by im2col + GEMM (the existing, tested Conv2d)."""
    oh, ow = check_conv_shapes(x.shape, w.shape, pair(pad), pair(stride))
    gz = max_pool_backward_reference(grad * (1 - y * y), argmax, (x.shape[0], w.shape[0], oh, ow), (2, 2), (2, 2))
    xt, wt, bt = (
        Tensor(x, requires_grad=True),
        Tensor(w, requires_grad=True),
        Tensor(np.zeros(w.shape[0], x.dtype), requires_grad=True),
    )
    (conv2d(xt, wt, bt, stride=stride, pad=pad) * Tensor(gz)).sum().backward()
    return xt.grad, wt.grad, bt.grad


@njit(parallel=True, cache=True)
def conv_tanh_pool_forward(x, w_kf, b, kh, kw, sh, sw, ph, pw, out, argmax):  # pragma: no cover (compiled)
    """out[n, f, i, j] = max of z over window (i, j), before tanh; argmax[n, f, i, j] = 2 u + v of
    its first maximum; z = conv(x, w) + b, zero padding; ``w_kf`` is w as (C KH KW, F).

    One task per (image, pooled row): the two conv rows under it are summed in a
    (2, OW, F) block, filters innermost, so that every input value is broadcast
    against a contiguous vector of F weights (SIMD over filters), then pooled."""
    n_images, channels, height, width = x.shape
    filters = w_kf.shape[1]
    pooled_h, pooled_w = out.shape[2], out.shape[3]
    ow = 2 * pooled_w
    for task in prange(n_images * pooled_h):
        n = task // pooled_h
        pi = task % pooled_h
        acc = np.empty((2, ow, filters), x.dtype)
        for r in range(2):
            for j in range(ow):
                acc[r, j, :] = b
            i = 2 * pi + r
            for c in range(channels):
                for u in range(kh):
                    yy = i * sh + u - ph
                    if yy < 0 or yy >= height:
                        continue
                    for v in range(kw):
                        k = (c * kh + u) * kw + v
                        for j in range(ow):
                            xx = j * sw + v - pw
                            if 0 <= xx < width:
                                value = x[n, c, yy, xx]
                                for f in range(filters):
                                    acc[r, j, f] += value * w_kf[k, f]
        for f in range(filters):  # f outer: each write run stays in one (f, n) plane of a channel-major out
            for pj in range(pooled_w):
                best = acc[0, 2 * pj, f]
                where = 0
                if acc[0, 2 * pj + 1, f] > best:
                    best, where = acc[0, 2 * pj + 1, f], 1
                if acc[1, 2 * pj, f] > best:
                    best, where = acc[1, 2 * pj, f], 2
                if acc[1, 2 * pj + 1, f] > best:
                    best, where = acc[1, 2 * pj + 1, f], 3
                out[n, f, pi, pj] = best
                argmax[n, f, pi, pj] = where
    return out


@njit(cache=True, inline="always")
def _window_gradient(grad, y, n, f, pi, pj):  # pragma: no cover (compiled)
    """gz = g (1 - y^2): tanh's backward at one pooled value."""
    value = y[n, f, pi, pj]
    return grad[n, f, pi, pj] * (1 - value * value)


#: image chunks the weight gradient is summed over (a fixed number, so that results do not depend on threads)
WEIGHT_CHUNKS = 8


@njit(parallel=True, cache=True)
def conv_tanh_pool_backward_weights(grad, y, argmax, x, kh, kw, sh, sw, ph, pw, partial):  # pragma: no cover
    """partial[t, k, f] (k = (c, u, v), the last k the bias) = chunk t's sum over windows of
    gz x[patch at the window's maximum]; the caller sums over t.

    Per window position, the filters whose maximum lies at each of the four
    places share one patch: gz is split by place into four vectors over F and
    each patch value is broadcast against one of them (SIMD over filters)."""
    n_images, channels, height, width = x.shape
    chunks, taps, filters = partial.shape
    pooled_h, pooled_w = grad.shape[2], grad.shape[3]
    for t in prange(chunks):
        acc = partial[t]
        acc[:, :] = 0
        gz = np.empty((pooled_h, pooled_w, filters), x.dtype)
        places = np.empty((pooled_h, pooled_w, filters), np.int8)
        gq = np.empty((4, filters), x.dtype)
        for n in range(t * n_images // chunks, (t + 1) * n_images // chunks):
            for f in range(filters):  # image n's window gradients, read plane by plane, filters innermost
                for pi in range(pooled_h):
                    for pj in range(pooled_w):
                        value = y[n, f, pi, pj]
                        g = grad[n, f, pi, pj] * (1 - value * value)
                        gz[pi, pj, f] = g
                        places[pi, pj, f] = argmax[n, f, pi, pj]
                        acc[taps - 1, f] += g
            for pi in range(pooled_h):
                for pj in range(pooled_w):
                    gq[:, :] = 0
                    for f in range(filters):
                        gq[places[pi, pj, f], f] = gz[pi, pj, f]
                    for q in range(4):
                        y0 = (2 * pi + q // 2) * sh - ph
                        x0 = (2 * pj + q % 2) * sw - pw
                        for c in range(channels):
                            for u in range(kh):
                                yy = y0 + u
                                if yy < 0 or yy >= height:
                                    continue
                                for v in range(kw):
                                    xx = x0 + v
                                    if 0 <= xx < width:
                                        value = x[n, c, yy, xx]
                                        k = (c * kh + u) * kw + v
                                        for f in range(filters):
                                            acc[k, f] += value * gq[q, f]
    return partial


@njit(parallel=True, cache=True)
def conv_tanh_pool_backward_input(grad, y, argmax, w, sh, sw, ph, pw, grad_x):  # pragma: no cover
    """grad_x[n] = sum over windows of gz w[f] added at the window's maximum's patch; one image per
    task, so that no two threads add into the same pixel."""
    n_images, channels, height, width = grad_x.shape
    filters, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    pooled_h, pooled_w = grad.shape[2], grad.shape[3]
    for n in prange(n_images):
        grad_x[n] = 0
        for f in range(filters):
            for pi in range(pooled_h):
                for pj in range(pooled_w):
                    g = _window_gradient(grad, y, n, f, pi, pj)
                    if g == 0:
                        continue
                    where = argmax[n, f, pi, pj]
                    y0 = (2 * pi + where // 2) * sh - ph
                    x0 = (2 * pj + where % 2) * sw - pw
                    for c in range(channels):
                        for u in range(kh):
                            yy = y0 + u
                            if yy < 0 or yy >= height:
                                continue
                            for v in range(kw):
                                xx = x0 + v
                                if 0 <= xx < width:
                                    grad_x[n, c, yy, xx] += g * w[f, c, u, v]
    return grad_x


# --- float32: accumulators in registers -------------------------------------------------------------

#: pixels of a pooling window (the rows of the forward's tile)
PIXELS = 4
#: The tiles are sized to the vector registers Numba compiles for: AVX-512 has 32 registers of 16
#: float32, AVX2 16 of 8. The forward's tile is (PIXELS, FORWARD_FILTERS); the weight gradient keeps one
#: (TAP_GROUP, GRADIENT_FILTERS) tile per place of a window's maximum, four in all. With AVX-512 each
#: is 16 vectors (64 filters; 2 taps x 32 filters x 4 places), and their inner loops keep every
#: accumulator in a register (seen in the machine code). With AVX2 the forward's is 8 (16 filters)
#: and the weight gradient's 16 (2 taps x 16 filters x 4 places): all the registers, so a few spill,
#: which measured faster than 1 tap (8 registers, no spill) since it passes over the windows half as
#: often. The 4 x 64 tiles every CPU had before spilled on both: on an AMD EPYC (AVX2) the forward kernel
#: was about 1.35x slower than with these, the weight gradient's about 1.15x slower than with 1-tap
#: tiles (batch 100, one thread).
if compiles_for_avx512():
    FORWARD_FILTERS, TAP_GROUP, GRADIENT_FILTERS = 64, 2, 32
else:
    FORWARD_FILTERS, TAP_GROUP, GRADIENT_FILTERS = 16, 2, 16
forward_tile = stack_tile(types.float32, PIXELS, FORWARD_FILTERS)
gradient_tile = stack_tile(types.float32, TAP_GROUP, GRADIENT_FILTERS)


def padded_input(x: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    """x as a C-contiguous float32 array with ``pad`` zeros around each plane (x itself when it is one)."""
    if pad == (0, 0):
        return np.ascontiguousarray(x, dtype=np.float32)
    (ph, pw), n, c, h, w = pad, *x.shape
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), np.float32)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def tap_offsets(channels: int, height: int, width: int, kh: int, kw: int, multiple: int = 1) -> np.ndarray:
    """offset[(c, u, v)] = (c H + u) W + v, the tap's distance from a patch's corner in a flat padded
    image (H, W its padded size); unsigned, so that no index needs a wraparound test; extra taps up to a
    multiple of ``multiple`` point at the corner (their sums are computed and dropped)."""
    taps = channels * kh * kw
    c, u, v = np.unravel_index(np.arange(taps), (channels, kh, kw))
    offsets = np.zeros(-(-taps // multiple) * multiple, np.uint64)
    offsets[:taps] = (c * height + u) * width + v
    return offsets


def filter_tiles(w: np.ndarray) -> np.ndarray:
    """w (F, C, KH, KW) as float32 (B, C KH KW, FORWARD_FILTERS): filters in blocks, zero filters filling the last."""
    filters, taps = w.shape[0], int(np.prod(w.shape[1:]))
    blocks = -(-filters // FORWARD_FILTERS)
    tiles = np.zeros((taps, blocks * FORWARD_FILTERS), np.float32)
    tiles[:, :filters] = w.reshape(filters, taps).T
    return np.ascontiguousarray(tiles.reshape(taps, blocks, FORWARD_FILTERS).transpose(1, 0, 2))


@njit(cache=True, inline="always")
def _window_corners(pi, pj, sh, sw, width):  # pragma: no cover (compiled)
    """Flat offsets of the patch corners of pooling window (pi, pj)'s four conv outputs, row-major."""
    c0 = np.uint64((2 * pi * sh) * width + 2 * pj * sw)
    c1 = c0 + np.uint64(sw)
    c2 = c0 + np.uint64(sh * width)
    return c0, c1, c2, c2 + np.uint64(sw)


@njit(parallel=True, cache=True, fastmath={"contract"})
def conv_tanh_pool_forward_f32(xp, tiles, b, offsets, sh, sw, out, argmax):  # pragma: no cover (compiled)
    """:func:`conv_tanh_pool_forward` for float32 with its accumulators in registers: ``xp`` (N, C, H, W)
    zero-padded and C-contiguous, ``tiles`` the filters as :func:`filter_tiles`, ``offsets`` as
    :func:`tap_offsets`. One task per (image, block of FORWARD_FILTERS filters); per pooling window a
    (PIXELS, FORWARD_FILTERS) tile holds z of its four pixels for the block's filters, summed tap after
    tap with fused multiply-adds from the bias."""
    n_images = xp.shape[0]
    width = xp.shape[3]
    flat = xp.reshape((n_images, xp.shape[1] * xp.shape[2] * width))
    blocks, taps = tiles.shape[0], tiles.shape[1]
    filters, pooled_h, pooled_w = out.shape[1], out.shape[2], out.shape[3]
    for task in prange(n_images * blocks):
        n = task // blocks
        block = task % blocks
        f0 = block * FORWARD_FILTERS
        acc = forward_tile()  # acc[q, f]: z of the window's pixel q for filter f0 + f
        for pi in range(pooled_h):
            for pj in range(pooled_w):
                c0, c1, c2, c3 = _window_corners(pi, pj, sh, sw, width)
                for q in range(PIXELS):
                    for f in range(FORWARD_FILTERS):
                        acc[q, f] = b[f0 + f]
                for t in range(taps):
                    o = offsets[t]
                    a0, a1, a2, a3 = flat[n, c0 + o], flat[n, c1 + o], flat[n, c2 + o], flat[n, c3 + o]
                    for f in range(FORWARD_FILTERS):
                        wf = tiles[block, t, f]
                        acc[0, f] += a0 * wf
                        acc[1, f] += a1 * wf
                        acc[2, f] += a2 * wf
                        acc[3, f] += a3 * wf
                for f in range(FORWARD_FILTERS):
                    if f0 + f < filters:
                        best, where = acc[0, f], 0
                        for q in range(1, PIXELS):
                            if acc[q, f] > best:
                                best, where = acc[q, f], q
                        out[n, f0 + f, pi, pj] = best
                        argmax[n, f0 + f, pi, pj] = where
    return out


@njit(parallel=True, cache=True, fastmath={"contract"})
def conv_tanh_pool_backward_weights_f32(  # pragma: no cover (compiled)
    grad, y, argmax, xp, offsets, taps, sh, sw, partial, gz, places
):
    """:func:`conv_tanh_pool_backward_weights` for float32 with (TAP_GROUP, GRADIENT_FILTERS) accumulator
    tiles (``xp`` as in :func:`conv_tanh_pool_forward_f32`, ``offsets`` as :func:`tap_offsets` padded to a
    multiple of TAP_GROUP, ``partial`` (chunks, taps + 1, B GRADIENT_FILTERS); ``gz`` float32 and ``places``
    int8 (chunks, PH, PW, B GRADIENT_FILTERS),
    zero beyond F, are scratch: allocated by the caller, so that LLVM knows they do not overlap the tiles).

    Per image, the window gradients gz and the places of their maxima are first laid out filters
    innermost; then per block of GRADIENT_FILTERS filters and group of TAP_GROUP taps, one tile per
    place q sums x[patch of place q] [place == q] gz over the image's windows (each vector of the four
    tiles a chain of fused multiply-adds of its own), and the four tiles are added at the end."""
    n_images = xp.shape[0]
    width = xp.shape[3]
    flat = xp.reshape((n_images, xp.shape[1] * xp.shape[2] * width))
    chunks, columns = partial.shape[0], partial.shape[2]
    filters, pooled_h, pooled_w = grad.shape[1], grad.shape[2], grad.shape[3]
    blocks, groups = columns // GRADIENT_FILTERS, offsets.shape[0] // TAP_GROUP
    for t in prange(chunks):
        total = partial[t]
        total[:, :] = 0
        window_gradients, window_places = gz[t], places[t]
        acc0, acc1, acc2, acc3 = gradient_tile(), gradient_tile(), gradient_tile(), gradient_tile()
        for n in range(t * n_images // chunks, (t + 1) * n_images // chunks):
            for pi in range(pooled_h):
                for pj in range(pooled_w):
                    for f in range(filters):
                        value = y[n, f, pi, pj]
                        g = grad[n, f, pi, pj] * (1 - value * value)
                        window_gradients[pi, pj, f] = g
                        window_places[pi, pj, f] = argmax[n, f, pi, pj]
                        total[taps, f] += g
            for block in range(blocks):
                f0 = block * GRADIENT_FILTERS
                for group in range(groups):
                    k0 = group * TAP_GROUP
                    for r in range(TAP_GROUP):
                        for f in range(GRADIENT_FILTERS):
                            acc0[r, f] = 0
                            acc1[r, f] = 0
                            acc2[r, f] = 0
                            acc3[r, f] = 0
                    for pi in range(pooled_h):
                        for pj in range(pooled_w):
                            c0, c1, c2, c3 = _window_corners(pi, pj, sh, sw, width)
                            for r in range(TAP_GROUP):
                                o = offsets[k0 + r]
                                a0, a1, a2, a3 = flat[n, c0 + o], flat[n, c1 + o], flat[n, c2 + o], flat[n, c3 + o]
                                for f in range(GRADIENT_FILTERS):
                                    g = window_gradients[pi, pj, f0 + f]
                                    place = window_places[pi, pj, f0 + f]
                                    acc0[r, f] += a0 * (g if place == 0 else np.float32(0))
                                    acc1[r, f] += a1 * (g if place == 1 else np.float32(0))
                                    acc2[r, f] += a2 * (g if place == 2 else np.float32(0))
                                    acc3[r, f] += a3 * (g if place == 3 else np.float32(0))
                    for r in range(TAP_GROUP):
                        if k0 + r < taps:
                            for f in range(GRADIENT_FILTERS):
                                total[k0 + r, f0 + f] += (acc0[r, f] + acc1[r, f]) + (acc2[r, f] + acc3[r, f])
    return partial


def fits_direct(x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> bool:
    """True if the fused kernel applies and pays: C KH KW at most MAX_DIRECT_K, and a 2x2 pooling window fits."""
    return len(w_shape) == 4 and int(np.prod(w_shape[1:])) <= MAX_DIRECT_K


class ConvTanhMaxPool(Function):
    """y = max_pool2d(tanh(conv2d(x, w) + b), 2, 2), fused (see the module docstring).

    The output lies in memory as (F, N, PH, PW), as a convolution's and its
    pooling's do, so the layers after it see the same layout either way.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, w: np.ndarray, b: np.ndarray, stride=(1, 1), pad=(0, 0)) -> np.ndarray:
        stride, pad = pair(stride, "stride"), pair(pad, "pad")
        oh, ow = check_conv_shapes(x.shape, w.shape, pad, stride, where="conv_tanh_max_pool")
        n, f = x.shape[0], w.shape[0]
        pooled = empty((f, n, oh // 2, ow // 2), x.dtype).transpose(1, 0, 2, 3)
        argmax = np.empty((f, n, oh // 2, ow // 2), np.int8).transpose(1, 0, 2, 3)
        xp = None
        if x.dtype == np.float32:
            xp = padded_input(x, pad)
            offsets = tap_offsets(x.shape[1], xp.shape[2], xp.shape[3], *w.shape[2:])
            bias = np.zeros(-(-f // FORWARD_FILTERS) * FORWARD_FILTERS, np.float32)
            bias[:f] = b
            conv_tanh_pool_forward_f32(xp, filter_tiles(w), bias, offsets, *stride, pooled, argmax)
        else:
            w_kf = np.ascontiguousarray(w.reshape(f, -1).T, dtype=x.dtype)
            conv_tanh_pool_forward(x, w_kf, b.astype(x.dtype, copy=False), *w.shape[2:], *stride, *pad, pooled, argmax)
        np.tanh(pooled, out=pooled)
        ctx.save_for_backward(x, w, pooled, argmax)
        ctx.padded, ctx.geometry = xp, (stride, pad)
        return pooled

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple:
        x, w, y, argmax = ctx.saved_values
        stride, pad = ctx.geometry
        needs = ctx.needs_input_grad
        grad_x = grad_w = grad_b = None
        if needs[1] or needs[2]:
            taps, filters, xp = int(np.prod(w.shape[1:])), w.shape[0], ctx.padded
            if xp is not None and grad.dtype == np.float32:
                offsets = tap_offsets(x.shape[1], xp.shape[2], xp.shape[3], *w.shape[2:], multiple=TAP_GROUP)
                columns = -(-filters // GRADIENT_FILTERS) * GRADIENT_FILTERS
                partial = np.empty((WEIGHT_CHUNKS, taps + 1, columns), np.float32)
                scratch = (WEIGHT_CHUNKS, *y.shape[2:], columns)
                gz, places = np.zeros(scratch, np.float32), np.zeros(scratch, np.int8)
                conv_tanh_pool_backward_weights_f32(grad, y, argmax, xp, offsets, taps, *stride, partial, gz, places)
            else:
                partial = np.empty((WEIGHT_CHUNKS, taps + 1, filters), grad.dtype)
                conv_tanh_pool_backward_weights(grad, y, argmax, x, *w.shape[2:], *stride, *pad, partial)
            full = partial.sum(axis=0)[:, :filters]  # (C KH KW + 1, F)
            grad_w, grad_b = full[:taps].T.reshape(w.shape), full[taps].copy()
        if needs[0]:
            grad_x = conv_tanh_pool_backward_input(
                grad, y, argmax, w.astype(grad.dtype, copy=False), *stride, *pad, empty(x.shape, grad.dtype)
            )
        return grad_x, grad_w if needs[1] else None, grad_b if needs[2] else None


def conv_tanh_max_pool(x, w, b, stride=1, pad=0):
    """Differentiable max_pool2d(tanh(conv2d(x, w) + b), 2, 2) by the fused direct kernel."""
    return ConvTanhMaxPool.apply(x, w, b, stride=stride, pad=pad)


__all__ = [
    "ConvTanhMaxPool",
    "MAX_DIRECT_K",
    "conv_tanh_max_pool",
    "conv_tanh_pool_reference",
    "conv_tanh_pool_backward_reference",
    "fits_direct",
]
