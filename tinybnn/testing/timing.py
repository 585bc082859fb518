"""A user's kernel verified, then timed: what a benchmark calls before it measures one.

:func:`verified_kernel` refuses (:class:`~tinybnn.testing.targets.VerificationFailed`)
a kernel that does not agree with tinybnn's reference, so nothing wrong is
ever timed; :func:`time_kernel` gives the median of repeated calls after a
warm-up call, outside which nothing (compilation, loading) is timed.
"""

from __future__ import annotations

import statistics
import time

from .cases import KINDS as CASE_KINDS
from .check import run_check
from .targets import CKernel, VerificationFailed, _split, check_kind, load_target


def verified_kernel(spec: str, kind: str, c: bool = False, examples: int = 100, seed: int = 0):
    """Load ``spec``, check it against tinybnn's reference, and return a kernel to time.

    A C kernel is checked in a child process, then loaded into this one
    (:class:`CKernel`) so that timing measures the kernel, not the pipe.
    Raises :class:`VerificationFailed` with the report when it does not pass.
    """
    candidate = load_target(spec, kind, c=c)
    try:
        report = run_check(kind, candidate, examples=examples, seed=seed)
    finally:
        candidate.close()
    if not report.ok:
        raise VerificationFailed(str(report))
    if c:
        return CKernel(kind, *_split(spec, "path/to/lib.so:symbol"))
    return candidate


def time_kernel(kernel, kind: str, case, repeats: int = 7) -> float:
    """Median seconds of ``kernel`` on ``case`` (a :mod:`tinybnn.testing.cases` case), after one warm-up."""
    spec = CASE_KINDS[check_kind(kind)]
    args = spec.args(case, spec.operands(case))
    kernel(args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        kernel(args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
