"""Verify *your* binary kernel against tinybnn's references: XNOR GEMM, bit packing, binary conv and dense.

Each check runs a candidate kernel on enumerated edge cases (K = 1, K mod 64
in {0, 1, 63}, sizes that are no multiple of a tile, all +1, all -1, zeros,
a K above 32767, channel counts above 64, strides, padding with +1 and -1),
then on hypothesis-generated cases, and returns a report: passed, or the
smallest failing case with its inputs, the expected and obtained outputs,
the entries that differ and the float reference's value there::

    from tinybnn.testing import check_xnor_gemm

    def test_my_gemm():
        report = check_xnor_gemm(my_gemm)      # my_gemm(a, b, k) -> int32 (m, n)
        assert report.ok, report

C kernels go through :func:`load_target` (``c=True``) and run in a child
process. The calling conventions and bit order are in
:mod:`tinybnn.kernel_abi`; the cases and references in
:mod:`tinybnn.testing.cases`; the hypothesis strategies in
:mod:`tinybnn.testing.strategies`. This package needs hypothesis (the
``test`` extra); the rest of tinybnn does not.
"""

from .check import check_binary_conv2d, check_binary_dense, check_pack_bits, check_xnor_gemm, run_check
from .report import CheckReport, Failure
from .targets import load_target
from .timing import time_kernel, verified_kernel

__all__ = [
    "check_binary_conv2d",
    "check_binary_dense",
    "check_pack_bits",
    "check_xnor_gemm",
    "run_check",
    "CheckReport",
    "Failure",
    "load_target",
    "time_kernel",
    "verified_kernel",
]
