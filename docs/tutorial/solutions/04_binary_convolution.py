"""Solutions of chapter 4's exercises (docs/tutorial/exercises/04_binary_convolution.py)."""

import numpy as np


def output_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def im2col(x, kernel, stride, pad, pad_value=0.0):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    rows = [
        xp[b, :, i * sh : i * sh + kh, j * sw : j * sw + kw].ravel()
        for b in range(n)
        for i in range(oh)
        for j in range(ow)
    ]
    return np.array(rows, dtype=x.dtype).reshape(n * oh * ow, c * kh * kw)


def binary_conv2d(x, w, stride=(1, 1), pad=(0, 0), pad_value=1.0):
    n, f = x.shape[0], w.shape[0]
    bx = np.where(x >= 0, 1.0, -1.0).astype(np.float32)
    bw = np.where(w >= 0, 1.0, -1.0).astype(np.float32)
    cols = im2col(bx, w.shape[2:], stride, pad, pad_value)
    oh = output_size(x.shape[2], w.shape[2], stride[0], pad[0])
    ow = output_size(x.shape[3], w.shape[3], stride[1], pad[1])
    return (cols @ bw.reshape(f, -1).T).reshape(n, oh, ow, f).transpose(0, 3, 1, 2)
