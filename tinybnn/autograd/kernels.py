"""Numba twins of the NumPy reference code in :mod:`.conv` and :mod:`.pooling`.

Each function here computes exactly what its reference computes (the tests
check it with hypothesis-drawn shapes, strides and padding); the reference
says what, this module says how fast.

Optimizations:

- ``im2col_into``: one pass that writes each patch row once, with the padding
  decided per element instead of materialising a padded copy of the input,
  and no check at all for patches wholly inside the image (all of them
  without padding); ``prange`` over (image, output row) pairs.
- ``col2im_from``: ``prange`` over images, so each thread owns the pixels it
  adds into (no atomics, no races); it reads an image's patch rows from start
  to end and adds into that image's gradient, which stays in cache (37 KB for
  LeNet's second layer): 1.6x faster than going plane by plane.
- ``channels_last_into``, ``im2col_channels_last_into`` and
  ``col2im_channels_last_from``: the fast convolution's layout. With the input
  channel-last (N, H, W, C) and patch columns in (u, v, c) order, a patch row
  is KH runs of KW C contiguous values, each copied by one slice assignment
  (a memcpy): 5x faster than ``im2col_into``'s element-by-element copy for
  LeNet's second layer. col2im adds each run into a padded (H, W, C) block of
  one image (in cache), C contiguous values at a time, then writes it out as
  (C, H, W): 3-4x faster than ``col2im_from``.
- ``conv_direct_into``: a float32 convolution with no patch matrix, summed
  tap by tap from the padded channel-last input (``channels_last_into`` with
  padding) into a (6 pixels x 64 filters) accumulator tile on the stack
  (:func:`tinybnn.gemm.local.stack_tile`); the taps are a flat table of
  offsets, so that the loop over filters is one contiguous row of weights
  (LLVM vectorizes it; nested (u, v, c) loops compiled to gathers and ran
  5x slower). It reads the input instead of writing and reading a patch
  matrix KH KW times its size. The tile needs AVX-512's 32 vector registers:
  with AVX2's 16 it spills, so ``conv.uses_direct_convolution`` takes it
  only where Numba compiles for AVX-512.
- ``tanh_backward_into`` / ``pass_where_within``: elementwise backward formulas
  in one parallel pass instead of NumPy's two or three with temporaries;
  ``pass_where_within_planes`` for a gradient and an input in different
  layouts, plane by plane.
- ``batch_norm_forward`` / ``batch_norm_backward``: ``prange`` over channels,
  one pass over a channel's values for the statistics (float64 sums, shifted
  by the channel's first value; both moments at once) and one to write,
  instead of NumPy's seven temporaries; the sums run in SIMD lanes
  (reassociated), so they differ from NumPy's in the last bits.
- ``sign_into`` / ``sign_and_mask``: one parallel pass, no temporaries
  (NumPy's ``where`` with scalars took 4 ns per value).
- ``max_pool_forward`` / ``max_pool_backward``: one pass over each window,
  keeping the flat index of the first maximum for the backward scatter;
  ``max_pool_values`` skips the index when no gradient will be needed;
  2x2 windows with stride 2 (LeNet's) have unrolled twins, ``max_pool_2x2``
  and ``max_pool_backward_2x2``, 2-3x faster;
  ``prange`` over (image, channel) planes, taken in the order they lie in
  memory (convolution outputs are channel-major), outputs in the same layout.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types

from ..gemm.local import stack_tile


@njit(parallel=True, cache=True)
def im2col_into(x, kh, kw, sh, sw, ph, pw, pad_value, out):  # pragma: no cover (compiled)
    """out[(n, i, j), (c, u, v)] = x[n, c, i sh + u - ph, j sw + v - pw], or pad_value outside;
    columns of ``out`` beyond C KH KW are set to 1 (a bias input)."""
    n_images, channels, height, width = x.shape
    oh = (height + 2 * ph - kh) // sh + 1
    ow = (width + 2 * pw - kw) // sw + 1
    for task in prange(n_images * oh):
        n = task // oh
        i = task % oh
        y0 = i * sh - ph
        rows_inside = y0 >= 0 and y0 + kh <= height
        for j in range(ow):
            row = (n * oh + i) * ow + j
            x0 = j * sw - pw
            col = 0
            if rows_inside and x0 >= 0 and x0 + kw <= width:  # the whole patch is inside: no checks
                for c in range(channels):
                    for u in range(kh):
                        for v in range(kw):
                            out[row, col + v] = x[n, c, y0 + u, x0 + v]
                        col += kw
            else:
                for c in range(channels):
                    for u in range(kh):
                        y = y0 + u
                        inside_y = 0 <= y < height
                        for v in range(kw):
                            xx = x0 + v
                            if inside_y and 0 <= xx < width:
                                out[row, col] = x[n, c, y, xx]
                            else:
                                out[row, col] = pad_value
                            col += 1
            for extra in range(col, out.shape[1]):
                out[row, extra] = 1
    return out


@njit(parallel=True, cache=True)
def col2im_from(cols, n_images, channels, height, width, kh, kw, sh, sw, ph, pw, out):  # pragma: no cover
    """out[n, c, y, x] = sum of cols entries that im2col read from (y, x); padding dropped."""
    oh = (height + 2 * ph - kh) // sh + 1
    ow = (width + 2 * pw - kw) // sw + 1
    for n in prange(n_images):
        out[n] = 0
        for i in range(oh):
            y0 = i * sh - ph
            rows_inside = y0 >= 0 and y0 + kh <= height
            for j in range(ow):
                row = (n * oh + i) * ow + j
                x0 = j * sw - pw
                col = 0
                if rows_inside and x0 >= 0 and x0 + kw <= width:  # the whole patch is inside
                    for c in range(channels):
                        for u in range(kh):
                            for v in range(kw):
                                out[n, c, y0 + u, x0 + v] += cols[row, col + v]
                            col += kw
                else:
                    for c in range(channels):
                        for u in range(kh):
                            y = y0 + u
                            for v in range(kw):
                                xx = x0 + v
                                if 0 <= y < height and 0 <= xx < width:
                                    out[n, c, y, xx] += cols[row, col]
                                col += 1
    return out


@njit(parallel=True, cache=True)
def channels_last_into(x, signs, ph, pw, pad_value, out):  # pragma: no cover (compiled)
    """out[n, y + ph, x + pw, c] = x[n, c, y, x] (or its sign, +1 where x >= 0 and -1 elsewhere, with
    ``signs``), and pad_value in the ph rows and pw columns around; x (N, C, H, W) in any layout,
    out (N, H + 2 ph, W + 2 pw, C) C-contiguous."""
    n_images, channels, height, width = x.shape
    padded_height = height + 2 * ph
    one = out.dtype.type(1)
    for task in prange(n_images * padded_height):
        n = task // padded_height
        yp = task % padded_height
        y = yp - ph
        if y < 0 or y >= height:
            out[n, yp] = pad_value
            continue
        out[n, yp, :pw] = pad_value
        out[n, yp, pw + width :] = pad_value
        for c in range(channels):
            for xx in range(width):
                value = x[n, c, y, xx]
                if signs:
                    value = one if value >= 0 else -one
                out[n, yp, pw + xx, c] = value
    return out


#: output pixels x filters of the direct convolution's accumulator tile: 6 x 4 vectors of 16 float32,
#: 24 of AVX-512's 32 registers, so that each weight vector loaded feeds 6 FMAs
DIRECT_PIXELS, DIRECT_FILTERS = 6, 64
_direct_tile = stack_tile(types.float32, DIRECT_PIXELS, DIRECT_FILTERS)


@njit(parallel=True, cache=True, fastmath={"contract"})
def conv_direct_into(images, tiles, taps, pixels, bias, out):  # pragma: no cover (compiled)
    """out[f, n, p] = (sum_t images[n].flat[pixels[p] + taps[t]] tiles[b, t, g]) + bias[b, g], f = 64 b + g.

    ``images`` (N, HP, WP, C) is the padded input channel-last, ``pixels[p]`` the flat offset in
    an image of output pixel p's first tap and ``taps[t]`` that of tap t = (u, v, c) from it, so
    that the sum is the convolution without a patch matrix. ``tiles`` (B, T, 64) holds the filters
    64 at a time (zero rows past F). Each task accumulates a (6 pixels x 64 filters) tile on the
    stack over all taps: per tap, 6 input values and one 64-wide row of weights.

    The sum runs from 0, one fused multiply-add per tap in (u, v, c) order, and the bias is
    added last: the order of the GEMM path, whose bias is the weight of a last column of ones
    (fma(1, b, s) = s + b), and of the converter's fused first stage
    (:class:`tinybnn.layers.fused.ConvolutionToBits`), so that a converted model sees the float
    path's z bit for bit. Starting the accumulators from the bias rounds differently: on a
    binary LeNet's 92,160,000 first-stage decisions over the MNIST test digits, one flipped.
    """
    n_images = images.shape[0]
    flat = images.reshape((n_images, images.size // n_images))
    blocks, n_taps = tiles.shape[0], tiles.shape[1]
    filters, positions = out.shape[0], pixels.shape[0]
    pixel_tiles = (positions + DIRECT_PIXELS - 1) // DIRECT_PIXELS
    last = positions - 1
    for task in prange(n_images * pixel_tiles * blocks):
        block = task % blocks
        n = task // blocks // pixel_tiles
        q0 = task // blocks % pixel_tiles * DIRECT_PIXELS
        acc = _direct_tile()
        for q in range(DIRECT_PIXELS):
            for g in range(DIRECT_FILTERS):
                acc[q, g] = 0
        # past the last pixel, recompute the last one (not stored): no branch in the loop over taps
        p0, p1, p2 = pixels[min(q0, last)], pixels[min(q0 + 1, last)], pixels[min(q0 + 2, last)]
        p3, p4, p5 = pixels[min(q0 + 3, last)], pixels[min(q0 + 4, last)], pixels[min(q0 + 5, last)]
        for t in range(n_taps):
            o = taps[t]
            a0, a1, a2 = flat[n, p0 + o], flat[n, p1 + o], flat[n, p2 + o]
            a3, a4, a5 = flat[n, p3 + o], flat[n, p4 + o], flat[n, p5 + o]
            for g in range(DIRECT_FILTERS):
                weight = tiles[block, t, g]
                acc[0, g] += a0 * weight
                acc[1, g] += a1 * weight
                acc[2, g] += a2 * weight
                acc[3, g] += a3 * weight
                acc[4, g] += a4 * weight
                acc[5, g] += a5 * weight
        for q in range(min(DIRECT_PIXELS, positions - q0)):
            for g in range(min(DIRECT_FILTERS, filters - block * DIRECT_FILTERS)):
                out[block * DIRECT_FILTERS + g, n, q0 + q] = acc[q, g] + bias[block, g]
    return out


@njit(parallel=True, cache=True, nogil=True)
def im2col_channels_last_into(x, kh, kw, sh, sw, ph, pw, pad_value, out):  # pragma: no cover (compiled)
    """out[(n, i, j), (u, v, c)] = x[n, i sh + u - ph, j sw + v - pw, c], or pad_value outside, for x
    (N, H, W, C) and out C-contiguous; columns beyond KH KW C are set to 1 (a bias input).

    A patch row is KH runs of KW C values that lie side by side in x (fewer where the
    patch overlaps the padding): each is one slice copy of the flat arrays (a memcpy,
    2.6x faster than element by element)."""
    n_images, height, width, channels = x.shape
    oh = (height + 2 * ph - kh) // sh + 1
    ow = (width + 2 * pw - kw) // sw + 1
    source, target = x.reshape(-1), out.reshape(-1)
    columns = out.shape[1]
    run = kw * channels
    for task in prange(n_images * oh):
        n = task // oh
        y0 = (task % oh) * sh - ph
        for j in range(ow):
            row = (task * ow + j) * columns
            x0 = j * sw - pw
            first, last = max(x0, 0), min(x0 + kw, width)  # the patch's columns inside the image
            for u in range(kh):
                y = y0 + u
                at = row + u * run
                if y < 0 or y >= height or first >= last:
                    target[at : at + run] = pad_value
                    continue
                before, inside = (first - x0) * channels, (last - first) * channels
                target[at : at + before] = pad_value
                start = ((n * height + y) * width + first) * channels
                target[at + before : at + before + inside] = source[start : start + inside]
                target[at + before + inside : at + run] = pad_value
            target[row + kh * run : row + columns] = 1
    return out


@njit(parallel=True, cache=True, nogil=True)
def col2im_channels_last_from(cols, height, width, kh, kw, sh, sw, ph, pw, out):  # pragma: no cover (compiled)
    """out[n, c, y, x] = sum of the entries of cols (rows (n, i, j), columns (u, v, c), as
    im2col_channels_last_into lays them out) that were read from (y, x, c); padding dropped.

    One image per task: its patch gradients are added, C contiguous values at a time, into a
    padded (H + 2 ph, W + 2 pw, C) block that stays in cache, which is then written out
    as (C, H, W)."""
    n_images, channels = out.shape[0], out.shape[1]
    oh = (height + 2 * ph - kh) // sh + 1
    ow = (width + 2 * pw - kw) // sw + 1
    for n in prange(n_images):
        acc = np.zeros((height + 2 * ph, width + 2 * pw, channels), cols.dtype)
        for i in range(oh):
            for j in range(ow):
                row = (n * oh + i) * ow + j
                for u in range(kh):
                    for v in range(kw):
                        at = (u * kw + v) * channels
                        target = acc[i * sh + u, j * sw + v]
                        for c in range(channels):
                            target[c] += cols[row, at + c]
        for c in range(channels):
            for y in range(height):
                for xx in range(width):
                    out[n, c, y, xx] = acc[y + ph, xx + pw, c]
    return out


@njit(cache=True, inline="always")
def _plane(task, n_images, channels, channel_major):  # pragma: no cover
    """(n, c) of the task-th (image, channel) plane in memory order."""
    if channel_major:
        return task % n_images, task // n_images
    return task // channels, task % channels


@njit(parallel=True, cache=True)
def max_pool_forward(x, kh, kw, sh, sw, out, argmax, channel_major):  # pragma: no cover
    """out = max over each window; argmax = flat index u * kw + v of its first maximum."""
    n_images, channels = x.shape[0], x.shape[1]
    oh, ow = out.shape[2], out.shape[3]
    for task in prange(n_images * channels):
        n, c = _plane(task, n_images, channels, channel_major)
        for i in range(oh):
            for j in range(ow):
                best = x[n, c, i * sh, j * sw]
                where = 0
                for u in range(kh):
                    for v in range(kw):
                        value = x[n, c, i * sh + u, j * sw + v]
                        if value > best:
                            best = value
                            where = u * kw + v
                out[n, c, i, j] = best
                argmax[n, c, i, j] = where
    return out


@njit(parallel=True, cache=True)
def max_pool_values(x, kh, kw, sh, sw, out, channel_major):  # pragma: no cover
    """out = max over each window, without recording where (inference)."""
    n_images, channels = x.shape[0], x.shape[1]
    oh, ow = out.shape[2], out.shape[3]
    for task in prange(n_images * channels):
        n, c = _plane(task, n_images, channels, channel_major)
        for i in range(oh):
            for j in range(ow):
                best = x[n, c, i * sh, j * sw]
                for u in range(kh):
                    for v in range(kw):
                        best = max(best, x[n, c, i * sh + u, j * sw + v])
                out[n, c, i, j] = best
    return out


@njit(parallel=True, cache=True)
def max_pool_2x2(x, out, argmax, with_argmax, channel_major):  # pragma: no cover
    """max_pool_forward (or max_pool_values) for 2x2 windows with stride 2, unrolled."""
    n_images, channels = x.shape[0], x.shape[1]
    oh, ow = out.shape[2], out.shape[3]
    for task in prange(n_images * channels):
        n, c = _plane(task, n_images, channels, channel_major)
        for i in range(oh):
            for j in range(ow):
                best = x[n, c, 2 * i, 2 * j]
                where = 0
                value = x[n, c, 2 * i, 2 * j + 1]
                if value > best:
                    best, where = value, 1
                value = x[n, c, 2 * i + 1, 2 * j]
                if value > best:
                    best, where = value, 2
                value = x[n, c, 2 * i + 1, 2 * j + 1]
                if value > best:
                    best, where = value, 3
                out[n, c, i, j] = best
                if with_argmax:
                    argmax[n, c, i, j] = where
    return out


@njit(parallel=True, cache=True)
def max_pool_backward_2x2(grad, argmax, out, channel_major):  # pragma: no cover
    """max_pool_backward for 2x2 windows with stride 2: each input pixel written once."""
    n_images, channels = grad.shape[0], grad.shape[1]
    oh, ow = grad.shape[2], grad.shape[3]
    height, width = out.shape[2], out.shape[3]
    for task in prange(n_images * channels):
        n, c = _plane(task, n_images, channels, channel_major)
        if height > 2 * oh or width > 2 * ow:  # odd sizes: rows / columns no window covers
            out[n, c, :, :] = 0
        for i in range(oh):
            for j in range(ow):
                g = grad[n, c, i, j]
                where = argmax[n, c, i, j]
                out[n, c, 2 * i, 2 * j] = g if where == 0 else 0
                out[n, c, 2 * i, 2 * j + 1] = g if where == 1 else 0
                out[n, c, 2 * i + 1, 2 * j] = g if where == 2 else 0
                out[n, c, 2 * i + 1, 2 * j + 1] = g if where == 3 else 0
    return out


@njit(parallel=True, cache=True)
def max_pool_backward(grad, argmax, kh, kw, sh, sw, out, channel_major):  # pragma: no cover
    """out[n, c, window's argmax] += grad[n, c, i, j]; zero elsewhere."""
    n_images, channels = grad.shape[0], grad.shape[1]
    oh, ow = grad.shape[2], grad.shape[3]
    for task in prange(n_images * channels):
        n, c = _plane(task, n_images, channels, channel_major)
        out[n, c, :, :] = 0
        for i in range(oh):
            for j in range(ow):
                where = argmax[n, c, i, j]
                out[n, c, i * sh + where // kw, j * sw + where % kw] += grad[n, c, i, j]
    return out


@njit(parallel=True, cache=True)
def sign_into(x, out):  # pragma: no cover (compiled)
    """out = +1 where x >= 0, -1 elsewhere; x and out flat and contiguous."""
    one = out.dtype.type(1)
    for i in prange(x.size):
        out[i] = one if x[i] >= 0 else -one
    return out


@njit(parallel=True, cache=True)
def sign_and_mask(x, limit, out, mask):  # pragma: no cover (compiled)
    """out = sign(x) and mask = |x| <= limit, in one pass; flat contiguous arrays."""
    one = out.dtype.type(1)
    for i in prange(x.size):
        value = x[i]
        out[i] = one if value >= 0 else -one
        mask[i] = abs(value) <= limit
    return out


#: the batch-norm kernels' sums may be reordered into SIMD lanes, their products fused into multiply-adds
_SUMS_IN_LANES = {"reassoc", "contract"}


@njit(cache=True, fastmath=_SUMS_IN_LANES)
def _shifted_moments(x, c, shift):  # pragma: no cover (compiled)
    """Float64 sums of x[:, c] - shift and of its squares, reordered into SIMD lanes."""
    n_images, _, height, width = x.shape
    total = 0.0
    squares = 0.0
    for n in range(n_images):
        for i in range(height):
            for j in range(width):
                d = np.float64(x[n, c, i, j]) - shift
                total += d
                squares += d * d
    return total, squares


@njit(parallel=True, cache=True)
def batch_norm_forward(x, gamma, beta, eps, training, mean, var, inv_std, out, xhat):  # pragma: no cover
    """Per channel c of x (N, C, H, W): with training, mean[c] and var[c] (biased) of the batch in one
    pass, float64 sums of x - s and (x - s)^2 with s the channel's first value (so that a large mean
    does not cancel the variance away):  mean = s + S1 / m,  var = S2 / m - (S1 / m)^2;
    then xhat = (x - mean) inv_std and out = gamma xhat + beta, rounded as written (no fused
    multiply-add: the converter's packed signs of a BatchNorm output compute the same expression)."""
    n_images, channels, height, width = x.shape
    count = n_images * height * width
    for c in prange(channels):
        if training:
            shift = np.float64(x[0, c, 0, 0])
            total, squares = _shifted_moments(x, c, shift)
            mean_shifted = total / count
            mean[c] = shift + mean_shifted
            var[c] = max(squares / count - mean_shifted * mean_shifted, 0.0)
        inv = x.dtype.type(1.0 / np.sqrt(var[c] + eps))
        inv_std[c] = inv
        m = x.dtype.type(mean[c])
        g = gamma[c]
        b = beta[c]
        for n in range(n_images):
            for i in range(height):
                for j in range(width):
                    h = (x[n, c, i, j] - m) * inv
                    xhat[n, c, i, j] = h
                    out[n, c, i, j] = h * g + b
    return out


@njit(parallel=True, cache=True, fastmath=_SUMS_IN_LANES)
def batch_norm_backward(grad, xhat, gamma, inv_std, training, out, dgamma, dbeta):  # pragma: no cover
    """dbeta = sum g, dgamma = sum g xhat; dx = gamma inv_std (g - mean g - xhat mean(g xhat))
    when training, gamma inv_std g otherwise; per channel, sums in float64."""
    n_images, channels, height, width = grad.shape
    count = n_images * height * width
    for c in prange(channels):
        sum_g = 0.0
        sum_gx = 0.0
        for n in range(n_images):
            for i in range(height):
                for j in range(width):
                    g = grad[n, c, i, j]
                    sum_g += g
                    sum_gx += g * xhat[n, c, i, j]
        dbeta[c] = sum_g
        dgamma[c] = sum_gx
        k = grad.dtype.type(gamma[c] * inv_std[c])
        mean_g = grad.dtype.type(sum_g / count) if training else grad.dtype.type(0.0)
        mean_gx = grad.dtype.type(sum_gx / count) if training else grad.dtype.type(0.0)
        for n in range(n_images):
            for i in range(height):
                for j in range(width):
                    out[n, c, i, j] = k * (grad[n, c, i, j] - mean_g - xhat[n, c, i, j] * mean_gx)
    return out


@njit(parallel=True, cache=True)
def tanh_backward_into(grad, out, result):  # pragma: no cover (compiled)
    """result = grad * (1 - out^2), flat arrays in the same memory order."""
    for i in prange(grad.size):
        result[i] = grad[i] * (1 - out[i] * out[i])
    return result


@njit(parallel=True, cache=True)
def pass_where_within(grad, x, limit, result):  # pragma: no cover (compiled)
    """result = grad where |x| <= limit, else 0 (the straight-through estimator), flat arrays."""
    for i in prange(grad.size):
        result[i] = grad[i] if abs(x[i]) <= limit else 0
    return result


@njit(parallel=True, cache=True)
def pass_where_within_planes(grad, x, limit):  # pragma: no cover (compiled)
    """grad[n, c] = grad[n, c] where |x[n, c]| <= limit, else 0, in place, for 4-D arrays in any
    two layouts (a C-order gradient of a channel-major input): one (n, c) plane per task."""
    n_images, channels, height, width = grad.shape
    for task in prange(n_images * channels):
        n, c = task // channels, task % channels
        for y in range(height):
            for xx in range(width):
                if not abs(x[n, c, y, xx]) <= limit:  # NaN too, as in the reference
                    grad[n, c, y, xx] = 0
    return grad
