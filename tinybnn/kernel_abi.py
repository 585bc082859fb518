"""The calling conventions a candidate kernel is verified through (C and Python).

Four kinds of kernel, each with one C signature (row-major arrays, 64-bit
sizes) and one Python signature. Bits follow tinybnn's order everywhere:
value ``t`` of a packed row is bit ``t % 64`` of word ``t // 64``, least
significant bit first, 1 for +1 and 0 for -1 (``sign(0) = +1``), and the
tail bits of a row's last word are 0.

``xnor-gemm``::

    void f(const uint64_t *a, const uint64_t *b, int32_t *out,
           int64_t m, int64_t n, int64_t words, int64_t k);

    a (m, words), b (n, words), out (m, n):
    out[i][j] = k - 2 popcount(a[i] XOR b[j])        (Python: f(a, b, k) -> out)

``pack-bits``::

    void f(const float *x, uint64_t *out, int64_t rows, int64_t k);

    x (rows, k) float32, out (rows, ceil(k / 64)): bit 1 where x >= 0
                                                     (Python: f(x) -> out)

``binary-conv2d``::

    void f(const uint64_t *x, const uint64_t *w, int32_t *out,
           int64_t n, int64_t c, int64_t h, int64_t wd, int64_t f,
           int64_t kh, int64_t kw, int64_t stride, int64_t pad, int32_t pad_value);

    x (n, h, wd, ceil(c / 64)): each pixel's c channel signs (pack_channels),
    w (f, kh, kw, ceil(c / 64)): each filter pixel's channel signs (pack_filters'
    word order, without its padding to 8 words), out (n, f, oh, ow) with
    oh = (h + 2 pad - kh) / stride + 1 (ow likewise): the ±1 dot product of
    each patch with each filter over its c kh kw values, padding pixels worth
    pad_value (+1 or -1) in every channel
                                (Python: f(x, w, c, stride, pad, pad_value) -> out)

``binary-dense``::

    void f(const float *x, const uint64_t *w, int32_t *out,
           int64_t n, int64_t d, int64_t h);

    x (n, d) float32 activations, w (h, ceil(d / 64)) the packed signs of the
    weight rows, out (n, h): out[i][j] = sum_t sign(x[i][t]) sign(W[j][t]),
    the activations binarized by the kernel itself    (Python: f(x, w) -> out)

A Python callable gets the arrays as NumPy arrays (C-contiguous, the dtypes
above) and the scalars that their shapes do not already carry, and returns
the output (a NumPy array of exactly the shape and dtype above) instead of
writing it. A C kernel must write every entry of ``out``: the checker fills
it with :data:`SENTINEL` values first, so an entry left alone is caught.

This module needs only NumPy and ctypes: it is all that the child process
running a C kernel imports (:mod:`tinybnn.kernel_child`), and the command
line's parser reads :data:`KINDS` from it without importing hypothesis.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

_U64P = ctypes.POINTER(ctypes.c_uint64)
_I32P = ctypes.POINTER(ctypes.c_int32)
_F32P = ctypes.POINTER(ctypes.c_float)
_I64 = ctypes.c_int64
_I32 = ctypes.c_int32

_POINTER_DTYPES = {_U64P: np.uint64, _I32P: np.int32, _F32P: np.float32}

SENTINEL = {np.dtype(np.int32): np.int32(-(2**31)), np.dtype(np.uint64): np.uint64(0xA5A5A5A5A5A5A5A5)}
"""What ``out`` holds before a C kernel runs, per output dtype."""


@dataclass(frozen=True)
class Abi:
    """One kind's conventions: the C parameters in order, and the Python ones.

    ``c_params``: (name, ctypes type) for every C parameter, ``out`` among
    them; ``python_params``: the names given, in order, to a Python callable.
    """

    kind: str
    c_params: tuple
    python_params: tuple
    out_dtype: type

    def out_shape(self, args: dict) -> tuple:
        """The shape ``out`` must have, from the scalar arguments."""
        if self.kind == "xnor-gemm":
            return (args["m"], args["n"])
        if self.kind == "pack-bits":
            return (args["rows"], -(-args["k"] // 64))
        if self.kind == "binary-dense":
            return (args["n"], args["h"])
        oh = (args["h"] + 2 * args["pad"] - args["kh"]) // args["stride"] + 1
        ow = (args["wd"] + 2 * args["pad"] - args["kw"]) // args["stride"] + 1
        return (args["n"], args["f"], oh, ow)


ABIS = {
    abi.kind: abi
    for abi in (
        Abi(
            "xnor-gemm",
            (("a", _U64P), ("b", _U64P), ("out", _I32P), ("m", _I64), ("n", _I64), ("words", _I64), ("k", _I64)),
            ("a", "b", "k"),
            np.int32,
        ),
        Abi("pack-bits", (("x", _F32P), ("out", _U64P), ("rows", _I64), ("k", _I64)), ("x",), np.uint64),
        Abi(
            "binary-conv2d",
            (
                ("x", _U64P),
                ("w", _U64P),
                ("out", _I32P),
                ("n", _I64),
                ("c", _I64),
                ("h", _I64),
                ("wd", _I64),
                ("f", _I64),
                ("kh", _I64),
                ("kw", _I64),
                ("stride", _I64),
                ("pad", _I64),
                ("pad_value", _I32),
            ),
            ("x", "w", "c", "stride", "pad", "pad_value"),
            np.int32,
        ),
        Abi(
            "binary-dense",
            (("x", _F32P), ("w", _U64P), ("out", _I32P), ("n", _I64), ("d", _I64), ("h", _I64)),
            ("x", "w"),
            np.int32,
        ),
    )
}
"""Kind name -> :class:`Abi`."""

KINDS = tuple(ABIS)


def call_python(kind: str, fn, args: dict):
    """Call a Python kernel: ``fn(*python_params)``; returns whatever it returns."""
    return fn(*(args[name] for name in ABIS[kind].python_params))


def bind_c(kind: str, function) -> None:
    """Give a ctypes function its kind's C signature (``void f(...)``)."""
    function.argtypes = [ctype for _, ctype in ABIS[kind].c_params]
    function.restype = None


def call_c(kind: str, function, args: dict) -> np.ndarray:
    """Call a C kernel bound by :func:`bind_c`; returns the ``out`` it wrote.

    ``out`` is filled with :data:`SENTINEL` first. The arrays are passed
    C-contiguous in their ABI dtype (a copy when they are not already).
    """
    abi = ABIS[kind]
    out = np.full(abi.out_shape(args), SENTINEL[np.dtype(abi.out_dtype)], dtype=abi.out_dtype)
    keep = []  # the arrays must outlive the call
    values = []
    for name, ctype in abi.c_params:
        if ctype in _POINTER_DTYPES:
            array = out if name == "out" else np.ascontiguousarray(args[name], dtype=_POINTER_DTYPES[ctype])
            keep.append(array)
            values.append(array.ctypes.data_as(ctype))
        else:
            values.append(ctype(int(args[name])))
    function(*values)
    return out
