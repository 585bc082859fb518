"""GEMM kernels: float reference and fast implementations, bit packing, XNOR GEMMs.

* :mod:`tinybnn.gemm.float_gemm`: ``gemm_naive``, ``gemm_blocked``,
  ``gemm_parallel``, ``gemm_numpy``: ``fn(A, B) -> A @ B``.
* :mod:`tinybnn.gemm.bitpack`: ``pack_bits``, ``pack_bits_numpy``,
  ``unpack_bits``, ``packed_words``, ``binary_sign``: sign bits, 64 to a
  ``uint64`` word, along the reduction axis, least significant bit first.
* :mod:`tinybnn.gemm.xnor`: ``xnor_naive``, ``xnor_blocked``,
  ``xnor_parallel``: ``fn(a_packed, b_packed, k) -> sign(A) @ sign(B).T``
  (int32), and ``xnor_gemm_float`` which packs float inputs first.
* :mod:`tinybnn.gemm.registry`: ``REGISTRY`` (name -> ``GemmImpl``), used by
  the tests and by the benchmark (:mod:`tinybnn.benchmarks.gemm`, ``tinybnn bench gemm``).

See ``docs/gemm.md`` for the conventions and the measured speed.
"""

from tinybnn.gemm.bitpack import (
    WORD_BITS,
    binary_sign,
    pack_bits,
    pack_bits_numpy,
    packed_words,
    unpack_bits,
)
from tinybnn.gemm.float_gemm import (
    check_float_operands,
    gemm_blocked,
    gemm_naive,
    gemm_numpy,
    gemm_parallel,
)
from tinybnn.gemm.registry import REGISTRY, GemmImpl, get_impl, impl_names
from tinybnn.gemm.xnor import (
    pad_words,
    popcount64,
    xnor_blocked,
    xnor_gemm_float,
    xnor_naive,
    xnor_parallel,
)

__all__ = [
    "WORD_BITS",
    "binary_sign",
    "pack_bits",
    "pack_bits_numpy",
    "packed_words",
    "unpack_bits",
    "check_float_operands",
    "gemm_blocked",
    "gemm_naive",
    "gemm_numpy",
    "gemm_parallel",
    "REGISTRY",
    "GemmImpl",
    "get_impl",
    "impl_names",
    "pad_words",
    "popcount64",
    "xnor_blocked",
    "xnor_gemm_float",
    "xnor_naive",
    "xnor_parallel",
]
