"""tinybnn's own packed kernels behind the Python ABI of :mod:`tinybnn.kernel_abi`.

So that tinybnn's inference path is verified the way a user's kernel is
(``tinybnn verify binary-conv2d tinybnn.testing.builtin:packed_conv2d``):

* :func:`packed_conv2d`: :func:`tinybnn.gemm.bitconv.patch_dots`, the binary
  convolution of :class:`tinybnn.layers.packed.PackedConvolution`;
* :func:`packed_dense`: :func:`tinybnn.gemm.pack_bits` and
  :func:`tinybnn.gemm.xnor_parallel`, as in
  :class:`tinybnn.layers.packed.PackedFullyConnected`.
"""

from __future__ import annotations

import numpy as np

from tinybnn.gemm import pack_bits, pad_words, xnor_parallel
from tinybnn.gemm.bitconv import patch_dots


def packed_conv2d(x: np.ndarray, w: np.ndarray, c: int, stride: int, pad: int, pad_value: int) -> np.ndarray:
    """±1 dot products (n, f, oh, ow) of packed pixels x (n, h, wd, cw) with packed filters w (f, kh, kw, cw)."""
    n, h, wd, _ = x.shape
    f, kh, kw, _ = w.shape
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    dots, correction = patch_dots(
        x, pad_words(w.reshape(f, -1), 8), c, (kh, kw), (stride, stride), (pad, pad), float(pad_value)
    )
    return np.ascontiguousarray((dots - correction).reshape(n, oh, ow, f).transpose(0, 3, 1, 2))


def packed_dense(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """±1 dot products (n, h) of float activations x (n, d) with packed weight rows w (h, ceil(d / 64))."""
    return xnor_parallel(pack_bits(x, axis=-1, pad_words_to=8), pad_words(w, 8), x.shape[1])
