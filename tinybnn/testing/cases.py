"""Test cases for each kind of kernel, their inputs, and tinybnn's reference outputs.

A case is a small frozen dataclass of sizes and *fill patterns* (how its
float operands are filled), so that it prints in one line, can be made
smaller field by field, and rebuilds the same arrays every time:

* ``zeros``: every value 0.0, so every sign is +1 (``sign(0) = +1``);
* ``plus`` / ``minus``: every value +1.0 / -1.0;
* ``signed_zeros``: 0.0 and -0.0 alternating, all +1 as well;
* ``random``: normal values with exact zeros and -0.0 among them, drawn
  from the case's ``seed``.

For each case a kind builds the float operands, the arguments of its ABI
(:mod:`tinybnn.kernel_abi`: the operands' signs packed by tinybnn's own
packing, :func:`tinybnn.gemm.pack_bits_numpy` and, for convolutions,
:func:`tinybnn.gemm.bitconv.pack_channels` and
:func:`~tinybnn.gemm.bitconv.pack_filters`), the expected output (from
tinybnn's obvious references, :func:`tinybnn.gemm.xnor_naive` and
:func:`~tinybnn.gemm.pack_bits_numpy`, or for convolutions the float one)
and the float reference: the same products computed in float64 on ±1
values, ``sign(A) @ sign(B).T``, exact for these sizes.

The enumerated edge cases of each kind (``edge_cases()``) are the classic
places where a binary kernel goes wrong: K = 1, K mod 64 in {0, 1, 63}, M
and N that are no multiple of a tile, all +1, all -1, zeros, a K above
32767 (a 16-bit accumulator overflows), channel counts above 64, strides,
and padding with +1 and with -1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinybnn.gemm import binary_sign, pack_bits_numpy, packed_words, xnor_naive
from tinybnn.gemm.bitconv import pack_channels, pack_filters

FILLS = ("zeros", "plus", "minus", "signed_zeros", "random")
"""Fill patterns, simplest first (the order a failing case is simplified in)."""

LONG_K = 32768 + 63
"""A reduction length past the reach of a 16-bit accumulator, and not a multiple of 64."""


def size(minimum: int):
    """A dataclass field holding a size that can be made smaller, down to ``minimum``."""
    return field(metadata={"minimum": minimum})


def choice(options: tuple):
    """A dataclass field holding one of ``options``, the earlier ones simpler."""
    return field(metadata={"choices": options})


def fill(pattern: str, shape: tuple, seed: int, which: int) -> np.ndarray:
    """A float32 array of ``shape`` filled by ``pattern`` (``which`` tells a case's arrays apart)."""
    if pattern == "zeros":
        return np.zeros(shape, np.float32)
    if pattern == "plus":
        return np.ones(shape, np.float32)
    if pattern == "minus":
        return -np.ones(shape, np.float32)
    if pattern == "signed_zeros":
        x = np.zeros(shape, np.float32)
        x.reshape(-1)[1::2] = -0.0
        return x
    if pattern != "random":
        raise ValueError(f"unknown fill pattern {pattern!r}; known: {', '.join(FILLS)}")
    rng = np.random.default_rng([seed, which])
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.15] = 0.0
    x[rng.random(shape) < 0.05] = -0.0
    return x


def fields_text(case) -> str:
    """``m=1 n=2 k=65 fill_a=zeros ...``: the case's fields in one line."""
    return " ".join(f"{f.name}={getattr(case, f.name)}" for f in dataclasses.fields(case) if f.name != "seed") + (
        f" seed={case.seed}" if "random" in dataclasses.astuple(case) else ""
    )


# ---------------------------------------------------------------------------------------------
# the cases of each kind
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GemmCase:
    """XNOR GEMM of A (m, k) and B (n, k): ``out = sign(A) @ sign(B).T``."""

    m: int = size(1)
    n: int = size(1)
    k: int = size(1)
    fill_a: str = choice(FILLS)
    fill_b: str = choice(FILLS)
    seed: int = 0


@dataclass(frozen=True)
class PackCase:
    """Packing the signs of x (rows, k) float32."""

    rows: int = size(1)
    k: int = size(1)
    fill_x: str = choice(FILLS)
    seed: int = 0


@dataclass(frozen=True)
class DenseCase:
    """Binary dense layer: float activations x (n, d), weights W (h, d): ``sign(x) @ sign(W).T``."""

    n: int = size(1)
    d: int = size(1)
    h: int = size(1)
    fill_x: str = choice(FILLS)
    fill_w: str = choice(FILLS)
    seed: int = 0


@dataclass(frozen=True)
class ConvCase:
    """Binary convolution of x (n, c, h, wd) with W (f, c, kh, kw), square stride and padding."""

    n: int = size(1)
    c: int = size(1)
    h: int = size(1)
    wd: int = size(1)
    f: int = size(1)
    kh: int = size(1)
    kw: int = size(1)
    stride: int = size(1)
    pad: int = size(0)
    pad_value: int = choice((1, -1))
    fill_x: str = choice(FILLS)
    fill_w: str = choice(FILLS)
    seed: int = 0


Case = GemmCase | PackCase | DenseCase | ConvCase
"""A case of any kind."""


# ---------------------------------------------------------------------------------------------
# kinds: operands, ABI arguments, references
# ---------------------------------------------------------------------------------------------


class GemmKind:
    """``xnor-gemm``: packed A and B in, ±1 dot products out."""

    name = "xnor-gemm"
    reference_name = "tinybnn.gemm.xnor_naive"

    def valid(self, case: GemmCase) -> bool:
        return True

    def shape_text(self, case: GemmCase) -> str:
        return f"m={case.m} n={case.n} k={case.k}"

    def input_values(self, case: GemmCase) -> int:
        return (case.m + case.n) * case.k

    def operands(self, case: GemmCase) -> dict:
        return {
            "A": fill(case.fill_a, (case.m, case.k), case.seed, 0),
            "B": fill(case.fill_b, (case.n, case.k), case.seed, 1),
        }

    def args(self, case: GemmCase, floats: dict) -> dict:
        return {
            "a": pack_bits_numpy(floats["A"]),
            "b": pack_bits_numpy(floats["B"]),
            "m": case.m,
            "n": case.n,
            "words": packed_words(case.k),
            "k": case.k,
        }

    def expected(self, case: GemmCase, floats: dict, args: dict) -> np.ndarray:
        return xnor_naive(args["a"], args["b"], case.k)

    def float_reference(self, case: GemmCase, floats: dict) -> np.ndarray:
        return binary_sign(floats["A"]).astype(np.float64) @ binary_sign(floats["B"]).astype(np.float64).T

    def edge_cases(self) -> list:
        cases = [
            ("K = 1, +1 against -1", GemmCase(1, 1, 1, "zeros", "minus")),
            ("K = 1, -1 against -1", GemmCase(1, 1, 1, "minus", "minus")),
        ]
        for k in (1, 63, 64, 65, 127, 128, 129, 191, 200):
            cases.append((f"K = {k} (K mod 64 = {k % 64}), M = 5, N = 3", GemmCase(5, 3, k, "random", "random")))
        for fa, fb in (("plus", "plus"), ("minus", "minus"), ("plus", "minus"), ("zeros", "signed_zeros")):
            cases.append((f"all {fa} against all {fb}, K = 65", GemmCase(3, 2, 65, fa, fb)))
        cases += [
            ("M, N no multiple of a tile", GemmCase(13, 7, 100, "random", "random")),
            ("one row of A", GemmCase(1, 9, 130, "random", "random")),
            ("one row of B", GemmCase(17, 1, 70, "random", "random")),
            ("rows of zeros (+1) against +1", GemmCase(6, 5, 64, "zeros", "plus")),
            ("long K (> 32767), all +1", GemmCase(2, 3, LONG_K, "plus", "plus")),
            ("long K (> 32767), +1 against -1", GemmCase(2, 3, LONG_K, "zeros", "minus")),
            ("long K (> 32767), random", GemmCase(3, 2, LONG_K, "random", "random")),
        ]
        return cases


class PackKind:
    """``pack-bits``: float32 rows in, their sign bits as words out."""

    name = "pack-bits"
    reference_name = "tinybnn.gemm.pack_bits_numpy"

    def valid(self, case: PackCase) -> bool:
        return True

    def shape_text(self, case: PackCase) -> str:
        return f"rows={case.rows} k={case.k}"

    def input_values(self, case: PackCase) -> int:
        return case.rows * case.k

    def operands(self, case: PackCase) -> dict:
        return {"x": fill(case.fill_x, (case.rows, case.k), case.seed, 0)}

    def args(self, case: PackCase, floats: dict) -> dict:
        return {"x": floats["x"], "rows": case.rows, "k": case.k}

    def expected(self, case: PackCase, floats: dict, args: dict) -> np.ndarray:
        return pack_bits_numpy(floats["x"])

    def float_reference(self, case: PackCase, floats: dict) -> np.ndarray:
        return binary_sign(floats["x"])

    def edge_cases(self) -> list:
        cases = [
            ("K = 1, a zero (sign +1)", PackCase(1, 1, "zeros")),
            ("K = 1, -0.0 (sign +1)", PackCase(1, 2, "signed_zeros")),
            ("K = 1, -1", PackCase(1, 1, "minus")),
        ]
        for k in (1, 63, 64, 65, 127, 128, 129, 200):
            cases.append((f"K = {k} (K mod 64 = {k % 64}), 3 rows", PackCase(3, k, "random")))
        for pattern in ("zeros", "signed_zeros", "plus", "minus"):
            cases.append((f"all {pattern}, K = 129", PackCase(2, 129, pattern)))
        cases += [("5 rows, K = 70", PackCase(5, 70, "random")), ("long K (> 32767)", PackCase(2, LONG_K, "random"))]
        return cases


class DenseKind:
    """``binary-dense``: float32 activations and packed weight rows in, ±1 dot products out."""

    name = "binary-dense"
    reference_name = "tinybnn.gemm.xnor_naive on pack_bits_numpy(x)"

    def valid(self, case: DenseCase) -> bool:
        return True

    def shape_text(self, case: DenseCase) -> str:
        return f"n={case.n} d={case.d} h={case.h}"

    def input_values(self, case: DenseCase) -> int:
        return (case.n + case.h) * case.d

    def operands(self, case: DenseCase) -> dict:
        return {
            "x": fill(case.fill_x, (case.n, case.d), case.seed, 0),
            "W": fill(case.fill_w, (case.h, case.d), case.seed, 1),
        }

    def args(self, case: DenseCase, floats: dict) -> dict:
        return {"x": floats["x"], "w": pack_bits_numpy(floats["W"]), "n": case.n, "d": case.d, "h": case.h}

    def expected(self, case: DenseCase, floats: dict, args: dict) -> np.ndarray:
        return xnor_naive(pack_bits_numpy(floats["x"]), args["w"], case.d)

    def float_reference(self, case: DenseCase, floats: dict) -> np.ndarray:
        return binary_sign(floats["x"]).astype(np.float64) @ binary_sign(floats["W"]).astype(np.float64).T

    def edge_cases(self) -> list:
        cases = [
            ("D = 1, a zero activation (+1) against -1", DenseCase(1, 1, 1, "zeros", "minus")),
            ("D = 2, -0.0 activations (+1) against -1", DenseCase(1, 2, 1, "signed_zeros", "minus")),
        ]
        for d in (1, 63, 64, 65, 128, 129, 200):
            cases.append((f"D = {d} (D mod 64 = {d % 64}), N = 5, H = 3", DenseCase(5, d, 3, "random", "random")))
        for fx, fw in (("plus", "plus"), ("minus", "minus"), ("minus", "plus"), ("zeros", "plus")):
            cases.append((f"all {fx} against all {fw}, D = 65", DenseCase(2, 65, 3, fx, fw)))
        cases += [
            ("N, H no multiple of a tile", DenseCase(7, 100, 13, "random", "random")),
            ("long D (> 32767), all +1", DenseCase(2, LONG_K, 3, "plus", "plus")),
            ("long D (> 32767), -1 against +1", DenseCase(2, LONG_K, 3, "minus", "plus")),
        ]
        return cases


class ConvKind:
    """``binary-conv2d``: channel-packed pixels and filters in, ±1 dot products (n, f, oh, ow) out."""

    name = "binary-conv2d"
    reference_name = "float convolution of sign(x), padded with pad_value, and sign(W)"

    def valid(self, case: ConvCase) -> bool:
        return case.h + 2 * case.pad >= case.kh and case.wd + 2 * case.pad >= case.kw

    def shape_text(self, case: ConvCase) -> str:
        return (
            f"x {case.n}x{case.c}x{case.h}x{case.wd} * W {case.f}x{case.c}x{case.kh}x{case.kw} "
            f"stride={case.stride} pad={case.pad} pad_value={case.pad_value:+d}"
        )

    def input_values(self, case: ConvCase) -> int:
        return case.c * (case.n * case.h * case.wd + case.f * case.kh * case.kw)

    def operands(self, case: ConvCase) -> dict:
        return {
            "x": fill(case.fill_x, (case.n, case.c, case.h, case.wd), case.seed, 0),
            "W": fill(case.fill_w, (case.f, case.c, case.kh, case.kw), case.seed, 1),
        }

    def args(self, case: ConvCase, floats: dict) -> dict:
        words = packed_words(case.c)
        w = pack_filters(floats["W"], pad_words_to=1).reshape(case.f, case.kh, case.kw, words)
        return {
            "x": pack_channels(floats["x"]),
            "w": w,
            "n": case.n,
            "c": case.c,
            "h": case.h,
            "wd": case.wd,
            "f": case.f,
            "kh": case.kh,
            "kw": case.kw,
            "stride": case.stride,
            "pad": case.pad,
            "pad_value": case.pad_value,
        }

    def expected(self, case: ConvCase, floats: dict, args: dict) -> np.ndarray:
        return self.float_reference(case, floats).astype(np.int32)

    def float_reference(self, case: ConvCase, floats: dict) -> np.ndarray:
        p, s = case.pad, case.stride
        signs = np.pad(
            binary_sign(floats["x"]).astype(np.float64),
            ((0, 0), (0, 0), (p, p), (p, p)),
            constant_values=float(case.pad_value),
        )
        patches = sliding_window_view(signs, (case.kh, case.kw), axis=(2, 3))[:, :, ::s, ::s]
        return np.einsum("ncijuv,fcuv->nfij", patches, binary_sign(floats["W"]).astype(np.float64))

    def edge_cases(self) -> list:
        cases = [
            ("C = 1, 1x1 kernel, +1 against -1", ConvCase(1, 1, 1, 1, 1, 1, 1, 1, 0, 1, "zeros", "minus")),
            ("C = 1, 3x3 kernel on one pixel, padding +1", ConvCase(1, 1, 1, 1, 1, 3, 3, 1, 1, 1, "plus", "plus")),
            ("C = 1, 3x3 kernel on one pixel, padding -1", ConvCase(1, 1, 1, 1, 1, 3, 3, 1, 1, -1, "plus", "plus")),
        ]
        for c in (1, 63, 64, 65, 130):
            cases.append((f"C = {c}, 3x3, pad 1 (+1)", ConvCase(2, c, 5, 5, 3, 3, 3, 1, 1, 1, "random", "random")))
        for c in (65, 130):
            cases.append((f"C = {c} > 64, pad 1 with -1", ConvCase(1, c, 4, 4, 2, 3, 3, 1, 1, -1, "plus", "plus")))
            cases.append(
                (f"C = {c} > 64, pad 2 with +1, all -1", ConvCase(1, c, 3, 3, 2, 3, 3, 1, 2, 1, "minus", "minus"))
            )
        cases += [
            ("stride 2, pad 1 with -1", ConvCase(2, 3, 7, 6, 3, 3, 3, 2, 1, -1, "random", "random")),
            ("stride 3, no padding, non-square kernel", ConvCase(1, 5, 8, 9, 2, 2, 3, 3, 0, 1, "random", "random")),
            ("non-square image, 1x3 kernel", ConvCase(1, 4, 4, 7, 5, 1, 3, 1, 0, 1, "random", "random")),
            ("kernel as large as the image", ConvCase(3, 2, 3, 3, 2, 3, 3, 1, 0, 1, "random", "random")),
            ("zeros (+1) against -1, pad 1 with -1", ConvCase(1, 70, 3, 3, 2, 3, 3, 1, 1, -1, "zeros", "minus")),
            ("long K = C KH KW (> 32767), all +1", ConvCase(1, 4096, 3, 3, 1, 3, 3, 1, 0, 1, "plus", "plus")),
            ("long K (> 32767), pad 1 with -1", ConvCase(1, 4096, 2, 2, 2, 3, 3, 1, 1, -1, "minus", "minus")),
        ]
        return cases


KINDS = {kind.name: kind for kind in (GemmKind(), PackKind(), ConvKind(), DenseKind())}
"""Kind name -> its cases and references."""
