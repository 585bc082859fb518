"""Binary convolution on packed bits: pack channels per pixel, then im2col on words.

A binary convolution needs, for every output pixel, the K = C KH KW signs of
its input patch packed into words, to XNOR them with the packed filters.
Rather than building a float im2col matrix and packing it (K floats per
patch row), the input is binarized and packed once, per pixel along the
channels, and the patches are gathered as whole words:

    pack_channels:  x (N, C, H, W) float -> (N, H, W, Cw) uint64,  Cw = ceil(C / 64)
                    bit c % 64 of word c // 64 is 1 iff x[n, c, y, x] >= 0 (sign(0) = +1)
    im2col_words:   -> (N OH OW, Kw) uint64, row (n, i, j) holding the words of
                    pixels (i sh + u - ph, j sw + v - pw) in (u, v) order, then
                    zero words up to Kw (a multiple of 8 for the XNOR kernels)

Filters are packed the same way, (F, C, KH, KW) -> (F, KH, KW, Cw), by
:func:`pack_filters`. Padding pixels are whole words of a ±1 value (binary
convolutions pad after binarization, never with 0): +1 is a word with
the C valid bits set, -1 the zero word. When C is not a multiple of 64, each
pixel's last word has 64 Cw - C unused bits, 0 in both operands, so the XNOR
kernels, given the nominal bit count 64 KH KW Cw, count every unused bit as
an agreement: the true dot product is the kernel's result minus
(64 KH KW Cw - C KH KW).

Optimizations: the channel packing goes plane by plane, reading each (image,
channel) plane contiguously whatever the batch's memory layout and setting one
bit in every pixel's word, ``prange`` over images; im2col copies whole 64-bit
words, 64 values at a time, ``prange`` over (image, output row).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bitpack import WORD_BITS, pack_bits, packed_words
from .xnor import pad_words, xnor_parallel


@njit(parallel=True, cache=True)
def _pack_channels(x, cw, out):  # pragma: no cover (compiled)
    n_images, channels, height, width = x.shape
    for n in prange(n_images):
        for y in range(height):
            for xx in range(width):
                for w in range(cw):
                    out[n, y, xx, w] = 0
        for c in range(channels):
            w = c // 64
            bit = np.uint64(1) << np.uint64(c % 64)
            for y in range(height):
                for xx in range(width):
                    out[n, y, xx, w] |= bit * np.uint64(x[n, c, y, xx] >= 0)
    return out


def pack_channels(x: np.ndarray) -> np.ndarray:
    """Sign bits of x (N, C, H, W) packed per pixel along C: (N, H, W, ceil(C / 64)) uint64."""
    cw = packed_words(x.shape[1])
    out = np.empty((x.shape[0], x.shape[2], x.shape[3], cw), dtype=np.uint64)
    return _pack_channels(x, cw, out)


@njit(parallel=True, cache=True)
def _pack_normalized_channels(x, mean, inv_std, gamma, beta, cw, out):  # pragma: no cover (compiled)
    n_images, channels, height, width = x.shape
    for n in prange(n_images):
        for y in range(height):
            for xx in range(width):
                for w in range(cw):
                    out[n, y, xx, w] = 0
        for c in range(channels):
            w = c // 64
            bit = np.uint64(1) << np.uint64(c % 64)
            m, inv, g, b = mean[c], inv_std[c], gamma[c], beta[c]
            for y in range(height):
                for xx in range(width):
                    value = (x[n, c, y, xx] - m) * inv * g + b
                    out[n, y, xx, w] |= bit * np.uint64(value >= 0)
    return out


def pack_normalized_channels(
    x: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray, beta: np.ndarray
) -> np.ndarray:
    """Sign bits of a BatchNorm's output ``(x - mean) inv_std gamma + beta`` (evaluation mode),
    packed per pixel along C, without writing that output: the float32 operations are those of
    :func:`tinybnn.autograd.kernels.batch_norm_forward`, in the same order, so every sign is
    the one the BatchNorm layer followed by :func:`pack_channels` would give."""
    cw = packed_words(x.shape[1])
    out = np.empty((x.shape[0], x.shape[2], x.shape[3], cw), dtype=np.uint64)
    return _pack_normalized_channels(x, mean, inv_std, gamma, beta, cw, out)


def pad_words_of_pixel(channels: int, pad_value: float) -> tuple[np.uint64, np.uint64]:
    """A padding pixel's full words and its last word: every valid bit set for +1, none for -1.

    Only the sign of ``pad_value`` counts, with sign(0) = +1 as everywhere."""
    if pad_value < 0:
        return np.uint64(0), np.uint64(0)
    return np.uint64(0xFFFFFFFFFFFFFFFF), np.uint64((1 << (channels % 64 or 64)) - 1)


@njit(parallel=True, cache=True)
def _im2col_words(words, kh, kw, sh, sw, ph, pw, full_word, last_word, out):  # pragma: no cover
    n_images, height, width, cw = words.shape
    oh = (height + 2 * ph - kh) // sh + 1
    ow = (width + 2 * pw - kw) // sw + 1
    used = kh * kw * cw
    row_words = out.shape[1]
    for task in prange(n_images * oh):
        n = task // oh
        i = task % oh
        for j in range(ow):
            row = (n * oh + i) * ow + j
            col = 0
            for u in range(kh):
                y = i * sh + u - ph
                for v in range(kw):
                    xx = j * sw + v - pw
                    if 0 <= y < height and 0 <= xx < width:
                        for w in range(cw):
                            out[row, col + w] = words[n, y, xx, w]
                    else:
                        for w in range(cw - 1):
                            out[row, col + w] = full_word
                        out[row, col + cw - 1] = last_word
                    col += cw
            for w in range(used, row_words):
                out[row, w] = 0
    return out


def im2col_words(
    words: np.ndarray,
    channels: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int],
    pad_value: float,
    pad_words_to: int = 8,
) -> np.ndarray:
    """Patches of packed pixels (N, H, W, Cw) as rows of words (N OH OW, Kw), padded with ±1."""
    n, h, w, _ = words.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.empty((n * oh * ow, packed_words(nominal_bits(channels, kernel), pad_words_to)), dtype=np.uint64)
    return _im2col_words(words, kh, kw, sh, sw, ph, pw, *pad_words_of_pixel(channels, pad_value), out)


def pack_filters(weight: np.ndarray, pad_words_to: int = 8) -> np.ndarray:
    """Filters (F, C, KH, KW) as (F, Kw) words in im2col_words' (u, v, channel) order."""
    per_pixel = pack_bits(weight, axis=1)  # (F, KH, KW, Cw)
    return pad_words(per_pixel.reshape(weight.shape[0], -1), pad_words_to)


def nominal_bits(channels: int, kernel: tuple[int, int]) -> int:
    """64 KH KW Cw: the bit count to give the XNOR kernel for packed-pixel patches."""
    return WORD_BITS * kernel[0] * kernel[1] * packed_words(channels)


def patch_dots(
    words: np.ndarray,
    filter_bits: np.ndarray,
    channels: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int],
    pad_value: float,
) -> tuple[np.ndarray, int]:
    """XNOR dot products of every patch of packed pixels with every packed filter.

    ``words`` (N, H, W, Cw) from :func:`pack_channels`, ``filter_bits``
    (F, Kw) from :func:`pack_filters` (padded to im2col_words' 8-word rows).
    Returns ``(dots, correction)``: ``dots`` (N OH OW, F) int32 over the
    nominal 64 KH KW Cw bits, and the ±1 dot product over the K = C KH KW
    real bits is ``dots - correction``, correction = 64 KH KW Cw - C KH KW
    (the unused bits of each pixel's last word agree in both operands).
    """
    patches = im2col_words(words, channels, kernel, stride, pad, pad_value)
    nominal = nominal_bits(channels, kernel)
    return xnor_parallel(patches, filter_bits, nominal), nominal - channels * kernel[0] * kernel[1]
