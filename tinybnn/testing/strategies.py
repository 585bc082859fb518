"""Hypothesis strategies of test cases, one per kind of kernel (public: use them in your own tests).

Each strategy draws a case of :mod:`tinybnn.testing.cases` (sizes and fill
patterns), bounded so that a check takes seconds; hypothesis shrinks a
failing case towards small sizes and the simplest fills (zeros first).
Reduction lengths have the 64-bit word boundaries over-represented::

    from hypothesis import given
    from tinybnn.testing import cases, strategies

    @given(strategies.gemm_cases())
    def test_my_kernel(case):
        kind = cases.KINDS["xnor-gemm"]
        floats = kind.operands(case)
        args = kind.args(case, floats)
        assert (my_kernel(args["a"], args["b"], case.k) == kind.expected(case, floats, args)).all()
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from .cases import FILLS, Case, ConvCase, DenseCase, GemmCase, PackCase

WORD_BOUNDARIES = (1, 2, 63, 64, 65, 127, 128, 129, 191, 192, 193, 255, 256, 257)
"""Reduction lengths next to a multiple of 64 bits."""


def fills() -> st.SearchStrategy[str]:
    """A fill pattern (zeros, plus, minus, signed_zeros, random); shrinks towards zeros."""
    return st.sampled_from(FILLS)


def seeds() -> st.SearchStrategy[int]:
    """The seed of the ``random`` fill."""
    return st.integers(0, 2**16 - 1)


def reduction_lengths(max_value: int = 300) -> st.SearchStrategy[int]:
    """K from 1 to ``max_value``, word boundaries (63, 64, 65, ...) drawn often."""
    boundaries = [k for k in WORD_BOUNDARIES if k <= max_value]
    return st.one_of(st.integers(1, max_value), st.sampled_from(boundaries))


def gemm_cases(max_m: int = 12, max_n: int = 12, max_k: int = 300) -> st.SearchStrategy[GemmCase]:
    """XNOR GEMM cases: A (m, k), B (n, k)."""
    return st.builds(
        GemmCase,
        m=st.integers(1, max_m),
        n=st.integers(1, max_n),
        k=reduction_lengths(max_k),
        fill_a=fills(),
        fill_b=fills(),
        seed=seeds(),
    )


def pack_cases(max_rows: int = 8, max_k: int = 300) -> st.SearchStrategy[PackCase]:
    """Packing cases: x (rows, k)."""
    return st.builds(PackCase, rows=st.integers(1, max_rows), k=reduction_lengths(max_k), fill_x=fills(), seed=seeds())


def dense_cases(max_n: int = 8, max_d: int = 300, max_h: int = 12) -> st.SearchStrategy[DenseCase]:
    """Binary dense cases: x (n, d), W (h, d)."""
    return st.builds(
        DenseCase,
        n=st.integers(1, max_n),
        d=reduction_lengths(max_d),
        h=st.integers(1, max_h),
        fill_x=fills(),
        fill_w=fills(),
        seed=seeds(),
    )


@st.composite
def conv_cases(
    draw, max_n: int = 2, max_c: int = 140, max_side: int = 7, max_filters: int = 5, max_kernel: int = 3
) -> ConvCase:
    """Binary convolution cases: x (n, c, h, wd), W (f, c, kh, kw), stride 1-3, pad 0-2, pad value ±1."""
    c = draw(st.one_of(st.integers(1, max_c), st.sampled_from([c for c in (63, 64, 65, 128, 129) if c <= max_c])))
    pad = draw(st.integers(0, 2))
    h = draw(st.integers(1, max_side))
    wd = draw(st.integers(1, max_side))
    kh = draw(st.integers(1, min(max_kernel, h + 2 * pad)))
    kw = draw(st.integers(1, min(max_kernel, wd + 2 * pad)))
    return ConvCase(
        n=draw(st.integers(1, max_n)),
        c=c,
        h=h,
        wd=wd,
        f=draw(st.integers(1, max_filters)),
        kh=kh,
        kw=kw,
        stride=draw(st.integers(1, 3)),
        pad=pad,
        pad_value=draw(st.sampled_from([1, -1])),
        fill_x=draw(fills()),
        fill_w=draw(fills()),
        seed=draw(seeds()),
    )


CASES: dict[str, Callable[[], st.SearchStrategy[Case]]] = {
    "xnor-gemm": gemm_cases,
    "pack-bits": pack_cases,
    "binary-conv2d": conv_cases,
    "binary-dense": dense_cases,
}
"""Kind name -> the strategy function of its cases."""
