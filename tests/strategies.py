"""Hypothesis strategies shared by the tests: a plain module of strategy functions.

Conventions the strategies take care of, so that every test gets them:

* sizes start at 1; reduction lengths K include the word boundaries
  (63, 64, 65, 127, 128, 129, ...), so K not a multiple of 64 is common;
* float arrays contain exact zeros (``sign(0) = +1`` must be exercised) and
  negative zeros;
* arrays come in several memory layouts (C order, Fortran order, strided
  slices, reversed), always holding the same values as a C-ordered twin.

Large float arrays are drawn as (seed, fraction of zeros, layout) and made
with NumPy's generator: hypothesis still explores and shrinks the sizes, and
drawing thousands of elements one by one would make the tests slow.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

WORD_BOUNDARY_KS = (1, 2, 31, 32, 63, 64, 65, 127, 128, 129, 191, 192, 193, 255, 256, 257)

LAYOUTS = ("C", "F", "strided", "reversed")


def sizes(max_value: int) -> st.SearchStrategy[int]:
    """A dimension from 1 to ``max_value``, small ones more often."""
    return st.integers(min_value=1, max_value=max_value)


def reduction_lengths(max_value: int = 300) -> st.SearchStrategy[int]:
    """A reduction length K from 1 up, with the 64-bit word boundaries over-represented."""
    boundaries = [k for k in WORD_BOUNDARY_KS if k <= max_value]
    return st.one_of(st.sampled_from(boundaries), st.integers(min_value=1, max_value=max_value))


def gemm_shapes(max_m: int = 12, max_k: int = 300, max_n: int = 12) -> st.SearchStrategy[tuple]:
    """``(M, K, N)`` for a GEMM ``(M, K) @ (K, N)``."""
    return st.tuples(sizes(max_m), reduction_lengths(max_k), sizes(max_n))


def float_dtypes() -> st.SearchStrategy[np.dtype]:
    """float32 or float64."""
    return st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])


def layouts() -> st.SearchStrategy[str]:
    """A memory layout name understood by :func:`with_layout`."""
    return st.sampled_from(LAYOUTS)


def with_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``x`` in another memory layout (a view into a new buffer).

    ``"C"``: C-contiguous; ``"F"``: Fortran order (a transposed buffer);
    ``"strided"``: every other element of a larger buffer; ``"reversed"``:
    negative strides on every axis.
    """
    if layout == "C":
        return np.ascontiguousarray(x)
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "strided":
        big = np.zeros(tuple(2 * s for s in x.shape), dtype=x.dtype)
        view = big[tuple(slice(None, None, 2) for _ in x.shape)]
        view[...] = x
        return view
    if layout == "reversed":
        flipped = np.ascontiguousarray(x[tuple(slice(None, None, -1) for _ in x.shape)])
        return flipped[tuple(slice(None, None, -1) for _ in x.shape)]
    raise ValueError(f"unknown layout {layout!r}")


@st.composite
def float_arrays(draw, shape, dtype=np.float64, zeros: bool = True, layout: str | None = None):
    """A float array of ``shape``: normal values, some exact zeros (and -0.0), a random layout."""
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    zero_fraction = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])) if zeros else 0.0
    if layout is None:
        layout = draw(layouts())
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < zero_fraction] = 0.0
    if zeros and x.size:
        x.flat[rng.integers(x.size)] = -0.0  # sign(-0.0) = +1 as well
    return with_layout(x, layout)


@st.composite
def gemm_operands(draw, max_m: int = 12, max_k: int = 300, max_n: int = 12, dtype=None):
    """``(A, B)`` with ``A (M, K)``, ``B (K, N)`` of one float dtype, zeros included, any layouts."""
    m, k, n = draw(gemm_shapes(max_m, max_k, max_n))
    if dtype is None:
        dtype = draw(float_dtypes())
    A = draw(float_arrays((m, k), dtype))
    B = draw(float_arrays((k, n), dtype))
    return A, B


def pad_multiples() -> st.SearchStrategy[int]:
    """``pad_words_to`` for :func:`tinybnn.gemm.pack_bits`: none, or the kernels' 8, or odd ones."""
    return st.sampled_from([1, 8, 3])


# --- small arrays for gradient checks (autograd, layers) -----------------------------
def shapes(min_dims: int = 1, max_dims: int = 3, max_side: int = 4):
    """Array shapes with every side from 1 to ``max_side``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def arrays_f64(shape, low: float = -2.0, high: float = 2.0):
    """float64 arrays of ``shape`` with finite values in [low, high], drawn element by element."""
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False, width=64))


def with_zeros(array: np.ndarray, data, fraction_max: float = 0.5) -> np.ndarray:
    """A copy of ``array`` with some entries set to exactly 0 (so sign(0) = +1 is exercised)."""
    out = np.array(array, copy=True)
    flat = out.reshape(-1)
    count = data.draw(st.integers(1, max(1, int(flat.size * fraction_max))))
    where = data.draw(st.lists(st.integers(0, flat.size - 1), min_size=count, max_size=count))
    flat[where] = 0
    return out


# --- binary convolution weights (pictures) ---------------------------------------------
@st.composite
def binary_conv_weights(draw, channels=(1, 3, 63, 64, 65, 130), max_kernel: int = 3, max_filters: int = 5):
    """``(channels, (KH, KW), filters, weight)``: latent weights (F, C, KH, KW) of a binary
    convolution, float32 with zeros, C around the 64-bit word boundaries, non-square kernels."""
    c = draw(st.sampled_from(channels))
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    filters = draw(st.integers(1, max_filters))
    weight = draw(float_arrays((filters, c, *kernel), np.float32, layout="C"))
    return c, kernel, filters, weight


# --- model file headers -------------------------------------------------------------
def json_values(max_leaves: int = 6) -> st.SearchStrategy:
    """Any JSON value a forged header may hold: odd types, NaN and inf, huge and negative numbers,
    bools where ints belong, strings of digits, nested lists and objects."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(1 << 70), max_value=1 << 70),
        st.sampled_from([0, -1, -5, 1 << 40, 1 << 64, 1 << 130, 10**9]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
        st.sampled_from(["3", "", "PCG64"]),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
        max_leaves=max_leaves,
    )


def json_paths(value, prefix=()) -> list[tuple]:
    """Every path (a tuple of keys and indices) into a JSON value, the value's own () first."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:4]):
            paths += json_paths(item, prefix + (index,))
    return paths


@st.composite
def header_mutations(draw, header: dict) -> tuple[dict, tuple, str]:
    """``header`` (a model file's JSON) with one field deleted or replaced by another JSON value:
    returns (the mutated copy, the path changed, "delete" or "replace")."""
    import copy

    mutated = copy.deepcopy(header)
    path = draw(st.sampled_from(json_paths(mutated)[1:]))
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["delete", "replace"]))
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values())
    return mutated, path, action
