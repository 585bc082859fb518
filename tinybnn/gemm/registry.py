"""One registry of GEMM implementations: name -> :class:`GemmImpl`.

The tests and the benchmark iterate over it, so a new kernel is added here,
once, and is then checked against the reference and timed like the others.

Two kinds, two signatures:

* ``"float"``: ``fn(A, B) -> C`` with ``A (M, K)``, ``B (K, N)`` float32 or
  float64, ``C (M, N)`` in the same dtype;
* ``"xnor"``: ``fn(a_packed, b_packed, k) -> out`` with ``a_packed`` uint64
  ``(M, Kw)``, ``b_packed`` uint64 ``(N, Kw)``, ``k`` the number of bits, and
  ``out`` int32 ``(M, N)`` equal to ``sign(A) @ sign(B).T``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tinybnn.errors import ArgumentError
from tinybnn.gemm.float_gemm import gemm_blocked, gemm_naive, gemm_numpy, gemm_parallel
from tinybnn.gemm.xnor import xnor_blocked, xnor_naive, xnor_parallel

KINDS = ("float", "xnor")


@dataclass(frozen=True)
class GemmImpl:
    """One GEMM implementation.

    ``max_ops``: the largest problem (``2*M*N*K`` operations) the benchmark
    runs it on, or ``None`` for no limit; the pure-Python one takes about a
    second per million multiply-adds.
    """

    name: str
    kind: str
    function: Callable
    description: str
    max_ops: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ArgumentError(f"kind must be one of {KINDS}, got {self.kind!r}")


REGISTRY: dict[str, GemmImpl] = {
    impl.name: impl
    for impl in (
        GemmImpl("naive", "float", gemm_naive, "three Python loops, for teaching and tiny sizes", max_ops=2_000_000),
        GemmImpl("blocked", "float", gemm_blocked, "Numba, one thread, cache tiling, vectorized i-k-j inner loop"),
        GemmImpl("parallel", "float", gemm_parallel, "Numba prange, packed B panels, 4x4 register tiles"),
        GemmImpl("numpy", "float", gemm_numpy, "np.dot (OpenBLAS), the reference"),
        GemmImpl("xnor_naive", "xnor", xnor_naive, "Python loop over rows of A, NumPy XOR and bitwise_count"),
        GemmImpl("xnor_blocked", "xnor", xnor_blocked, "Numba, one thread, 4x4 register tiles, vpopcntq"),
        GemmImpl("xnor_parallel", "xnor", xnor_parallel, "Numba prange over 4x4 register tiles, vpopcntq"),
    )
}


def get_impl(name: str) -> GemmImpl:
    """The implementation called ``name``; ``ArgumentError`` listing the names if unknown."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ArgumentError(f"unknown GEMM implementation {name!r}; known: {', '.join(REGISTRY)}") from None


def impl_names(kind: str | None = None) -> list[str]:
    """Names of the registered implementations, of one ``kind`` or all, in registry order."""
    if kind is not None and kind not in KINDS:
        raise ArgumentError(f"kind must be one of {KINDS} or None, got {kind!r}")
    return [name for name, impl in REGISTRY.items() if kind is None or impl.kind == kind]
